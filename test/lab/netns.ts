import { readFileSync } from 'node:fs';
import { run } from './exec.js';
import { NETNS_PREFIX, parseLabNetns } from './names.js';

const PID_EXIT_TIMEOUT_MS = 5_000;

export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run(['ip', 'netns', 'list']);
  // Lines look like "name" or "name (id: 3)".
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/** All `nwl-*` namespaces on the machine, whichever process created them. */
export async function listLabNamespaces(): Promise<string[]> {
  return (await listNamespaces()).filter((name) => name.startsWith(NETNS_PREFIX));
}

/**
 * Whether `pid` exists and has not yet exited. A zombie counts as dead: it has already left its
 * namespaces, and an orphan's zombie lingers for as long as init takes to reap it.
 */
export function isPidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  // "pid (comm) S ...": comm may itself contain ') ', so look after the last one.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/**
 * Deletes lab namespaces after SIGKILLing whatever still runs inside them: an emptied namespace
 * disappears together with its interfaces, a populated one would linger unnamed.
 * Keeps going past failures and throws them all at the end.
 */
export async function deleteLabNamespaces(names: readonly string[]): Promise<void> {
  const foreign = names.filter((name) => !name.startsWith(NETNS_PREFIX));
  if (foreign.length > 0) throw new Error(`refusing to delete non-lab namespaces: ${foreign.join(', ')}`);

  const existing = new Set(await listNamespaces());
  const errors: unknown[] = [];
  for (const name of names.filter((n) => existing.has(n))) {
    try {
      await killNamespacePids(name);
      await run(['ip', 'netns', 'del', name]);
    } catch (e) {
      errors.push(e);
    }
  }

  const left = new Set(await listNamespaces());
  const stuck = names.filter((n) => left.has(n));
  if (stuck.length > 0)
    errors.push(new Error(`lab namespaces still present after delete: ${stuck.join(', ')}`));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1)
    throw new AggregateError(errors, `failed to delete lab namespaces: ${names.join(', ')}`);
}

async function killNamespacePids(netns: string): Promise<void> {
  const { stdout } = await run(['ip', 'netns', 'pids', netns]);
  const pids = stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
  const deadline = Date.now() + PID_EXIT_TIMEOUT_MS;
  for (;;) {
    const alive = pids.filter(isPidAlive);
    if (alive.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `processes ${alive.join(', ')} in ${netns} still exist ${PID_EXIT_TIMEOUT_MS} ms after SIGKILL`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Deletes the lab namespaces whose owning process is gone (a crashed or killed test run).
 * Namespaces of live processes are never touched, so concurrent runs are safe.
 * Returns the names it deleted.
 */
export async function sweepStaleLabs(): Promise<string[]> {
  const stale = (await listLabNamespaces()).filter((name) => {
    const parsed = parseLabNetns(name);
    return parsed !== undefined && !isPidAlive(parsed.pid);
  });
  await deleteLabNamespaces(stale);
  return stale;
}
