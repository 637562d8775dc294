/**
 * What every real BGP peer of the test harness offers, whatever its CLI:
 * the session's state and the routes it received, read through the peer's own
 * tool (birdc, vtysh, gobgp) and normalized to one shape.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host, LabProcess } from '../lab/index.js';

export type PeerFamily = 'ipv4' | 'ipv6';

export interface NeighborSpec {
  /** The neighbor's address as the peer sees it (our speaker, or another peer). */
  address: string;
  asn: number;
  /** The peer's own address for this session (BIRD's `local`, FRR's update-source). */
  localAddress?: string;
  port?: number;
  password?: string;
  /** Wait for the neighbor to connect. */
  passive?: boolean;
  holdTime?: number;
  /** eBGP multihop TTL. */
  multihop?: number;
  /** Act as a graceful restart helper (and speaker) with this restart time. */
  gracefulRestart?: { restartTime: number };
  families?: PeerFamily[];
  /** Prefixes this peer announces to the neighbor. */
  announce?: string[];
  /** Seconds before the first connect attempt (BIRD's `connect delay time`); BIRD only. */
  connectDelay?: number;
}

export interface PeerSpec {
  asn: number;
  routerId: string;
  /** Address to listen on; every peer listens on port 179 unless `listenPort` is set. */
  listenAddress?: string;
  listenPort?: number;
  neighbors: NeighborSpec[];
}

export interface PeerRoute {
  prefix: string;
  nextHop: string;
  asPath: number[];
  /** "65001:100" */
  communities: string[];
  /** "65001:1:2" */
  largeCommunities: string[];
  localPref?: number;
  med?: number;
  /** Whether the peer marks the route stale (graceful restart), where its CLI says so. */
  stale?: boolean;
}

export type PeerImplementation = 'bird' | 'frr' | 'gobgp';

export interface RealPeer {
  readonly implementation: PeerImplementation;
  readonly process: LabProcess;
  /** Private directory with config, sockets, pid file and logs. */
  readonly dir: string;
  /** 'Established' or the peer's own word for the state it is in. */
  sessionState(neighbor: string): Promise<string>;
  /** Routes received from `neighbor` (all of them when omitted), one entry per prefix. */
  routes(family: PeerFamily, neighbor?: string): Promise<PeerRoute[]>;
  /** Number of routes received, cheaper than routes() for large tables. */
  routeCount(family: PeerFamily): Promise<number>;
  /** SIGTERM then SIGKILL, and removes the private directory. */
  stop(): Promise<void>;
}

const WELL_KNOWN: Record<string, string> = {
  'graceful-shutdown': '65535:0',
  'accept-own': '65535:1',
  'llgr-stale': '65535:6',
  'no-llgr': '65535:7',
  blackhole: '65535:666',
  'no-export': '65535:65281',
  'no-advertise': '65535:65282',
  'local-AS': '65535:65283',
  'no-export-subconfed': '65535:65283',
  'no-peer': '65535:65284',
  noPeer: '65535:65284',
};

/** A community as "asn:value", whatever name the peer's CLI gives a well-known one. */
export function numericCommunity(text: string): string {
  return WELL_KNOWN[text] ?? text;
}

/** Routes in prefix order, whatever order the peer's CLI printed them in. */
export function byPrefix(routes: PeerRoute[]): PeerRoute[] {
  return routes.sort((a, b) => a.prefix.localeCompare(b.prefix));
}

export function familyOf(prefix: string): PeerFamily {
  return prefix.includes(':') ? 'ipv6' : 'ipv4';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until `done` holds; throws with the last value seen when time runs out. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 20_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (done(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const seen = lastError
        ? `error: ${(lastError as Error).message}`
        : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${seen}`);
    }
    await sleep(intervalMs);
  }
}

export function waitEstablished(peer: RealPeer, neighbor: string, timeoutMs = 30_000): Promise<string> {
  return waitFor(
    `${peer.implementation} session with ${neighbor} to establish`,
    () => peer.sessionState(neighbor),
    (state) => state === 'Established',
    timeoutMs,
  );
}

/** A peer daemon we started: its private directory and process, which stop() ends and removes. */
export abstract class PeerProcess {
  constructor(
    readonly host: Host,
    readonly dir: string,
    readonly process: LabProcess,
  ) {}

  /** Waits until the daemon answers on its CLI; if it never does, stops it and throws its output. */
  protected async ready(
    what: string,
    ask: () => Promise<string>,
    answered: (out: string) => boolean,
  ): Promise<void> {
    try {
      await waitFor(
        what,
        async () => {
          if (!this.process.running) throw new Error(`exited: ${this.process.output}`);
          return ask();
        },
        answered,
        15_000,
        100,
      );
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.process.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A fresh private directory under the temp dir holding the given files. */
export function privateDir(prefix: string, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), `nw-${prefix}-`));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
