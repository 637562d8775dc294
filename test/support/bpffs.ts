/**
 * A private bpffs per test file: pins never land in the machine's /sys/fs/bpf,
 * and unmounting drops whatever a failed test left pinned.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountBpffs } from '../../bpf/index.js';

export interface TempBpffs {
  dir: string;
  destroy(): void;
}

export function mountTempBpffs(): TempBpffs {
  const dir = mkdtempSync(join(tmpdir(), 'nw-bpffs-'));
  mountBpffs(dir);
  return {
    dir,
    destroy() {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
