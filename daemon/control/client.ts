import { createConnection } from 'node:net';
import type { ControlResponse } from './protocol.js';

export class ControlError extends Error {
  override readonly name = 'ControlError';
}

/** Calls one method on the daemon's control socket. */
export function callDaemon(
  socketPath: string,
  method: string,
  params: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffered = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new ControlError(`no answer from ${socketPath} within ${timeoutMs} ms`)),
    );
    socket.on('connect', () => socket.write(`${JSON.stringify({ method, params })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof ControlError) return reject(error);
      const hint =
        error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
          ? ' (is the daemon running? see --run-dir)'
          : '';
      reject(
        new ControlError(`cannot reach the daemon at ${socketPath}: ${error.code ?? error.message}${hint}`),
      );
    });
    socket.on('end', () => {
      try {
        const response = JSON.parse(buffered) as ControlResponse;
        if (response.ok) resolve(response.result);
        else reject(new ControlError(response.error));
      } catch {
        reject(new ControlError(`malformed answer from ${socketPath}`));
      }
    });
  });
}

/**
 * Calls a streaming method: resolves when the stream ends (the daemon stops,
 * `stop()` is called, or `onLine` returns false).
 */
export function streamFromDaemon(
  socketPath: string,
  method: string,
  onLine: (value: unknown) => boolean | undefined,
  params: Record<string, unknown> = {},
): { done: Promise<void>; stop(): void } {
  const socket = createConnection(socketPath);
  let buffered = '';
  let header = false;
  const done = new Promise<void>((resolve, reject) => {
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ method, params })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const value = JSON.parse(line) as ControlResponse | (Record<string, unknown> & { stream?: boolean });
        if (!header) {
          header = true;
          if ('ok' in value && value.ok === false) return reject(new ControlError(String(value.error)));
          continue;
        }
        if (onLine(value) === false) return socket.end();
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) =>
      reject(new ControlError(`cannot reach the daemon at ${socketPath}: ${error.code ?? error.message}`)),
    );
    socket.on('close', () => resolve());
  });
  return { done, stop: () => socket.end() };
}
