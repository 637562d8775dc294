/** Reads a watch response line by line, for the fixture's own tests. */
import { get, type IncomingMessage } from 'node:http';
import type { KubeObject } from './server.js';

export interface WatchStream {
  events: KubeObject[];
  /** Resolves when `count` events have arrived (or rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<KubeObject[]>;
  ended: Promise<void>;
  close(): void;
}

export function openWatch(url: string, headers: Record<string, string> = {}): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers }, (res: IncomingMessage) => {
      const events: KubeObject[] = [];
      let buffer = '';
      const waiters: Array<() => void> = [];
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let nl = buffer.indexOf('\n');
        while (nl >= 0) {
          events.push(JSON.parse(buffer.slice(0, nl)));
          buffer = buffer.slice(nl + 1);
          nl = buffer.indexOf('\n');
        }
        for (const w of waiters.splice(0)) w();
      });
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      resolve({
        events,
        ended,
        close: () => req.destroy(),
        waitFor(count, timeoutMs = 3000) {
          return new Promise((ok, fail) => {
            const timer = setTimeout(
              () => fail(new Error(`timed out waiting for ${count} events, got ${JSON.stringify(events)}`)),
              timeoutMs,
            );
            const check = () => {
              if (events.length >= count) {
                clearTimeout(timer);
                ok(events);
              } else waiters.push(check);
            };
            check();
          });
        },
      });
    });
    req.on('error', reject);
  });
}
