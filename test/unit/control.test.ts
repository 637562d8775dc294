import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ControlError, callDaemon } from '../../daemon/control/client.js';
import type { ControlHandler } from '../../daemon/control/protocol.js';
import { ControlServer } from '../../daemon/control/server.js';

let dir: string;
let counter = 0;
const servers: ControlServer[] = [];

beforeAll(() => {
  // Short: a unix socket path must fit in 108 bytes.
  dir = mkdtempSync(join(tmpdir(), 'nw-ctl-'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function socketPath(): string {
  return join(dir, `run${++counter}`, 'nodewarden.sock');
}

async function serve(handlers: Record<string, ControlHandler>, path = socketPath()): Promise<string> {
  const server = new ControlServer(path, handlers);
  await server.listen();
  servers.push(server);
  return path;
}

/** Writes chunks to the socket (pausing between them) and returns all it answers until it closes. */
function raw(path: string, chunks: string[], pauseMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed || socket.writableEnded) break;
        socket.write(chunk);
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      }
    });
    socket.on('data', (data: string) => {
      answer += data;
    });
    socket.on('end', () => resolve(answer));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      // The server may close while we still write; what it answered is what counts.
      answer ? resolve(answer) : reject(error),
    );
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ControlServer and callDaemon', () => {
  it('returns what a method returns, sync or async, with its params', async () => {
    const path = await serve({
      status: () => ({ pid: 42, devices: ['eth0'] }),
      echo: async (params) => {
        await sleep(5);
        return { got: params };
      },
      nothing: () => null,
    });
    expect(await callDaemon(path, 'status')).toEqual({ pid: 42, devices: ['eth0'] });
    expect(await callDaemon(path, 'echo', { a: 1, b: ['x'] })).toEqual({ got: { a: 1, b: ['x'] } });
    expect(await callDaemon(path, 'echo')).toEqual({ got: {} });
    expect(await callDaemon(path, 'nothing')).toBeNull();
  });

  it('serves many callers at once', async () => {
    const path = await serve({ double: (p) => (p.n as number) * 2 });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, n) => callDaemon(path, 'double', { n })),
    );
    expect(results).toEqual(Array.from({ length: 20 }, (_, n) => n * 2));
  });

  it('rejects an unknown method with a ControlError that names it', async () => {
    const path = await serve({ status: () => 'ok' });
    const error = await rejection(callDaemon(path, 'reboot'));
    expect(error).toBeInstanceOf(ControlError);
    expect(error.name).toBe('ControlError');
    expect(error.message).toBe('unknown method "reboot"');
  });

  it('does not treat Object.prototype members as methods', async () => {
    const path = await serve({ status: () => 'ok' });
    for (const method of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
      const error = await rejection(callDaemon(path, method));
      expect(error).toBeInstanceOf(ControlError);
      expect(error.message).toBe(`unknown method ${JSON.stringify(method)}`);
    }
  });

  it('returns the message of a handler that throws or rejects', async () => {
    const path = await serve({
      sync: () => {
        throw new Error('config rejected: bad device');
      },
      async: async () => {
        throw new TypeError('async boom');
      },
      thrownString: () => {
        throw 'plain string';
      },
    });
    for (const [method, message] of [
      ['sync', 'config rejected: bad device'],
      ['async', 'async boom'],
      ['thrownString', 'plain string'],
    ]) {
      const error = await rejection(callDaemon(path, method!));
      expect(error).toBeInstanceOf(ControlError);
      expect(error.message).toBe(message);
    }
    // The server still answers after handlers failed.
    await expect(callDaemon(path, 'sync')).rejects.toThrow('config rejected: bad device');
  });

  it('creates the run directory and a socket of mode 0600', async () => {
    const path = await serve({});
    const stat = statSync(path);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
  });

  it('replaces a stale socket file left by a killed daemon, and removes its socket on close', async () => {
    const path = socketPath();
    const first = new ControlServer(path, { who: () => 'first' });
    await first.listen();
    // Simulate a crash: the file stays, nobody listens. A plain file will do.
    await first.close();
    writeFileSync(path, 'stale');
    const server = new ControlServer(path, { who: () => 'second' });
    await server.listen();
    expect(await callDaemon(path, 'who')).toBe('second');
    await server.close();
    expect(() => statSync(path)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('reports a missing socket with its path and a hint', async () => {
    const path = join(dir, 'absent', 'nodewarden.sock');
    const error = await rejection(callDaemon(path, 'status'));
    expect(error).toBeInstanceOf(ControlError);
    expect(error.message).toBe(
      `cannot reach the daemon at ${path}: ENOENT (is the daemon running? see --run-dir)`,
    );
  });

  it('reports a daemon that does not answer in time', async () => {
    const path = await serve({ hang: () => new Promise(() => {}) });
    const error = await rejection(callDaemon(path, 'hang', {}, 100));
    expect(error).toBeInstanceOf(ControlError);
    expect(error.message).toContain(`no answer from ${path} within 100 ms`);
  });

  it('reports an answer that is not JSON', async () => {
    const path = join(dir, `garbage${++counter}.sock`);
    const liar = createServer((socket) => {
      socket.resume(); // read the request, so that the client's end is seen and the socket closes
      socket.end('<html>hello</html>\n');
    });
    await new Promise<void>((resolve) => liar.listen(path, resolve));
    try {
      const error = await rejection(callDaemon(path, 'status'));
      expect(error).toBeInstanceOf(ControlError);
      expect(error.message).toBe(`malformed answer from ${path}`);
    } finally {
      await new Promise((resolve) => liar.close(resolve));
    }
  });
});

describe('ControlServer wire protocol', () => {
  it('answers one JSON line and closes', async () => {
    const path = await serve({ status: () => ({ up: true }) });
    expect(await raw(path, ['{"method":"status","params":{}}\n'])).toBe('{"ok":true,"result":{"up":true}}\n');
  });

  it('answers a request that is not JSON', async () => {
    const path = await serve({ status: () => 'ok' });
    expect(await raw(path, ['status please\n'])).toBe('{"ok":false,"error":"request is not JSON"}\n');
  });

  it('answers JSON that is not a request object, and keeps serving', async () => {
    const path = await serve({ status: () => 'ok' });
    for (const line of ['null', '42', '"status"', '[]', '{}']) {
      expect(await raw(path, [`${line}\n`])).toBe('{"ok":false,"error":"unknown method undefined"}\n');
    }
    expect(await raw(path, ['{"method":7}\n'])).toBe('{"ok":false,"error":"unknown method 7"}\n');
    expect(await raw(path, ['{"method":["status"]}\n'])).toBe(
      '{"ok":false,"error":"unknown method [\\"status\\"]"}\n',
    );
    expect(await callDaemon(path, 'status')).toBe('ok');
  });

  it('assembles a request that arrives in pieces', async () => {
    const path = await serve({ echo: (p) => p });
    expect(await raw(path, ['{"method":"ec', 'ho","params":{"x"', ':1}}', '\n'], 20)).toBe(
      '{"ok":true,"result":{"x":1}}\n',
    );
  });

  it('runs a request once even when more bytes follow it', async () => {
    let calls = 0;
    const path = await serve({
      count: async () => {
        calls++;
        await sleep(150);
        return calls;
      },
    });
    const answer = await raw(path, ['{"method":"count"}\n', '{"method":"count"}\n', 'trailing\n'], 30);
    expect(answer).toBe('{"ok":true,"result":1}\n');
    await sleep(200);
    expect(calls).toBe(1);
  });

  it('refuses a request larger than 1 MiB', async () => {
    let called = false;
    const path = await serve({
      status: () => {
        called = true;
      },
    });
    const big = `{"method":"status","params":{"pad":"${'x'.repeat((1 << 20) + 16)}"}}\n`;
    expect(await raw(path, [big])).toBe('{"ok":false,"error":"request too large"}\n');
    expect(called).toBe(false);
  });
});
