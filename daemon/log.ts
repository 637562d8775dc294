import { type Logger, pino } from 'pino';

export type { Logger };

/** JSON lines on stdout: journald stores them, `jq` reads them. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'nodewarden' }, timestamp: pino.stdTimeFunctions.isoTime });
}
