/** Points the bundled code at the files the package installs beside the executable. */
import { join } from 'node:path';
import { packageLibDir } from './lib-dir.js';

// bpf/paths.ts reads this at each load; the unit file does not need to set it.
process.env.NODEWARDEN_BPF_DIR ??= join(packageLibDir(), 'bpf');
