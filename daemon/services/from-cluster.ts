/**
 * The Kubernetes source: the watcher's Services and EndpointSlices → the
 * services model for this node. Pure, so the mapping is unit-tested apart
 * from the API.
 */
import { isIP } from 'node:net';
import type { NodeInfo, ServiceInfo } from '../../model/cluster.js';
import { type Service, type ServicesModel, serviceKey } from '../../services/model.js';
import { type Config, servicesSchema } from '../config/schema.js';

/**
 * Per-service DSR switch on the Service object: exactly "true" or "false".
 * Any other value falls back to `services.dsr.enabled` with a warning: rejecting
 * the Service would also close its health port and stop its announcements.
 */
export const DSR_ANNOTATION = 'nodewarden.io/dsr';

/** The annotation as a field path; its key holds dots and a slash, so it goes in brackets. */
export const DSR_ANNOTATION_PATH = `metadata.annotations[${JSON.stringify(DSR_ANNOTATION)}]`;

/** Long enough to recognise a value, short enough for one status line. */
const MAX_VALUE_SHOWN = 64;

/** The cluster's services, and what in them was not used as written (with the fallback taken). */
export interface ClusterServices extends ServicesModel {
  warnings: string[];
}

export interface ClusterServicesInput {
  services: readonly ServiceInfo[];
  /** `namespace/service` → node name → ready endpoints. */
  readyEndpoints: ReadonlyMap<string, ReadonlyMap<string, number>>;
  nodes: readonly NodeInfo[];
}

/**
 * A node's addresses DSR tunnels to: per address family its InternalIPs, else
 * its ExternalIPs, so that a node with an IPv4 InternalIP and only an IPv6
 * ExternalIP is a backend of IPv6 VIPs too (tables never mix families).
 */
function nodeAddresses(node: NodeInfo | undefined): string[] {
  if (!node) return [];
  return [4, 6].flatMap((family) => {
    const of = node.addresses.filter((a) => isIP(a.address) === family);
    const internal = of.filter((a) => a.type === 'InternalIP');
    return (internal.length > 0 ? internal : of).map((a) => a.address);
  });
}

function dsrFor(service: ServiceInfo, dsrDefault: boolean): { dsr: boolean; warning?: string } {
  const value = service.annotations[DSR_ANNOTATION];
  if (value === undefined) return { dsr: dsrDefault };
  if (value === 'true') return { dsr: true };
  if (value === 'false') return { dsr: false };
  const shown = value.length > MAX_VALUE_SHOWN ? `${value.slice(0, MAX_VALUE_SHOWN)}…` : value;
  return {
    dsr: dsrDefault,
    warning: `Service ${serviceKey(service)}: ${DSR_ANNOTATION_PATH}: must be "true" or "false", got ${JSON.stringify(shown)}; using services.dsr.enabled (${dsrDefault})`,
  };
}

export function servicesFromCluster(
  input: ClusterServicesInput,
  nodeName: string,
  dsrDefault: boolean,
): ClusterServices {
  const nodesByName = new Map(input.nodes.map((n) => [n.name, n]));
  const warnings: string[] = [];
  const sorted = [...input.services].sort((a, b) => serviceKey(a).localeCompare(serviceKey(b)));
  const services = sorted.map((s): Service => {
    const byNode = input.readyEndpoints.get(serviceKey(s));
    const readyNodes = [...(byNode ?? new Map<string, number>()).entries()]
      .filter(([node, n]) => node !== '' && n > 0)
      .map(([node]) => node)
      .sort();
    const { dsr, warning } = dsrFor(s, dsrDefault);
    if (warning) warnings.push(warning);
    return {
      namespace: s.namespace,
      name: s.name,
      type: 'LoadBalancer',
      loadBalancerIPs: [...s.ingressIPs],
      externalIPs: [...(s.externalIPs ?? [])],
      ports: s.ports.map((p) => ({ ...p })),
      externalTrafficPolicy: s.externalTrafficPolicy,
      ...(s.healthCheckNodePort !== undefined ? { healthCheckNodePort: s.healthCheckNodePort } : {}),
      localReadyEndpoints: byNode?.get(nodeName) ?? 0,
      dsr,
      backendNodes: [...new Set(readyNodes.flatMap((n) => nodeAddresses(nodesByName.get(n))))],
    };
  });
  return { services, warnings };
}

/**
 * The config with the cluster's services added to `services.items`, so that
 * what reads services from the config (the firewall's automatic allows for
 * health ports and DSR decapsulation) sees them too.
 */
export function configWithClusterServices<C extends Pick<Config, 'services'>>(
  config: C,
  cluster: ServicesModel,
): C {
  if (cluster.services.length === 0) return config;
  const services = config.services ?? servicesSchema.parse({});
  return { ...config, services: { ...services, items: [...cluster.services, ...services.items] } };
}
