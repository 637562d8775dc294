import { createServer, connect as netConnect, type Socket } from 'node:net';
import type { Transport } from './types.js';

/** Raised when a peer needs something plain node:net cannot do (TCP MD5, TTL). */
export class TransportUnsupportedError extends Error {
  override name = 'TransportUnsupportedError';
  constructor(
    readonly feature: 'password' | 'ttl',
    readonly peer: string,
  ) {
    super(
      `peer ${peer}: ${feature === 'password' ? 'TCP MD5 password' : 'TTL (ebgpMultihop)'} needs the native BGP transport; NodeTransport (plain node:net) cannot set it`,
    );
  }
}

/**
 * Plain node:net sockets. Enough for tests and for peers without MD5 or a
 * multihop TTL; directly connected eBGP keeps the system TTL instead of 1.
 * The daemon passes its native transport, which sets both.
 */
export class NodeTransport implements Transport {
  connect(o: Parameters<Transport['connect']>[0]): Promise<Socket> {
    if (o.password !== undefined) return Promise.reject(new TransportUnsupportedError('password', o.address));
    // TTL 1 (directly connected eBGP) only narrows where our packets may go: without it the
    // session works the same on a direct link, so plain sockets keep the system TTL. A
    // multihop TTL is a requirement plain sockets cannot promise.
    if (o.ttl !== undefined && o.ttl !== 1)
      return Promise.reject(new TransportUnsupportedError('ttl', o.address));
    return new Promise((resolve, reject) => {
      if (o.signal.aborted) {
        reject(o.signal.reason ?? new Error('aborted'));
        return;
      }
      const socket = netConnect({
        host: o.address,
        port: o.port,
        ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
        noDelay: true,
      });
      const onAbort = (): void => {
        socket.destroy();
        reject(o.signal.reason ?? new Error('aborted'));
      };
      o.signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        o.signal.removeEventListener('abort', onAbort);
        socket.removeListener('error', onError);
        resolve(socket);
      });
      const onError = (error: Error): void => {
        o.signal.removeEventListener('abort', onAbort);
        reject(error);
      };
      socket.once('error', onError);
    });
  }

  listen(o: Parameters<Transport['listen']>[0]): ReturnType<Transport['listen']> {
    for (const address of o.passwords.keys()) {
      return Promise.reject(new TransportUnsupportedError('password', address));
    }
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true }, (socket) => o.onConnection(socket));
      server.once('error', reject);
      server.listen({ host: o.address, port: o.port }, () => {
        server.removeListener('error', reject);
        const bound = server.address();
        resolve({
          ...(bound && typeof bound === 'object' ? { port: bound.port } : {}),
          close: () => new Promise<void>((done) => server.close(() => done())),
          setPasswords: (passwords) => {
            if (passwords.size > 0) {
              const [address] = passwords.keys();
              throw new TransportUnsupportedError('password', address ?? '');
            }
          },
        });
      });
    });
  }
}
