/** wrk in a lab host, its summary parsed: the load generator of the HTTP benches. */
import type { Host } from '../test/lab/index.js';

export interface WrkRun {
  rps: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  /** Non-2xx/3xx responses plus socket errors. */
  errors: number;
}

/** `wrk -t2 -c32` for `seconds` against `url` from `client`; throws when wrk printed no rate. */
export async function wrk(client: Host, url: string, seconds: number): Promise<WrkRun> {
  const r = await client.exec(['wrk', '-t2', '-c32', `-d${seconds}s`, '--timeout', '2s', '--latency', url], {
    allowFailure: true,
    timeoutMs: (seconds + 60) * 1000,
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? Number.NaN);
  const ms = (label: string) => {
    const m = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(r.stdout);
    if (!m) return Number.NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const errors =
    Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0) +
    Number(/Socket errors: .*?(\d+)/.exec(r.stdout)?.[1] ?? 0);
  if (Number.isNaN(rps)) throw new Error(`wrk ${url} printed no rate: ${r.stdout}${r.stderr}`);
  return { rps, p50ms: ms('50'), p90ms: ms('90'), p99ms: ms('99'), errors };
}
