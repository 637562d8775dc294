/**
 * The schema of /etc/nodewarden/config.yaml. One schema for every capability:
 * each issue adds its own section here. Objects are strict, so a key we do not
 * know is an error that names it, never something dropped in silence.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

const interfaceName = z
  .string()
  .min(1)
  .max(15)
  .regex(/^[^\s/]+$/, 'must be an interface name (no spaces or slashes)');

export const datapathSchema = z.strictObject({
  /** tcx links on 6.6+ kernels, tc clsact filters before; `auto` picks. */
  tcMode: z.enum(['auto', 'tcx', 'tc']).default('auto'),
  /** XDP in the driver (`native`) or in the generic skb path. */
  xdpMode: z.enum(['native', 'generic']).default('native'),
});

export const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});

const address = z.string().refine((v) => isIP(v) !== 0, 'must be an IPv4 or IPv6 address');
const cidr = z.string().refine((v) => {
  const [ip, len, extra] = v.split('/');
  const bits = isIP(ip ?? '') === 4 ? 32 : isIP(ip ?? '') === 6 ? 128 : 0;
  return bits > 0 && extra === undefined && (len === undefined || (/^\d+$/.test(len) && Number(len) <= bits));
}, 'must be an IPv4 or IPv6 CIDR');

export const policiesSchema = z.strictObject({
  /** Host policies (CiliumClusterwideNetworkPolicy YAML), one or more per file. */
  directory: z.string().min(1).default('/etc/nodewarden/policies.d'),
  /** Drop and audit events per second and CPU that reach `nodewarden monitor`. */
  eventsPerSecond: z.number().int().min(0).max(1_000_000).default(100),
});

/** Facts about the cluster that a standalone node cannot learn by itself. */
export const clusterSchema = z.strictObject({
  /** Other nodes' addresses: the `remote-node` entity. */
  nodes: z.array(address).default([]),
  /** Pod and service CIDRs: part of the `cluster` entity. */
  podCIDRs: z.array(cidr).default([]),
  /** Kubernetes API endpoints: the `kube-apiserver` entity, always allowed as egress. */
  apiServers: z
    .array(z.strictObject({ address, port: z.number().int().min(1).max(65535).default(6443) }))
    .default([]),
});

export const metricsSchema = z.strictObject({
  /** host:port of the Prometheus endpoint (/metrics); "" turns it off. */
  listen: z
    .string()
    .regex(/^(|[^\s]+:\d{1,5})$/, 'must be host:port, such as 127.0.0.1:9469, or "" to turn metrics off')
    .default('127.0.0.1:9469'),
});

/** The Kubernetes source (`source: kubernetes`); see docs/kubernetes.md. */
export const kubernetesSchema = z.strictObject({
  /** A kubeconfig file; unset: $KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig: z.string().min(1).optional(),
  /** Where the heartbeat Leases live. */
  namespace: z.string().min(1).default('nodewarden'),
  /** Client-side rate limit of API requests (as client-go's QPS and burst). */
  qps: z.number().positive().max(10_000).default(20),
  burst: z.number().int().min(1).max(10_000).default(40),
  /** A watch that brings no event and no bookmark for this long is stalled: watch again. */
  idleTimeoutSeconds: z.number().positive().max(3600).default(90),
  /** How long the daemon waits for the first complete list before it serves from its pinned state. */
  initialSyncTimeoutSeconds: z.number().positive().max(3600).default(30),
  heartbeat: z
    .strictObject({
      renewIntervalMs: z.number().int().min(100).max(60_000).default(1000),
      /** leaseDurationSeconds: after this long without a renewal, a node's IPs move. */
      expirySeconds: z.number().int().min(1).max(600).default(3),
    })
    .refine((h) => h.renewIntervalMs < h.expirySeconds * 1000, {
      message: 'renewIntervalMs must be shorter than expirySeconds',
    })
    .default({ renewIntervalMs: 1000, expirySeconds: 3 }),
  loadBalancerClass: z
    .strictObject({
      /** Services with this spec.loadBalancerClass are ours. */
      name: z.string().min(1).default('nodewarden.io/lb'),
      /** Also serve LoadBalancer Services without a class. */
      unclassed: z.boolean().default(true),
    })
    .default({ name: 'nodewarden.io/lb', unclassed: true }),
  /** LoadBalancer IPAM: one node at a time (Lease nodewarden-ipam) writes status.loadBalancer.ingress. */
  ipam: z.strictObject({ enabled: z.boolean().default(false) }).default({ enabled: false }),
});

export const configSchema = z.strictObject({
  /** The node's name; defaults to the host name. */
  nodeName: z.string().min(1).optional(),
  /** Labels that policy nodeSelectors match in standalone mode. */
  labels: z.record(z.string(), z.string()).default({}),
  source: z.enum(['files', 'kubernetes']).default('files'),
  /** Host devices to enforce on. Empty: the devices that carry a default route. */
  devices: z.array(interfaceName).default([]),
  datapath: datapathSchema.default({ tcMode: 'auto', xdpMode: 'native' }),
  log: logSchema.default({ level: 'info' }),
  policies: policiesSchema.default({ directory: '/etc/nodewarden/policies.d', eventsPerSecond: 100 }),
  cluster: clusterSchema.default({ nodes: [], podCIDRs: [], apiServers: [] }),
  metrics: metricsSchema.default({ listen: '127.0.0.1:9469' }),
  // Every field of the section has a default: an absent section is the empty one.
  kubernetes: kubernetesSchema.default(kubernetesSchema.parse({})),
});

export type Config = z.infer<typeof configSchema>;
export type DatapathConfig = z.infer<typeof datapathSchema>;
export type KubernetesConfig = z.infer<typeof kubernetesSchema>;
