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

/** An interface name pattern: a regular expression, as in Cilium's CiliumL2AnnouncementPolicy. */
const interfacePattern = z
  .string()
  .min(1)
  .refine((p) => {
    try {
      new RegExp(p);
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression');

/** Addresses that can be answered for on a LAN: unicast, not loopback, unspecified or IPv4-mapped. */
const announceableAddress = address.refine((v) => {
  const lower = v.toLowerCase();
  if (isIP(v) === 4) {
    const first = Number(v.split('.')[0]);
    return first !== 0 && first !== 127 && first < 224;
  }
  return !/^(::1?|ff[0-9a-f]{2}:.*|::ffff:.*)$/.test(lower);
}, 'must be a unicast address (not multicast, loopback, unspecified or IPv4-mapped)');

export const l2AnnouncementSchema = z.strictObject({
  /** IPs announced together (a LoadBalancer IP, or the pool of a MetalLB L2Advertisement). */
  ips: z.array(announceableAddress).min(1),
  /** Interface name patterns; unset: the l2 section's `interfaces`. */
  interfaces: z.array(interfacePattern).min(1).optional(),
});

export const l2Schema = z.strictObject({
  /** Default interface name patterns (regular expressions, unanchored as in Cilium). */
  interfaces: z.array(interfacePattern).default(['^(eth|en|bond)']),
  /** Standalone mode: the IPs this node announces, with their interfaces. */
  announcements: z.array(l2AnnouncementSchema).default([]),
  /** Gratuitous ARP / unsolicited NA when this node becomes owner. */
  gratuitous: z
    .strictObject({
      count: z.number().int().min(1).max(100).default(3),
      intervalMs: z.number().int().min(0).max(60_000).default(200),
    })
    .default({ count: 3, intervalMs: 200 }),
  /** Re-announce every owned IP this often, for switches whose FDB ages out; 0 turns it off. */
  reannounceSeconds: z.number().min(0).max(86_400).default(0),
  /** Add owned IPs as local routes (table local, proto 76) so local services accept them. */
  localRoutes: z.boolean().default(true),
});
const port = z.number().int().min(1).max(65535);
const dnsLabel = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Kubernetes name (lower case, digits, - and .)');

/** One Service, in the slim form the Kubernetes source also produces (services/model.ts). */
export const serviceSchema = z.strictObject({
  namespace: dnsLabel.default('default'),
  name: dnsLabel,
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).default('LoadBalancer'),
  loadBalancerIPs: z.array(address).default([]),
  externalIPs: z.array(address).default([]),
  ports: z
    .array(
      z.strictObject({
        name: z.string().min(1).optional(),
        port,
        protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
        nodePort: port.optional(),
      }),
    )
    .default([]),
  externalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
  healthCheckNodePort: port.optional(),
  /** Ready endpoints of the service on this node (standalone: set by hand or by a script). */
  localReadyEndpoints: z.number().int().min(0).default(0),
  /** DSR for this service; unset follows services.dsr.enabled. */
  dsr: z.boolean().optional(),
  /** Node addresses that run the service's endpoints: DSR's backends. */
  backendNodes: z.array(address).default([]),
});

export const servicesSchema = z
  .strictObject({
    /** Address the healthCheckNodePort servers bind; `::` listens on IPv4 and IPv6. */
    healthCheckBindAddress: address.default('::'),
    dsr: z
      .strictObject({
        /** DSR for every service that does not say otherwise (per service: `dsr`). */
        enabled: z.boolean().default(false),
        /** Nodes whose IPIP/IP6IP6 VIP traffic this node decapsulates; empty: cluster.nodes. */
        loadBalancerNodes: z.array(address).default([]),
      })
      .default({ enabled: false, loadBalancerNodes: [] }),
    items: z.array(serviceSchema).default([]),
  })
  .superRefine((value, ctx) => {
    const seenNames = new Map<string, number>();
    const seenPorts = new Map<number, number>();
    value.items.forEach((service, index) => {
      const key = `${service.namespace}/${service.name}`;
      const first = seenNames.get(key);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['items', index, 'name'],
          message: `${key} is already items[${first}]`,
        });
      else seenNames.set(key, index);
      const hc = service.healthCheckNodePort;
      if (hc === undefined) return;
      if (service.type !== 'LoadBalancer' || service.externalTrafficPolicy !== 'Local')
        ctx.addIssue({
          code: 'custom',
          path: ['items', index, 'healthCheckNodePort'],
          message: 'only a LoadBalancer service with externalTrafficPolicy Local has a healthCheckNodePort',
        });
      const other = seenPorts.get(hc);
      if (other !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['items', index, 'healthCheckNodePort'],
          message: `port ${hc} is already the healthCheckNodePort of items[${other}]`,
        });
      else seenPorts.set(hc, index);
    });
  });

// ---------------------------------------------------------------------------
// bgp: peers take the fields of MetalLB's BGPPeer spec and advertisements those of
// BGPAdvertisement, with the same names and meanings, so a MetalLB user can copy them
// over; `prefixes` adds the static routes that a node without Kubernetes announces.
// MetalLB fields with no meaning here (nodeSelectors, bfdProfile, vrf, ...) are
// rejected by name, as every unknown key is.

/** An address that may carry an IPv6 zone (fe80::1%eth0), for link-local peers. */
const ipAddress = z
  .string()
  .refine((v) => isIP(v.split('%')[0] ?? '') !== 0, 'must be an IPv4 or IPv6 address');
const ipv4Address = z.string().refine((v) => isIP(v) === 4, 'must be an IPv4 address');
const ipv6Address = z.string().refine((v) => isIP(v.split('%')[0] ?? '') === 6, 'must be an IPv6 address');
const asn = z.number().int().min(1).max(4_294_967_295);

const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Seconds, or a Go duration as MetalLB writes it ("90s", "1m30s", "2h"). */
export const duration = z.union([
  z.number().int().min(0),
  z
    .string()
    .regex(DURATION, 'must be seconds or a duration such as "90s" or "1m30s"')
    .refine((v) => v !== '', 'must not be empty')
    .transform((v) => {
      const [, h = '0', m = '0', s = '0'] = DURATION.exec(v) ?? [];
      return Number(h) * 3600 + Number(m) * 60 + Number(s);
    }),
]);

const holdTime = duration.refine((v) => v === 0 || (v >= 3 && v <= 65535), 'must be 0 or 3–65535 seconds');

const family = z.enum(['ipv4-unicast', 'ipv6-unicast']);

const WELL_KNOWN_COMMUNITIES = ['no-export', 'no-advertise', 'no-export-subconfed', 'no-peer', 'blackhole'];
const u16 = (v: string) => /^\d+$/.test(v) && Number(v) <= 0xffff;
const u32 = (v: string) => /^\d+$/.test(v) && Number(v) <= 0xffffffff;

/** "65000:100", a well-known name, or MetalLB's "large:a:b:c" form of a large community. */
const community = z
  .string()
  .refine(
    (v) =>
      WELL_KNOWN_COMMUNITIES.includes(v) ||
      (v.split(':').length === 2 && v.split(':').every(u16)) ||
      (v.startsWith('large:') && v.split(':').length === 4 && v.split(':').slice(1).every(u32)),
    `must be "asn:value" (16 bits each), "large:a:b:c" or one of ${WELL_KNOWN_COMMUNITIES.join(', ')}`,
  );
const largeCommunity = z
  .string()
  .refine((v) => v.split(':').length === 3 && v.split(':').every(u32), 'must be "a:b:c" (32 bits each)');

export const bgpPeerSchema = z.strictObject({
  /** How advertisements refer to the peer (MetalLB: the BGPPeer's metadata.name); default its address. */
  name: z.string().min(1).optional(),
  peerAddress: ipAddress,
  peerASN: asn,
  /** MetalLB's per-peer local ASN; one speaker has one ASN, so it must equal bgp.asn when given. */
  myASN: asn.optional(),
  peerPort: z.number().int().min(1).max(65535).default(179),
  /** Our address for the session (bind before connect). */
  sourceAddress: ipAddress.optional(),
  holdTime: holdTime.default(90),
  keepaliveTime: duration.optional(),
  /** MetalLB's connectTime: the base of the backoff between connection attempts. */
  connectTime: duration.refine((v) => v >= 1, 'must be at least 1 second').default(5),
  /** MetalLB's per-peer router ID; must equal bgp.routerID when given. */
  routerID: ipv4Address.optional(),
  /** TCP MD5 (RFC 2385). */
  password: z.string().min(1).max(80).optional(),
  /** A file holding the TCP MD5 password (MetalLB's passwordSecret, for nodes without Kubernetes). */
  passwordFile: z.string().min(1).optional(),
  /** true: TTL 255 (MetalLB); a number: that TTL. Off: TTL 1, directly connected. */
  ebgpMultiHop: z.union([z.boolean(), z.number().int().min(1).max(255)]).default(false),
  enableGracefulRestart: z.boolean().default(false),
  /** Seconds the peer keeps our routes while we restart (RFC 4724). */
  gracefulRestartTime: z.number().int().min(1).max(4095).default(120),
  /** Wait for the peer to connect; never connect out. */
  passive: z.boolean().default(false),
  /** Default: the family of peerAddress. */
  families: z.array(family).min(1).optional(),
  /** Next hop to announce instead of our session address (next-hop-self). */
  nextHop: z.strictObject({ ipv4: ipv4Address.optional(), ipv6: ipv6Address.optional() }).optional(),
});

export const bgpAdvertisementSchema = z.strictObject({
  name: z.string().min(1).optional(),
  /** Static prefixes to announce (standalone nodes); a bare address is a host route. */
  prefixes: z.array(cidr).default([]),
  aggregationLength: z.number().int().min(0).max(32).default(32),
  aggregationLengthV6: z.number().int().min(0).max(128).default(128),
  localPref: z.number().int().min(0).max(4_294_967_295).optional(),
  communities: z.array(community).default([]),
  largeCommunities: z.array(largeCommunity).default([]),
  /** Peer names (or addresses) to announce to; empty: every peer. */
  peers: z.array(z.string().min(1)).default([]),
});

export const bgpSchema = z
  .strictObject({
    /** Our ASN (MetalLB: myASN). */
    asn,
    /** Default: the first peer's sourceAddress if IPv4, else the node's first global IPv4 address. */
    routerID: ipv4Address.optional(),
    /** Where passive peers connect to; false: no listener. Default [::]:179 when a peer is passive. */
    listen: z
      .union([
        z.literal(false),
        z.strictObject({ address: ipAddress, port: z.number().int().min(1).max(65535) }),
      ])
      .optional(),
    peers: z.array(bgpPeerSchema).default([]),
    advertisements: z.array(bgpAdvertisementSchema).default([]),
  })
  .superRefine((bgp, ctx) => {
    const names = new Map<string, number>();
    bgp.peers.forEach((peer, i) => {
      const name = peer.name ?? peer.peerAddress;
      if (names.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'name'],
          message: `duplicate peer "${name}" (also peers.${names.get(name)})`,
        });
      }
      names.set(name, i);
      if (peer.myASN !== undefined && peer.myASN !== bgp.asn) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'myASN'],
          message: `must equal bgp.asn (${bgp.asn}): one speaker has one local ASN`,
        });
      }
      if (peer.routerID !== undefined && bgp.routerID !== undefined && peer.routerID !== bgp.routerID) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'routerID'],
          message: `must equal bgp.routerID (${bgp.routerID})`,
        });
      }
      if (peer.password !== undefined && peer.passwordFile !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'passwordFile'],
          message: 'give password or passwordFile, not both',
        });
      }
      if (peer.keepaliveTime !== undefined && peer.holdTime > 0 && peer.keepaliveTime > peer.holdTime / 3) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'keepaliveTime'],
          message: `must be at most holdTime/3 (${Math.floor(peer.holdTime / 3)} s)`,
        });
      }
      if (peer.passive && bgp.listen === false) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'passive'],
          message: 'a passive peer needs bgp.listen',
        });
      }
    });
    bgp.advertisements.forEach((ad, i) => {
      ad.peers.forEach((peer, j) => {
        if (!names.has(peer) && !bgp.peers.some((p) => p.peerAddress === peer)) {
          ctx.addIssue({
            code: 'custom',
            path: ['advertisements', i, 'peers', j],
            message: `no peer named "${peer}" in bgp.peers`,
          });
        }
      });
    });
  });

export type BgpConfig = z.infer<typeof bgpSchema>;
export type BgpPeerConfig = z.infer<typeof bgpPeerSchema>;
export type BgpAdvertisementConfig = z.infer<typeof bgpAdvertisementSchema>;

/** The Kubernetes source (`source: kubernetes`); see docs/kubernetes.md. */
/** The node heartbeat's timing when the config does not set it (docs/l2.md, Failover). */
export const HEARTBEAT_DEFAULTS = { renewIntervalMs: 1000, expirySeconds: 2 };

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
      renewIntervalMs: z.number().int().min(100).max(60_000).default(HEARTBEAT_DEFAULTS.renewIntervalMs),
      /** leaseDurationSeconds: after this long without a renewal, a node's IPs move. */
      expirySeconds: z.number().int().min(1).max(600).default(HEARTBEAT_DEFAULTS.expirySeconds),
    })
    .refine((h) => h.renewIntervalMs < h.expirySeconds * 1000, {
      message: 'renewIntervalMs must be shorter than expirySeconds',
    })
    .default(HEARTBEAT_DEFAULTS),
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
  l2: l2Schema.default({
    interfaces: ['^(eth|en|bond)'],
    announcements: [],
    gratuitous: { count: 3, intervalMs: 200 },
    reannounceSeconds: 0,
    localRoutes: true,
  }),
  /** Services: healthCheckNodePort servers and DSR (docs/services.md). */
  services: servicesSchema.optional(),
  bgp: bgpSchema.optional(),
  // Every field of the section has a default: an absent section is the empty one.
  kubernetes: kubernetesSchema.default(kubernetesSchema.parse({})),
});

export type Config = z.infer<typeof configSchema>;
export type DatapathConfig = z.infer<typeof datapathSchema>;
export type L2Config = z.infer<typeof l2Schema>;
export type ServicesConfig = z.infer<typeof servicesSchema>;
export type KubernetesConfig = z.infer<typeof kubernetesSchema>;
