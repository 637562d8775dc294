/**
 * The services model's warnings (bad input with its fallback in force): the
 * manager logs each once when it appears and once when it goes, however often
 * the cluster re-syncs, and status (JSON and text) shows the current ones.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { formatServicesStatus } from '../../daemon/services/format.js';
import { ServicesManager } from '../../daemon/services/manager.js';
import type { ServicesModel } from '../../services/model.js';

const WEB =
  'Service shop/web: metadata.annotations["nodewarden.io/dsr"]: must be "true" or "false", got "yes"; using services.dsr.enabled (false)';
const API =
  'Service shop/api: metadata.annotations["nodewarden.io/dsr"]: must be "true" or "false", got "1"; using services.dsr.enabled (false)';

const FACTS = { addresses: [], loadBalancerNodes: [], devices: [] };
const HEALTH = { healthy: true, bpfAttached: true, sourcesSynced: true, lastReloadOk: true };

let manager: ServicesManager | undefined;
afterEach(() => manager?.close());

function managerWithLog(): {
  manager: ServicesManager;
  lines: { level: number; msg: string; warning?: string }[];
} {
  const lines: { level: number; msg: string; warning?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  manager = new ServicesManager(
    '::',
    log,
    () => true,
    () => {
      throw new Error('no DSR in these tests');
    },
  );
  return { manager, lines };
}

const model = (warnings?: string[]): ServicesModel => ({ services: [], ...(warnings ? { warnings } : {}) });
const warnLines = (lines: { level: number; warning?: string }[]) =>
  lines.filter((l) => l.level === 40).map((l) => l.warning);
const resolvedLines = (lines: { level: number; msg: string; warning?: string }[]) =>
  lines.filter((l) => l.level === 30 && l.msg.includes('resolved')).map((l) => l.warning);

describe('ServicesManager: the model’s warnings', () => {
  it('logs a warning once while it stays, shows it in status, and logs it resolved when it goes', async () => {
    const { manager, lines } = managerWithLog();
    await manager.sync(model([WEB]), FACTS);
    // Every lease renewal may re-sync: nothing new, nothing logged.
    await manager.sync(model([WEB]), FACTS);
    await manager.sync(model([WEB]), FACTS);
    expect(warnLines(lines)).toEqual([WEB]);
    expect(manager.status().warnings).toEqual([WEB]);

    await manager.sync(model([API, WEB]), FACTS);
    expect(warnLines(lines)).toEqual([WEB, API]);
    expect(manager.status().warnings).toEqual([API, WEB]);

    await manager.sync(model([API]), FACTS);
    expect(resolvedLines(lines)).toEqual([WEB]);
    await manager.sync(model(), FACTS);
    expect(resolvedLines(lines)).toEqual([WEB, API]);
    expect(manager.status().warnings).toEqual([]);
    expect(warnLines(lines)).toEqual([WEB, API]);
  });
});

describe('formatServicesStatus: warnings', () => {
  it('prints each warning under the services line, and nothing for a daemon that predates them', () => {
    const services = { services: 1, healthCheckNodePorts: [], conflicts: [] };
    expect(formatServicesStatus({ services: { ...services, warnings: [WEB] }, health: HEALTH })).toEqual([
      'health:   healthy (bpf attached yes, sources synced yes, last reload ok yes)',
      'services: 1 known, 0 healthCheckNodePorts',
      `  warning: ${WEB}`,
    ]);
    expect(formatServicesStatus({ services, health: HEALTH })).toEqual([
      'health:   healthy (bpf attached yes, sources synced yes, last reload ok yes)',
      'services: 1 known, 0 healthCheckNodePorts',
    ]);
  });
});
