/**
 * A scripted BGP peer on a plain socket, built on the codec: it lets tests
 * see exactly what the speaker writes, stay silent, or send malformed bytes.
 */
import { connect, type Socket } from 'node:net';
import { encodeKeepalive, encodeOpen } from '../../../announcers/bgp/codec/index.js';
import { type BgpMessage, MessageReader } from '../../../announcers/bgp/codec/messages.js';
import type { Capabilities } from '../../../announcers/bgp/codec/open.js';
import type { BgpLogger } from '../../../announcers/bgp/index.js';

export class RawPeer {
  readonly received: BgpMessage[] = [];
  closed = false;
  private readonly reader = new MessageReader();
  private waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      for (let r = this.reader.next({ fourOctetAs: true }); r; r = this.reader.next({ fourOctetAs: true })) {
        if (!r.ok) throw new Error(`the speaker sent a malformed message: ${r.error.message}`);
        this.received.push(r.message);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port }, () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when predicate holds over what was received (or the socket closed), rejects after timeoutMs. */
  async until(
    predicate: (received: BgpMessage[]) => boolean,
    timeoutMs = 5000,
    what = 'condition',
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.received)) {
      if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async untilClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the speaker to close the connection');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** OPEN, then waits for the speaker's OPEN and KEEPALIVE, then KEEPALIVE: Established. */
  async establish(o: {
    asn: number;
    bgpId?: number;
    holdTime?: number;
    capabilities?: Capabilities;
  }): Promise<void> {
    this.send(
      encodeOpen({
        asn: o.asn,
        holdTime: o.holdTime ?? 90,
        bgpId: o.bgpId ?? 0x0a0000fe,
        capabilities: o.capabilities ?? {
          families: ['ipv4-unicast', 'ipv6-unicast'],
          routeRefresh: true,
          fourOctetAs: o.asn,
        },
      }),
    );
    await this.until((r) => r.some((m) => m.type === 'open'), 5000, 'OPEN');
    await this.until((r) => r.some((m) => m.type === 'keepalive'), 5000, 'KEEPALIVE');
    this.send(encodeKeepalive());
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A logger that keeps records, for tests that look at what the speaker logged. */
export function memoryLog(): BgpLogger & { records: { level: string; o: object; m?: string }[] } {
  const records: { level: string; o: object; m?: string }[] = [];
  const at =
    (level: string) =>
    (o: object, m?: string): void => {
      records.push({ level, o, ...(m !== undefined ? { m } : {}) });
    };
  return { records, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
