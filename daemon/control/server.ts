import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { type ControlHandler, type ControlRequest, type ControlResponse, ControlStream } from './protocol.js';

const MAX_REQUEST_BYTES = 1 << 20;

/** Serves the control socket (mode 0600: only root talks to the daemon). */
export class ControlServer {
  private readonly server: Server;

  constructor(
    private readonly path: string,
    private readonly handlers: Record<string, ControlHandler>,
  ) {
    this.server = createServer((socket) => this.serve(socket));
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    // A socket file left by a killed daemon would make listen fail with EADDRINUSE.
    rmSync(this.path, { force: true });
    // The umask makes the socket 0600 from the moment it exists; chmod states it explicitly.
    const previousUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.path, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previousUmask);
    }
    chmodSync(this.path, 0o600);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  private serve(socket: Socket): void {
    let buffered = '';
    let answered = false; // one request per connection: bytes after it must not run it again
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      if (answered) return;
      buffered += chunk;
      if (buffered.length > MAX_REQUEST_BYTES) {
        answered = true;
        return this.reply(socket, { ok: false, error: 'request too large' });
      }
      const newline = buffered.indexOf('\n');
      if (newline >= 0) {
        answered = true;
        void this.handle(socket, buffered.slice(0, newline));
      }
    });
  }

  private async handle(socket: Socket, line: string): Promise<void> {
    let request: ControlRequest;
    try {
      request = JSON.parse(line) as ControlRequest;
    } catch {
      return this.reply(socket, { ok: false, error: 'request is not JSON' });
    }
    // Own keys only: `toString` or `constructor` must not reach Object.prototype; `null` has no method.
    const method = typeof request === 'object' && request !== null ? request.method : undefined;
    const handler =
      typeof method === 'string' && Object.hasOwn(this.handlers, method) ? this.handlers[method] : undefined;
    if (!handler) return this.reply(socket, { ok: false, error: `unknown method ${JSON.stringify(method)}` });
    try {
      const result = await handler(request.params ?? {});
      if (result instanceof ControlStream) return this.stream(socket, result);
      this.reply(socket, { ok: true, result });
    } catch (error) {
      this.reply(socket, { ok: false, error: error instanceof Error ? error.message : String(error) });
    }
  }

  private stream(socket: Socket, stream: ControlStream): void {
    socket.write(`${JSON.stringify({ ok: true, stream: true })}\n`);
    const unsubscribe = stream.subscribe((value) => {
      // A reader that stops reading loses lines instead of growing our memory.
      if (socket.writableLength < 1 << 20) socket.write(`${JSON.stringify(value)}\n`);
    });
    socket.on('close', unsubscribe);
  }

  private reply(socket: Socket, response: ControlResponse): void {
    socket.end(`${JSON.stringify(response)}\n`);
  }
}
