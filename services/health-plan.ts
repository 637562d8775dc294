/**
 * Which healthCheckNodePorts this node serves, and what each one answers.
 * kube-proxy serves one for every LoadBalancer service with
 * externalTrafficPolicy Local and a healthCheckNodePort; so do we.
 */
import type { SystemAllow } from '../host-policies/compile.js';
import { type Service, serviceKey } from './model.js';

export interface HealthPort {
  port: number;
  namespace: string;
  name: string;
  localEndpoints: number;
}

export interface HealthPlan {
  /** Sorted by port. */
  ports: HealthPort[];
  /** Services whose port another service already took (the Kubernetes API never allocates one twice). */
  conflicts: { service: string; port: number; heldBy: string }[];
}

export function servesHealthCheck(s: Service): s is Service & { healthCheckNodePort: number } {
  return (
    s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local' && s.healthCheckNodePort !== undefined
  );
}

export function planHealthPorts(services: readonly Service[]): HealthPlan {
  const byPort = new Map<number, HealthPort>();
  const conflicts: HealthPlan['conflicts'] = [];
  // Sorted first, so that which of two clashing services wins does not depend on input order.
  const candidates = services
    .filter(servesHealthCheck)
    .sort((a, b) => serviceKey(a).localeCompare(serviceKey(b)));
  for (const s of candidates) {
    const held = byPort.get(s.healthCheckNodePort);
    if (held) {
      conflicts.push({ service: serviceKey(s), port: s.healthCheckNodePort, heldBy: serviceKey(held) });
      continue;
    }
    byPort.set(s.healthCheckNodePort, {
      port: s.healthCheckNodePort,
      namespace: s.namespace,
      name: s.name,
      localEndpoints: s.localReadyEndpoints,
    });
  }
  return { ports: [...byPort.values()].sort((a, b) => a.port - b.port), conflicts };
}

export interface HealthResponse {
  status: 200 | 503;
  headers: Record<string, string>;
  body: string;
}

/**
 * kube-proxy's answer (pkg/proxy/healthcheck, service health server): any
 * path and method, 200 only while there are local endpoints and the proxy
 * itself is healthy, the endpoint count as a load-balancing weight.
 */
export function healthResponse(port: HealthPort, proxyHealthy: boolean): HealthResponse {
  const body = {
    service: { namespace: port.namespace, name: port.name },
    localEndpoints: port.localEndpoints,
    serviceProxyHealthy: proxyHealthy,
  };
  return {
    status: port.localEndpoints > 0 && proxyHealthy ? 200 : 503,
    headers: {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'X-Load-Balancing-Endpoint-Weight': String(port.localEndpoints),
    },
    body: `${JSON.stringify(body, null, '\t')}\n`,
  };
}

/** The host firewall lets every load balancer reach the health ports, whatever the policies say. */
export function healthCheckSystemAllows(plan: HealthPlan): SystemAllow[] {
  return plan.ports.map((p) => ({
    reason: `healthCheckNodePort ${p.port}/TCP of ${p.namespace}/${p.name}`,
    direction: 'ingress' as const,
    peers: 'any' as const,
    l4: [{ kind: 'ports' as const, protocol: 'TCP' as const, port: p.port, endPort: p.port }],
  }));
}
