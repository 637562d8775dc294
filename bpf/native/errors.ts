import { constants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // EAGAIN and EWOULDBLOCK share a number; keep the first, which is the common name.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** The symbolic name of an errno value, such as `ENOENT`, or `E<number>` if unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/**
 * Every failure of a native call. It carries what was attempted (`op`), on what
 * (`object`: a file, map, program or interface), and the errno name, so that logs
 * and status can say exactly what failed without a stack trace.
 */
export class BpfError extends Error {
  override readonly name = 'BpfError';
  readonly errno: number;
  readonly code: string;

  constructor(
    readonly op: string,
    readonly object: string,
    errno: number,
    readonly detail?: string,
    /** The kernel verifier's log, when a program failed to load. */
    readonly verifierLog?: string,
  ) {
    const code = errnoName(errno);
    let message = `${op} ${object}: ${code}`;
    if (detail) message += ` (${detail})`;
    if (verifierLog) message += `\nverifier log:\n${verifierLog}`;
    super(message);
    this.errno = Math.abs(errno);
    this.code = code;
  }
}

/** libbpf returns -errno from int functions. */
export function checkLibbpf(result: number, op: string, object: string): number {
  if (result < 0) throw new BpfError(op, object, -result);
  return result;
}
