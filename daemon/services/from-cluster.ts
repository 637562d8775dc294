/**
 * The Kubernetes source: the watcher's Services and EndpointSlices → the
 * services model for this node. Pure, so the mapping is unit-tested apart
 * from the API.
 */
import { isIP } from 'node:net';
import type { NodeInfo, ServiceInfo } from '../../model/cluster.js';
import type { Service, ServicesModel } from '../../services/model.js';
import { type Config, servicesSchema } from '../config/schema.js';

/** Per-service DSR switch on the Service object; any other value than "true"/"false" means the default. */
export const DSR_ANNOTATION = 'nodewarden.io/dsr';

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

function dsrFor(service: ServiceInfo, dsrDefault: boolean): boolean {
  const value = service.annotations[DSR_ANNOTATION];
  if (value === 'true') return true;
  if (value === 'false') return false;
  return dsrDefault;
}

export function servicesFromCluster(
  input: ClusterServicesInput,
  nodeName: string,
  dsrDefault: boolean,
): ServicesModel {
  const nodesByName = new Map(input.nodes.map((n) => [n.name, n]));
  const services = input.services.map((s): Service => {
    const byNode = input.readyEndpoints.get(`${s.namespace}/${s.name}`);
    const readyNodes = [...(byNode ?? new Map<string, number>()).entries()]
      .filter(([node, n]) => node !== '' && n > 0)
      .map(([node]) => node)
      .sort();
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
      dsr: dsrFor(s, dsrDefault),
      backendNodes: [...new Set(readyNodes.flatMap((n) => nodeAddresses(nodesByName.get(n))))],
    };
  });
  services.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return { services };
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
