/**
 * Services on this node: plans the healthCheckNodePorts from the services
 * model and keeps the health servers in line with the plan.
 */
import { type HealthPlan, planHealthPorts } from '../../services/health-plan.js';
import type { ServicesModel } from '../../services/model.js';
import type { Logger } from '../log.js';
import { type HealthPortStatus, HealthServers } from './health-servers.js';

export interface ServicesStatus {
  services: number;
  healthCheckNodePorts: HealthPortStatus[];
  conflicts: HealthPlan['conflicts'];
}

export class ServicesManager {
  private readonly health: HealthServers;
  private model: ServicesModel = { services: [] };
  private plan: HealthPlan = { ports: [], conflicts: [] };

  constructor(
    bindAddress: string,
    private readonly log: Logger,
    proxyHealthy: () => boolean,
  ) {
    this.health = new HealthServers(bindAddress, log, proxyHealthy);
  }

  /** Applies a new model; resolves when new ports are bound or have failed. */
  sync(model: ServicesModel): Promise<void> {
    this.model = model;
    this.plan = planHealthPorts(model.services);
    for (const c of this.plan.conflicts)
      this.log.error(c, `healthCheckNodePort ${c.port} of ${c.service} is already ${c.heldBy}'s; not served`);
    return this.health.apply(this.plan.ports);
  }

  status(): ServicesStatus {
    return {
      services: this.model.services.length,
      healthCheckNodePorts: this.health.status(),
      conflicts: this.plan.conflicts,
    };
  }

  close(): void {
    this.health.close();
  }
}
