/** The `services` block of `nodewarden status`. */
import type { DaemonStatus } from '../daemon.js';

export function formatServicesStatus(s: Pick<DaemonStatus, 'services' | 'health'>): string[] {
  const { services, health } = s;
  if (!services || !health) return [];
  const checks = `bpf attached ${yes(health.bpfAttached)}, sources synced ${yes(health.sourcesSynced)}, last reload ok ${yes(health.lastReloadOk)}`;
  return [
    `health:   ${health.healthy ? 'healthy' : 'UNHEALTHY'} (${checks})`,
    `services: ${services.services} known, ${services.healthCheckNodePorts.length} healthCheckNodePorts`,
    ...services.healthCheckNodePorts.map((p) => {
      const answer = p.localEndpoints > 0 && health.bpfAttached && health.sourcesSynced ? '200' : '503';
      const state = p.state === 'failed' ? `FAILED: ${p.error}` : p.state;
      return `  ${String(p.port).padEnd(6)} ${p.service.padEnd(30)} ${p.localEndpoints} local endpoints (answers ${answer})  ${state}`;
    }),
    ...services.conflicts.map((c) => `  CONFLICT: ${c.service} wants ${c.port}, held by ${c.heldBy}`),
  ];
}

const yes = (v: boolean) => (v ? 'yes' : 'NO');
