/** The standalone source: `services` in config.yaml → the services model. */
import type { ServicesModel } from '../../services/model.js';
import type { Config, ServicesConfig } from '../config/schema.js';

export function servicesFromConfig(config: ServicesConfig | undefined): ServicesModel {
  const dsrDefault = config?.dsr.enabled ?? false;
  return {
    services: (config?.items ?? []).map(({ dsr, ports, ...rest }) => ({
      ...rest,
      ports: ports.map((p) => ({ ...p })),
      dsr: dsr ?? dsrDefault,
    })),
  };
}

/** The nodes that may send this node DSR traffic: services.dsr.loadBalancerNodes, else every cluster node. */
export function loadBalancerNodesFromConfig(config: Pick<Config, 'services' | 'cluster'>): string[] {
  const listed = config.services?.dsr.loadBalancerNodes ?? [];
  return listed.length > 0 ? listed : config.cluster.nodes;
}
