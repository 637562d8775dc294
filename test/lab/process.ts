import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { formatArgv } from './exec.js';

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A background command whose output is collected as text. */
export class LabProcess {
  readonly pid: number;
  /** Resolves (never rejects) once the process has exited and been reaped. */
  readonly exited: Promise<ExitStatus>;
  #child: ChildProcessByStdio<null, Readable, Readable>;
  #stdout = '';
  #stderr = '';
  #output = '';
  #status: ExitStatus | undefined;
  #closed = false;
  #watchers = new Set<() => void>();

  constructor(
    readonly argv: readonly string[],
    opts: SpawnOptions = {},
  ) {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('spawn: empty command');
    this.#child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let startError: Error | undefined;
    this.#child.on('error', (e) => {
      startError = e;
    });
    if (this.#child.pid === undefined) {
      throw new Error(`cannot start ${formatArgv(argv)}${startError ? `: ${startError.message}` : ''}`);
    }
    this.pid = this.#child.pid;

    this.#child.stdout.setEncoding('utf8').on('data', (s: string) => {
      this.#stdout += s;
      this.#append(s);
    });
    this.#child.stderr.setEncoding('utf8').on('data', (s: string) => {
      this.#stderr += s;
      this.#append(s);
    });
    // 'exit' rather than 'close': a grandchild holding the pipes must not delay teardown.
    this.exited = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => {
        this.#status = { code, signal };
        resolve(this.#status);
      });
    });
    this.#child.on('close', () => {
      this.#closed = true;
      this.#notify();
    });
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** stdout and stderr interleaved in arrival order. */
  get output(): string {
    return this.#output;
  }

  get running(): boolean {
    return this.#status === undefined;
  }

  /** Sends a signal unless the process has already exited; returns whether it was sent. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    return this.running && this.#child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it is still alive after `graceMs`. */
  async stop(graceMs = 1_000): Promise<ExitStatus> {
    if (!this.kill('SIGTERM')) return this.exited;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const first = await Promise.race([this.exited, graceOver]);
    clearTimeout(timer);
    if (first === 'timeout') this.kill('SIGKILL');
    return this.exited;
  }

  /** Resolves with the first match of `re` in the combined output. */
  waitForOutput(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        this.#watchers.delete(check);
      };
      const check = () => {
        const match = this.#output.match(re);
        if (match) {
          finish();
          resolve(match);
        } else if (this.#closed) {
          finish();
          reject(
            new Error(
              `${this.#label()} exited (${describeStatus(this.#status)}) before printing ${re}${this.#tail()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${re} from ${this.#label()}${this.#tail()}`),
        );
      }, timeoutMs);
      this.#watchers.add(check);
      check();
    });
  }

  #append(s: string): void {
    this.#output += s;
    this.#notify();
  }

  #notify(): void {
    for (const check of [...this.#watchers]) check();
  }

  #label(): string {
    return `pid ${this.pid} (${formatArgv(this.argv)})`;
  }

  #tail(): string {
    const out = this.#output.trim();
    return out ? `; output so far:\n${out}` : '; no output';
  }
}

function describeStatus(status: ExitStatus | undefined): string {
  if (!status) return 'unknown status';
  return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
}
