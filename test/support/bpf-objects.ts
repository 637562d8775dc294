/**
 * Every BPF object of bpf/out through the running kernel's verifier: each
 * program alone (so a rejection names its program) and then the whole object
 * as the daemon loads it. Run inside the Debian 12 guest by the kernel test
 * (test/integration/debian12-kernel.test.ts) and the DSR-against-IPVS bench.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BpfError, BpfObject } from '../../bpf/index.js';
import { bpfObjectDir } from '../../bpf/paths.js';
import { mountTempBpffs } from './bpffs.js';

/** The verifier's conclusion is at the end of its log; the start only repeats the program. */
const LOG_TAIL = 6000;

export interface ObjectVerdict {
  object: string;
  /** 'loaded', or the error with the tail of the verifier log. */
  whole: string;
  programs: Record<string, string>;
}

function verdict(load: () => BpfObject): string {
  try {
    load().close();
    return 'loaded';
  } catch (e) {
    if (e instanceof BpfError && e.verifierLog)
      return `${e.op} ${e.object}: ${e.code}\nverifier log (tail):\n${e.verifierLog.slice(-LOG_TAIL)}`;
    return String((e as Error).message);
  }
}

export function loadEveryObject(): ObjectVerdict[] {
  const bpffs = mountTempBpffs();
  try {
    return readdirSync(bpfObjectDir())
      .filter((f) => f.endsWith('.o'))
      .sort()
      .map((file) => {
        const path = join(bpfObjectDir(), file);
        const pinDir = (what: string) => `${bpffs.dir}/${file.replace(/\.o$/, '')}/${what}`;
        // No program autoloaded: only the maps are created, enough to list the programs.
        const names = BpfObject.load(path, { programs: [], pinDir: pinDir('maps') });
        const programs = names.programNames();
        names.close();
        return {
          object: file,
          programs: Object.fromEntries(
            programs.map((p) => [
              p,
              verdict(() => BpfObject.load(path, { programs: [p], pinDir: pinDir(p) })),
            ]),
          ),
          whole: verdict(() => BpfObject.load(path, { pinDir: pinDir('all') })),
        };
      });
  } finally {
    bpffs.destroy();
  }
}
