/** Where the compiled BPF objects live, in a checkout and in the package. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory holding <name>.o. NODEWARDEN_BPF_DIR wins (the package sets it
 * to /usr/lib/nodewarden/bpf); otherwise bpf/out next to this source or bundle.
 */
export function bpfObjectDir(): string {
  if (process.env.NODEWARDEN_BPF_DIR) return process.env.NODEWARDEN_BPF_DIR;
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'out'), join(here, '..', 'bpf', 'out'), join(here, 'bpf')]) {
    if (existsSync(join(candidate, 'counters.o'))) return candidate;
  }
  return join(here, 'out');
}

export function bpfObjectPath(name: string): string {
  return join(bpfObjectDir(), `${name}.o`);
}
