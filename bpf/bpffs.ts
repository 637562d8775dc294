/**
 * The pin directory must sit on a bpffs. /sys/fs/bpf is one on systemd hosts,
 * but `ip netns exec` gives its command a fresh /sys without it, and minimal
 * containers have none; so the daemon mounts it when it is missing.
 */
import { mkdirSync, statfsSync } from 'node:fs';
import { BpfError } from './native/errors.js';
import { c, lastErrno } from './native/ffi.js';

const BPF_FS_MAGIC = 0xcafe4a11;
const DEFAULT_BPFFS = '/sys/fs/bpf';

export function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes sure `pinDir` exists on a bpffs. Mounts bpffs at /sys/fs/bpf when the
 * pin dir lives under it and nothing is mounted there yet; any other location
 * must already be a bpffs (tests mount their own).
 */
export function ensurePinDir(pinDir: string): void {
  const underDefault = pinDir === DEFAULT_BPFFS || pinDir.startsWith(`${DEFAULT_BPFFS}/`);
  if (underDefault && !isBpffs(DEFAULT_BPFFS)) mountBpffs(DEFAULT_BPFFS);
  mkdirSync(pinDir, { recursive: true, mode: 0o700 });
  if (!isBpffs(pinDir)) {
    throw new BpfError(
      'use pin directory',
      pinDir,
      22,
      'not on a bpffs; mount one with: mount -t bpf bpf <dir>',
    );
  }
}

export function mountBpffs(target: string): void {
  mkdirSync(target, { recursive: true });
  if (c.mount('bpf', target, 'bpf', 0, null) !== 0) throw new BpfError('mount bpffs at', target, lastErrno());
}
