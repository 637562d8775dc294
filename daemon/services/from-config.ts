/** The standalone source: `services` in config.yaml → the services model. */
import type { ServicesModel } from '../../services/model.js';
import type { ServicesConfig } from '../config/schema.js';

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
