/**
 * Owned IPs as local routes (`ip route add local IP dev lo table local`), so
 * services on this node accept traffic for them. nodewarden tags its routes
 * with its own protocol number and only ever lists, adds or deletes routes
 * with that tag: routes anyone else made are never touched.
 */
import { spawn } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { canonicalIp } from '../../announcers/l2/addresses.js';

/** rtnetlink route protocol of nodewarden's L2 local routes ('L'); see /etc/iproute2/rt_protos. */
export const L2_ROUTE_PROTO = 76;

class IpCommandError extends Error {}

/** Runs `ip` without blocking the event loop (a thousand routes take a while). */
function ip(args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else
        reject(new IpCommandError(stderr.trim().split('\n')[0] || `ip ${args.join(' ')}: exit code ${code}`));
    });
    if (child.stdin) {
      // ip may exit before reading everything (a bad line without -force): the close event reports it.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}

export async function listLocalRoutes(): Promise<string[]> {
  const out: string[] = [];
  for (const family of ['-4', '-6']) {
    const text = await ip(['-j', family, 'route', 'show', 'table', 'local', 'proto', String(L2_ROUTE_PROTO)]);
    const routes = JSON.parse(text || '[]') as { dst: string; type?: string }[];
    for (const r of routes) if (r.type === 'local') out.push(canonicalIp(r.dst.split('/')[0]!));
  }
  return out.sort();
}

export function diffLocalRoutes(live: readonly string[], wanted: readonly string[]) {
  const have = new Set(live);
  const want = new Set(wanted.map(canonicalIp));
  return {
    add: [...want].filter((i) => !have.has(i)).sort(),
    remove: [...have].filter((i) => !want.has(i)).sort(),
  };
}

function routeCommand(verb: 'replace' | 'del', address: string): string {
  const prefix = `${address}/${isIPv4(address) ? 32 : 128}`;
  return `route ${verb} local ${prefix} dev lo table local proto ${L2_ROUTE_PROTO}`;
}

export interface RouteSyncResult {
  added: string[];
  removed: string[];
  errors: { ip: string; error: string }[];
}

/**
 * Makes our tagged local routes exactly `wanted`: one `ip -batch` for all
 * changes (a thousand IPs must not cost a thousand processes), then a fresh
 * listing tells which changes did not take.
 */
export async function syncLocalRoutes(wanted: readonly string[]): Promise<RouteSyncResult> {
  const result: RouteSyncResult = { added: [], removed: [], errors: [] };
  let live: string[];
  try {
    live = await listLocalRoutes();
  } catch (error) {
    result.errors.push({ ip: '*', error: `list local routes: ${errorText(error)}` });
    return result;
  }
  const { add, remove } = diffLocalRoutes(live, wanted);
  if (add.length + remove.length === 0) return result;
  const commands = [
    ...remove.map((a) => routeCommand('del', a)),
    ...add.map((a) => routeCommand('replace', a)),
  ];
  let batchError = '';
  try {
    await ip(['-force', '-batch', '-'], `${commands.join('\n')}\n`);
  } catch (error) {
    batchError = errorText(error);
  }
  let after: Set<string>;
  try {
    after = new Set(await listLocalRoutes());
  } catch (error) {
    result.errors.push({ ip: '*', error: `list local routes: ${errorText(error)}` });
    return result;
  }
  for (const address of remove) {
    if (after.has(address))
      result.errors.push({ ip: address, error: `del local route: ${batchError || 'still present'}` });
    else result.removed.push(address);
  }
  for (const address of add) {
    if (after.has(address)) result.added.push(address);
    else result.errors.push({ ip: address, error: `add local route: ${batchError || 'missing after add'}` });
  }
  return result;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Keeps our local routes following the latest wish, one sync at a time: a wish
 * that arrives during a sync runs right after it (intermediate ones are skipped).
 */
export class LocalRoutes {
  /** The routes in place after the last sync. */
  present: string[] = [];
  private running: Promise<void> | undefined;
  private next: readonly string[] | undefined;

  constructor(private readonly onResult: (result: RouteSyncResult) => void) {}

  want(ips: readonly string[]): void {
    this.next = ips;
    this.running ??= this.drain();
  }

  private async drain(): Promise<void> {
    while (this.next) {
      const wanted = this.next;
      this.next = undefined;
      const result = await syncLocalRoutes(wanted);
      const failed = new Set(result.errors.map((e) => e.ip));
      this.present = wanted.map(canonicalIp).filter((ip) => !failed.has(ip) && !failed.has('*'));
      this.onResult(result);
    }
    this.running = undefined;
  }

  /** Resolves when every wish so far is in place (or has failed). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }
}
