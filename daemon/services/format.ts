/** The `services` block of `nodewarden status`. */
import type { DaemonStatus } from '../daemon.js';
import type { ServicesStatus } from './manager.js';

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
    ...(services.warnings ?? []).map((w) => `  warning: ${w}`),
    ...formatDsr(services.dsr),
  ];
}

const yes = (v: boolean) => (v ? 'yes' : 'NO');

function formatDsr(dsr: ServicesStatus['dsr']): string[] {
  if (!dsr) return [];
  const stats = dsr.stats;
  return [
    `dsr:      ${dsr.vips.length} VIP ports, ${dsr.tables.length} Maglev tables${dsr.lastApply ? `, last apply ${dsr.lastApply.at} in ${dsr.lastApply.ms} ms` : ''}`,
    ...dsr.tables.map((t) => `  ${t.service.padEnd(36)} backends ${t.backends.join(', ') || '(none)'}`),
    ...(dsr.localVips.length > 0
      ? [
          `  backend for ${dsr.localVips.join(', ')} (from ${dsr.loadBalancerNodes.join(', ') || 'no load-balancer node'})`,
        ]
      : []),
    ...(stats
      ? [
          `  packets: ${stats.forwarded} forwarded (${stats.flowHit} by flow table), ${stats.decapsulated} decapsulated; passed: ${stats.noBackend} no backend, ${stats.local} backend is local; dropped: ${stats.fibFailed} no route/neighbour, ${stats.tooBig} too big`,
        ]
      : []),
    ...dsr.warnings.map((w) => `  warning: ${w}`),
    ...(dsr.lastError ? [`  FAILED (the DSR state in force stays): ${dsr.lastError.message}`] : []),
  ];
}
