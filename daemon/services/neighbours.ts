/**
 * XDP cannot resolve a neighbour: bpf_fib_lookup only reports that the next
 * hop towards a backend has no entry, and the packet is dropped. So a
 * load-balancer node keeps those entries warm by sending each backend node a
 * one-byte UDP datagram to the discard port now and then: the kernel resolves
 * the next hop (router or backend) as for any packet, and bpf_fib_lookup finds
 * it from then on (a STALE entry still has its MAC).
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

const DISCARD_PORT = 9;
const REFRESH_MS = 15_000;

export class NeighbourPrimer {
  private targets: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly sockets: Partial<Record<4 | 6, Socket>> = {};

  constructor(private readonly onError: (error: Error) => void) {}

  /** Primes these addresses now, then every 15 s; an empty list stops. */
  set(addresses: readonly string[]): void {
    this.targets = [...addresses];
    this.prime();
    if (this.targets.length === 0) {
      this.stop();
      return;
    }
    this.timer ??= setInterval(() => this.prime(), REFRESH_MS).unref();
  }

  private socket(family: 4 | 6): Socket {
    let socket = this.sockets[family];
    if (!socket) {
      socket = createSocket(family === 4 ? 'udp4' : 'udp6');
      // Unreachable ports answer with ICMP errors that surface here; they are expected.
      socket.on('error', () => {});
      socket.unref();
      this.sockets[family] = socket;
    }
    return socket;
  }

  private prime(): void {
    for (const address of this.targets) {
      const family = isIP(address) === 6 ? 6 : 4;
      this.socket(family).send(Buffer.alloc(1), DISCARD_PORT, address, (error) => {
        if (error) this.onError(error);
      });
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const family of [4, 6] as const) {
      this.sockets[family]?.close();
      delete this.sockets[family];
    }
  }
}
