/**
 * From API objects to the slim model (model/cluster.ts): pure functions that
 * keep only what the planners need. Invalid objects come back as problems that
 * name the object and the field path.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { HostPolicy } from '../../../host-policies/model.js';
import { parsePolicyDocuments } from '../../../host-policies/parse.js';
import { kubeLabelSelector } from '../../../host-policies/schema.js';
import type {
  EndpointCounts,
  HeartbeatLease,
  L2AnnouncementPolicy,
  LoadBalancerPool,
  NodeInfo,
  ServiceInfo,
  ServicePort,
} from '../../../model/cluster.js';
import { InputError, type InputProblem } from '../../../model/input-errors.js';
import type { KubeObject } from './client.js';
import type { Projection } from './reflector.js';

/** Where problems from the API say they come from (the `file` of an InputProblem). */
export const API_SOURCE = 'kubernetes';

export const objectName = (o: KubeObject): string =>
  `${o.kind ?? 'object'}/${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

const ok = <T>(value: T): Projection<T> => ({ ok: true, value });
const SKIP = { ok: 'skip' } as const;

export function projectNode(o: KubeObject): Projection<NodeInfo> {
  const addresses = ((o.status?.addresses ?? []) as KubeObject[])
    .filter((a) => (a.type === 'InternalIP' || a.type === 'ExternalIP') && isIP(String(a.address)) !== 0)
    .map((a) => ({ type: a.type as 'InternalIP' | 'ExternalIP', address: String(a.address) }));
  return ok({ name: o.metadata.name, labels: { ...(o.metadata.labels ?? {}) }, addresses });
}

const REQUEST_ANNOTATIONS =
  /^(metallb\.universe\.tf\/|metallb\.io\/|lbipam\.cilium\.io\/|io\.cilium\/lb-ipam|nodewarden\.io\/dsr$)/;

export function projectService(o: KubeObject): Projection<ServiceInfo> {
  const spec = o.spec ?? {};
  if (spec.type !== 'LoadBalancer') return SKIP;
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.metadata.annotations ?? {})) {
    if (REQUEST_ANNOTATIONS.test(k)) annotations[k] = String(v);
  }
  const ports: ServicePort[] = ((spec.ports ?? []) as KubeObject[]).map((p) => ({
    ...(p.name ? { name: String(p.name) } : {}),
    protocol: (p.protocol ?? 'TCP') as ServicePort['protocol'],
    port: Number(p.port),
    ...(p.nodePort ? { nodePort: Number(p.nodePort) } : {}),
  }));
  return ok({
    namespace: o.metadata.namespace,
    name: o.metadata.name,
    labels: { ...(o.metadata.labels ?? {}) },
    annotations,
    clusterIPs: (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter(
      (ip: string) => ip !== 'None',
    ),
    ...(spec.loadBalancerIP ? { requestedIP: String(spec.loadBalancerIP) } : {}),
    ingressIPs: ((o.status?.loadBalancer?.ingress ?? []) as KubeObject[])
      .map((i) => i.ip)
      .filter((ip): ip is string => typeof ip === 'string'),
    ...(Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0
      ? { externalIPs: (spec.externalIPs as unknown[]).map(String) }
      : {}),
    ports,
    externalTrafficPolicy: spec.externalTrafficPolicy === 'Local' ? 'Local' : 'Cluster',
    ...(spec.healthCheckNodePort ? { healthCheckNodePort: Number(spec.healthCheckNodePort) } : {}),
    ...(spec.loadBalancerClass ? { loadBalancerClass: String(spec.loadBalancerClass) } : {}),
  });
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export function projectEndpointSlice(o: KubeObject): Projection<EndpointCounts> {
  const service = o.metadata.labels?.[SERVICE_NAME_LABEL];
  if (!service) return SKIP;
  const readyByNode: Record<string, number> = {};
  for (const e of (o.endpoints ?? []) as KubeObject[]) {
    // The API says a missing `ready` means ready.
    if (e.conditions?.ready === false) continue;
    const node = String(e.nodeName ?? '');
    readyByNode[node] = (readyByNode[node] ?? 0) + 1;
  }
  const isApiServer = o.metadata.namespace === 'default' && service === 'kubernetes';
  const apiServers = isApiServer
    ? {
        addresses: ((o.endpoints ?? []) as KubeObject[])
          .filter((e) => e.conditions?.ready !== false)
          .flatMap((e) => (e.addresses ?? []) as string[]),
        port: Number((o.ports ?? [])[0]?.port ?? 443),
      }
    : undefined;
  return ok({
    namespace: o.metadata.namespace,
    service,
    ...(typeof o.addressType === 'string' ? { addressType: o.addressType } : {}),
    readyByNode,
    ...(apiServers ? { apiServers } : {}),
  });
}

export const HEARTBEAT_PREFIX = 'nodewarden-node-';
/** Our heartbeat Leases carry this label, so that the watch sees nothing else. */
export const HEARTBEAT_LABEL = 'nodewarden.io/heartbeat';
export const INTERFACES_UP_ANNOTATION = 'nodewarden.io/interfaces-up';

export function projectHeartbeat(o: KubeObject): Projection<HeartbeatLease> {
  const name = String(o.metadata.name);
  if (!name.startsWith(HEARTBEAT_PREFIX)) return SKIP;
  const renew = Date.parse(o.spec?.renewTime ?? '');
  return ok({
    node: name.slice(HEARTBEAT_PREFIX.length),
    holder: String(o.spec?.holderIdentity ?? ''),
    renewTimeMs: Number.isNaN(renew) ? 0 : renew,
    durationSeconds: Number(o.spec?.leaseDurationSeconds ?? 0),
    resourceVersion: String(o.metadata.resourceVersion),
    interfacesUp: String(o.metadata.annotations?.[INTERFACES_UP_ANNOTATION] ?? '')
      .split(',')
      .filter((s) => s !== ''),
  });
}

function problemsOf(o: KubeObject, error: z.ZodError): InputProblem[] {
  return error.issues.map((issue) => ({
    file: API_SOURCE,
    object: objectName(o),
    path: issue.path as (string | number)[],
    message: issue.message,
  }));
}

/** A CiliumClusterwideNetworkPolicy, validated by the same parser as policy files. */
export function projectHostPolicy(o: KubeObject): Projection<HostPolicy[]> {
  const { metadata, ...rest } = o;
  // Server-owned metadata is no input; the parser sees what a user wrote.
  const value = {
    ...rest,
    metadata: {
      name: metadata?.name,
      ...(metadata?.labels ? { labels: metadata.labels } : {}),
      ...(metadata?.annotations ? { annotations: metadata.annotations } : {}),
    },
  };
  try {
    const policies = parsePolicyDocuments([{ file: API_SOURCE, index: 0, value, lineOf: () => undefined }], {
      mode: 'kubernetes',
    });
    return ok(policies);
  } catch (e) {
    if (e instanceof InputError) return { ok: false, problems: [...e.problems] };
    throw e;
  }
}

// ---- pools and L2 announcement policies -------------------------------------

/** The host policies' selector schema: In/NotIn need values, Exists/DoesNotExist take none, label values are checked. */
export const labelSelector = kubeLabelSelector;
type LabelSelectorInput = z.infer<typeof labelSelector>;
export const toSelector = (s: LabelSelectorInput) => ({
  matchLabels: s.matchLabels ?? {},
  matchExpressions: (s.matchExpressions ?? []).map((e) => ({
    key: e.key,
    operator: e.operator,
    values: e.values ?? [],
  })),
});

const ipAddress = z.string().refine((v) => isIP(v) !== 0, 'must be an IPv4 or IPv6 address');
const cidr = z.string().refine((v) => {
  const [ip, len, extra] = v.split('/');
  const bits = isIP(ip ?? '') === 4 ? 32 : isIP(ip ?? '') === 6 ? 128 : 0;
  return bits > 0 && extra === undefined && len !== undefined && /^\d+$/.test(len) && Number(len) <= bits;
}, 'must be a CIDR such as 192.0.2.0/24 or 2001:db8::/64');
/** MetalLB's address forms: a CIDR or `first-last`. */
const metallbAddress = z.string().refine((v) => {
  if (v.includes('-')) {
    const [a, b, extra] = v.split('-').map((s) => s.trim());
    return extra === undefined && isIP(a ?? '') !== 0 && isIP(a ?? '') === isIP(b ?? '');
  }
  return cidr.safeParse(v).success;
}, 'must be a CIDR or a range first-last of one address family');

const ciliumPoolSpec = z
  .strictObject({
    blocks: z
      .array(
        z.strictObject({ cidr: cidr.optional(), start: ipAddress.optional(), stop: ipAddress.optional() }),
      )
      .optional(),
    /** Deprecated upstream name of blocks. */
    cidrs: z
      .array(
        z.strictObject({ cidr: cidr.optional(), start: ipAddress.optional(), stop: ipAddress.optional() }),
      )
      .optional(),
    serviceSelector: labelSelector.optional(),
    disabled: z.boolean().optional(),
    allowFirstLastIPs: z.enum(['Yes', 'No']).optional(),
  })
  .superRefine((spec, ctx) => {
    const field = spec.blocks ? 'blocks' : 'cidrs';
    (spec.blocks ?? spec.cidrs ?? []).forEach((b, i) => {
      if ((b.cidr === undefined) === (b.start === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [field, i],
          message: 'give either cidr or start (with an optional stop)',
        });
      }
    });
  });

const metallbPoolSpec = z.strictObject({
  addresses: z.array(metallbAddress).min(1),
  autoAssign: z.boolean().optional(),
  avoidBuggyIPs: z.boolean().optional(),
  serviceAllocation: z
    .strictObject({
      priority: z.number().int().optional(),
      namespaces: z.array(z.string()).optional(),
      namespaceSelectors: z.array(labelSelector).optional(),
      serviceSelectors: z.array(labelSelector).optional(),
    })
    .optional(),
});

const ciliumL2Spec = z.strictObject({
  serviceSelector: labelSelector.optional(),
  nodeSelector: labelSelector.optional(),
  interfaces: z.array(z.string().min(1)).optional(),
  externalIPs: z.boolean().optional(),
  loadBalancerIPs: z.boolean().optional(),
});

const metallbL2Spec = z.strictObject({
  ipAddressPools: z.array(z.string().min(1)).optional(),
  ipAddressPoolSelectors: z.array(labelSelector).optional(),
  nodeSelectors: z.array(labelSelector).optional(),
  interfaces: z.array(z.string().min(1)).optional(),
});

/** nodewarden.io/v1alpha1 LoadBalancerPool: Cilium's blocks with MetalLB's autoAssign and avoidBuggyIPs. */
const ourPoolSpec = z.strictObject({
  blocks: z
    .array(z.strictObject({ cidr: cidr.optional(), start: ipAddress.optional(), stop: ipAddress.optional() }))
    .min(1),
  serviceSelector: labelSelector.optional(),
  autoAssign: z.boolean().optional(),
  avoidBuggyIPs: z.boolean().optional(),
  disabled: z.boolean().optional(),
});

/** nodewarden.io/v1alpha1 L2Announcement: several node selectors, interface regexes, pool names and pool selectors together. */
const ourL2Spec = z.strictObject({
  serviceSelector: labelSelector.optional(),
  nodeSelectors: z.array(labelSelector).optional(),
  interfaces: z.array(z.string().min(1)).optional(),
  pools: z.array(z.string().min(1)).optional(),
  poolSelectors: z.array(labelSelector).optional(),
  loadBalancerIPs: z.boolean().optional(),
  externalIPs: z.boolean().optional(),
});

export function parseSpec<S extends z.ZodType>(
  o: KubeObject,
  schema: S,
): { ok: true; spec: z.infer<S> } | { ok: false; problems: InputProblem[] } {
  const result = schema.safeParse(o.spec ?? {});
  if (result.success) return { ok: true, spec: result.data };
  const problems = problemsOf(o, result.error).map((p) => ({ ...p, path: ['spec', ...p.path] }));
  return { ok: false, problems };
}

export function projectPool(o: KubeObject): Projection<LoadBalancerPool> {
  const id = objectName(o);
  // Advertisements' pool selectors (MetalLB ipAddressPoolSelectors, our poolSelectors) match these.
  const labels: Record<string, string> = { ...(o.metadata?.labels ?? {}) };
  if (o.kind === 'CiliumLoadBalancerIPPool') {
    const r = parseSpec(o, ciliumPoolSpec);
    if (!r.ok) return r;
    const blocks = r.spec.blocks ?? r.spec.cidrs ?? [];
    return ok({
      id,
      labels,
      ranges: blocks.map((b) => b.cidr ?? `${b.start}-${b.stop ?? b.start}`),
      ...(r.spec.serviceSelector ? { serviceSelector: toSelector(r.spec.serviceSelector) } : {}),
      autoAssign: true,
      avoidBuggyIPs: r.spec.allowFirstLastIPs === 'No',
      disabled: r.spec.disabled ?? false,
    });
  }
  if (o.kind === 'LoadBalancerPool') {
    const r = parseSpec(o, ourPoolSpec);
    if (!r.ok) return r;
    const bad = r.spec.blocks.findIndex((b) => (b.cidr === undefined) === (b.start === undefined));
    if (bad >= 0) {
      return {
        ok: false,
        problems: [
          {
            file: API_SOURCE,
            object: objectName(o),
            path: ['spec', 'blocks', bad],
            message: 'give either cidr or start (with an optional stop)',
          },
        ],
      };
    }
    return ok({
      id,
      labels,
      ranges: r.spec.blocks.map((b) => b.cidr ?? `${b.start}-${b.stop ?? b.start}`),
      ...(r.spec.serviceSelector ? { serviceSelector: toSelector(r.spec.serviceSelector) } : {}),
      autoAssign: r.spec.autoAssign ?? true,
      avoidBuggyIPs: r.spec.avoidBuggyIPs ?? false,
      disabled: r.spec.disabled ?? false,
    });
  }
  const r = parseSpec(o, metallbPoolSpec);
  if (!r.ok) return r;
  const selectors = r.spec.serviceAllocation?.serviceSelectors ?? [];
  if (selectors.length > 1) {
    return {
      ok: false,
      problems: [
        {
          file: API_SOURCE,
          object: objectName(o),
          path: ['spec', 'serviceAllocation', 'serviceSelectors', 1],
          message: 'only one service selector per pool is supported',
        },
      ],
    };
  }
  return ok({
    id,
    labels,
    ranges: r.spec.addresses.map((a) => a.replace(/\s+/g, '')),
    ...(selectors[0] ? { serviceSelector: toSelector(selectors[0]) } : {}),
    autoAssign: r.spec.autoAssign ?? true,
    avoidBuggyIPs: r.spec.avoidBuggyIPs ?? false,
    disabled: false,
  });
}

export function projectL2Policy(o: KubeObject): Projection<L2AnnouncementPolicy> {
  const id = objectName(o);
  if (o.kind === 'CiliumL2AnnouncementPolicy') {
    const r = parseSpec(o, ciliumL2Spec);
    if (!r.ok) return r;
    return ok({
      id,
      ...(r.spec.serviceSelector ? { serviceSelector: toSelector(r.spec.serviceSelector) } : {}),
      nodeSelectors: r.spec.nodeSelector ? [toSelector(r.spec.nodeSelector)] : [],
      interfaces: r.spec.interfaces ?? [],
      pools: [],
      poolSelectors: [],
      loadBalancerIPs: r.spec.loadBalancerIPs ?? false,
      externalIPs: r.spec.externalIPs ?? false,
    });
  }
  if (o.kind === 'L2Announcement') {
    const r = parseSpec(o, ourL2Spec);
    if (!r.ok) return r;
    return ok({
      id,
      ...(r.spec.serviceSelector ? { serviceSelector: toSelector(r.spec.serviceSelector) } : {}),
      nodeSelectors: (r.spec.nodeSelectors ?? []).map(toSelector),
      interfaces: r.spec.interfaces ?? [],
      pools: r.spec.pools ?? [],
      poolSelectors: (r.spec.poolSelectors ?? []).map(toSelector),
      loadBalancerIPs: r.spec.loadBalancerIPs ?? true,
      externalIPs: r.spec.externalIPs ?? false,
    });
  }
  const r = parseSpec(o, metallbL2Spec);
  if (!r.ok) return r;
  return ok({
    id,
    nodeSelectors: (r.spec.nodeSelectors ?? []).map(toSelector),
    interfaces: r.spec.interfaces ?? [],
    pools: r.spec.ipAddressPools ?? [],
    poolSelectors: (r.spec.ipAddressPoolSelectors ?? []).map(toSelector),
    loadBalancerIPs: true,
    externalIPs: false,
  });
}
