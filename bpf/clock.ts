/** The clock BPF programs stamp events with (bpf_ktime_get_boot_ns), for turning stamps into wall time. */
import { BpfError } from './native/errors.js';
import { c, lastErrno } from './native/ffi.js';

const CLOCK_BOOTTIME = 7;

export function bootTimeNs(): bigint {
  const ts: { tv_sec?: number | bigint; tv_nsec?: number | bigint } = {};
  if (c.clockGettime(CLOCK_BOOTTIME, ts) !== 0)
    throw new BpfError('read clock', 'CLOCK_BOOTTIME', lastErrno());
  return BigInt(ts.tv_sec ?? 0) * 1_000_000_000n + BigInt(ts.tv_nsec ?? 0);
}

/** Wall-clock Date of a boot-time stamp. */
export function bootTimeToDate(stampNs: bigint): Date {
  const ageMs = Number(bootTimeNs() - stampNs) / 1e6;
  return new Date(Date.now() - ageMs);
}
