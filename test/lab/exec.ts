import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface RunOptions {
  /** Resolve with the non-zero exit code instead of throwing. */
  allowFailure?: boolean;
  /** Written to stdin, which is then closed; without it stdin is empty. */
  input?: string;
  /** SIGKILL the command and throw after this long; a hung tool must not hang the suite. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stdout: string,
    readonly stderr: string,
    reason: string,
  ) {
    const detail = stderr.trim() || stdout.trim();
    super(`command failed (${reason}): ${formatArgv(argv)}${detail ? `\n${detail}` : ''}`);
    this.name = 'CommandError';
  }
}

/** Shell-like rendering, so a failing command can be pasted into a terminal. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/** Runs a command to completion without a shell. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error('run: empty command'));
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
      // A daemonised grandchild may still hold the pipes open; 'close' would then never come.
      child.stdout.destroy();
      child.stderr.destroy();
    }, timeoutMs);

    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${formatArgv(argv)}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(new CommandError(argv, code, signal, stdout, stderr, `timed out after ${timeoutMs} ms`));
      } else if (code === 0) {
        resolve({ stdout, stderr, code });
      } else if (opts.allowFailure) {
        resolve({ stdout, stderr, code: code ?? 128 + (signal ? constants.signals[signal] : 0) });
      } else {
        const reason = code === null ? `killed by ${signal}` : `exit code ${code}`;
        reject(new CommandError(argv, code, signal, stdout, stderr, reason));
      }
    });

    // The command may exit without reading its input; that is its business, not an error here.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}
