/** Shared CLI plumbing: flags every command takes, usage errors, output formats. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import { DEFAULT_PIN_DIR, DEFAULT_RUN_DIR } from '../paths.js';

/** Exit codes: 0 success, 1 invalid input or a failed check, 2 usage error. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const commonOptions = {
  config: { type: 'string', default: DEFAULT_CONFIG_PATH },
  'pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
  'run-dir': { type: 'string', default: DEFAULT_RUN_DIR },
  output: { type: 'string', short: 'o', default: 'text' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export interface CommonFlags {
  config: string;
  pinDir: string;
  runDir: string;
  output: 'text' | 'json';
  help: boolean;
}

export function parseCommon(argv: string[], extra: ParseArgsConfig['options'] = {}) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...commonOptions, ...extra },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const output = v.output as string;
  if (output !== 'text' && output !== 'json')
    throw new UsageError(`--output must be text or json, not ${output}`);
  const flags: CommonFlags = {
    config: v.config as string,
    pinDir: v['pin-dir'] as string,
    runDir: v['run-dir'] as string,
    output,
    help: v.help === true,
  };
  return { flags, values: v, positionals: parsed.positionals };
}

export const COMMON_HELP = `Common flags:
  --config FILE    configuration file (default ${DEFAULT_CONFIG_PATH})
  --pin-dir DIR    bpffs directory for pinned maps and links (default ${DEFAULT_PIN_DIR})
  --run-dir DIR    directory of the control socket (default ${DEFAULT_RUN_DIR})
  -o, --output F   text or json (default text)
  -h, --help       this help`;
