/**
 * One peer: carries out the FSM's actions on real sockets and timers, feeds
 * it what arrives, and connects it to the RIB-out and RIB-in. Nothing thrown
 * inside (decoder bugs included) escapes: it is logged and the connection
 * is reset.
 */

import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { BgpMessageError, CeaseSubcode, ErrorCode } from './codec/errors.js';
import { MessageReader } from './codec/messages.js';
import { describeNotification, encodeKeepalive, encodeNotification } from './codec/notification.js';
import { encodeOpen } from './codec/open.js';
import { addressBits, parseAddress } from './codec/prefix.js';
import {
  type ConnectionId,
  type FsmAction,
  type FsmError,
  type FsmEvent,
  type NotificationSpec,
  PeerFsm,
  type TimerName,
} from './fsm.js';
import { RibIn } from './rib-in.js';
import { RibOut, type RibOutContext } from './rib-out.js';
import { canonicalAddress, type PreparedRoute } from './routes.js';
import type { BgpLogger, PeerConfig, PeerState, PeerStatus, ReceivedRoute, Transport } from './types.js';

/** Injected clock and timers (tests); defaults to the real ones. */
export interface TimerHost {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export const realTimers: TimerHost = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

export interface SessionOptions {
  localAsn: number;
  routerId: string;
  peer: PeerConfig;
  log: BgpLogger;
  transport: Transport;
  restarting: boolean;
  timers?: TimerHost;
  random?: () => number;
  onState?: (status: PeerStatus, previous: PeerState) => void;
}

interface Conn {
  socket?: Socket;
  abort?: AbortController;
  reader: MessageReader;
  closed: boolean;
}

/** How long a closing socket may take to flush a NOTIFICATION before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

export function routerIdNumber(routerId: string): number {
  const parsed = parseAddress(routerId);
  if (parsed?.family !== 'ipv4-unicast')
    throw new RangeError(`router ID "${routerId}" is not an IPv4 address`);
  const b = parsed.addr;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export class PeerSession {
  readonly address: string;
  private readonly fsm: PeerFsm;
  private readonly conns = new Map<ConnectionId, Conn>();
  private readonly timerHandles = new Map<TimerName, unknown>();
  private readonly ribOut = new RibOut();
  private readonly ribIn = new RibIn();
  private readonly timers: TimerHost;
  private readonly log: BgpLogger;
  private establishedAt?: number;
  private needEndOfRib = false;
  private flushing = false;
  private flushAgain = false;
  private messagesSent = 0;
  private messagesReceived = 0;
  private lastError?: PeerStatus['lastError'];
  private ribOutContext?: RibOutContext;
  private closedWaiters: (() => void)[] = [];

  constructor(private readonly o: SessionOptions) {
    this.address = canonicalAddress(o.peer.address);
    this.timers = o.timers ?? realTimers;
    this.log = o.log;
    this.fsm = new PeerFsm({
      localAsn: o.localAsn,
      localId: routerIdNumber(o.routerId),
      peerAsn: o.peer.asn,
      holdTime: o.peer.holdTime,
      ...(o.peer.keepaliveTime !== undefined ? { keepaliveTime: o.peer.keepaliveTime } : {}),
      connectRetryTime: o.peer.connectRetryTime,
      passive: o.peer.passive,
      families: o.peer.families,
      ...(o.peer.gracefulRestart ? { gracefulRestart: o.peer.gracefulRestart } : {}),
      ...(o.random ? { random: o.random } : {}),
    });
  }

  get state(): PeerState {
    return this.fsm.state;
  }

  get ibgp(): boolean {
    return this.o.peer.asn === this.o.localAsn;
  }

  /** Our packets' TTL: 1 for a directly connected eBGP peer, the multihop TTL, or the system default for iBGP. */
  get ttl(): number | undefined {
    return this.ibgp ? undefined : (this.o.peer.ebgpMultihop ?? 1);
  }

  start(): void {
    this.handle({ type: 'start' });
  }

  /** Stops the peer and resolves once every socket is closed. */
  async stop(notification?: NotificationSpec): Promise<void> {
    this.handle(notification ? { type: 'stop', notification } : { type: 'stop' });
    for (const name of [...this.timerHandles.keys()]) this.stopTimer(name);
    if (this.conns.size === 0) return;
    await new Promise<void>((resolve) => this.closedWaiters.push(resolve));
  }

  /** A socket the listener accepted from this peer's address. */
  acceptIncoming(socket: Socket): void {
    const ttl = this.ttl;
    if (ttl !== undefined && this.o.transport.setTtl) {
      try {
        this.o.transport.setTtl(socket, ttl);
      } catch (error) {
        this.log.warn(
          { peer: this.address, err: error },
          'bgp cannot set the TTL of an accepted connection: closed',
        );
        socket.on('error', () => {});
        socket.destroy();
        return;
      }
    }
    const id = this.fsm.allocateConnection();
    this.attach(id, socket);
    this.handle({ type: 'connected', conn: id, direction: 'incoming' });
  }

  setRoutes(routes: readonly PreparedRoute[]): void {
    this.ribOut.setDesired(routes);
    void this.flush();
  }

  receivedRoutes(): ReceivedRoute[] {
    return this.ribIn.list();
  }

  status(): PeerStatus {
    const n = this.fsm.negotiated;
    const now = this.timers.now();
    return {
      address: this.address,
      asn: this.o.peer.asn,
      state: this.fsm.state,
      ...(this.establishedAt !== undefined
        ? {
            establishedAt: new Date(this.establishedAt).toISOString(),
            uptimeSeconds: Math.floor((now - this.establishedAt) / 1000),
          }
        : {}),
      prefixesSent: this.ribOut.advertisedCount,
      prefixesReceived: this.ribIn.size,
      messagesSent: this.messagesSent,
      messagesReceived: this.messagesReceived,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(n
        ? {
            negotiated: {
              holdTime: n.holdTime,
              keepaliveTime: n.keepaliveTime,
              families: n.families,
              fourOctetAs: n.fourOctetAs,
              gracefulRestart: n.gracefulRestart,
              routeRefresh: n.routeRefresh,
            },
          }
        : {}),
    };
  }

  // ---- FSM plumbing ----

  private handle(event: FsmEvent): void {
    let actions: FsmAction[];
    try {
      actions = this.fsm.handle(event);
    } catch (error) {
      this.log.error({ peer: this.address, err: error, event: event.type }, 'bgp fsm failed on an event');
      return;
    }
    for (const action of actions) {
      try {
        this.run(action);
      } catch (error) {
        this.log.error({ peer: this.address, err: error, action: action.type }, 'bgp session action failed');
      }
    }
  }

  private run(a: FsmAction): void {
    switch (a.type) {
      case 'connect':
        this.connect(a.conn);
        return;
      case 'sendOpen':
        this.write(a.conn, this.openMessage());
        return;
      case 'sendKeepalive':
        this.write(a.conn, encodeKeepalive());
        return;
      case 'sendNotification':
        this.write(a.conn, encodeNotification(a.notification));
        return;
      case 'close':
        this.close(a.conn);
        return;
      case 'startTimer':
        this.startTimer(a.timer, a.seconds);
        return;
      case 'stopTimer':
        this.stopTimer(a.timer);
        return;
      case 'established': {
        this.establishedAt = this.timers.now();
        this.ribOut.reset();
        this.ribOutContext = this.contextFor(a.conn, a.negotiated);
        this.needEndOfRib = true;
        this.log.info(
          {
            peer: this.address,
            holdTime: a.negotiated.holdTime,
            families: a.negotiated.families,
            fourOctetAs: a.negotiated.fourOctetAs,
            gracefulRestart: a.negotiated.gracefulRestart,
            nextHopIPv4: this.ribOutContext.nextHopIPv4,
            nextHopsIPv6: this.ribOutContext.nextHopsIPv6,
          },
          'bgp session established',
        );
        void this.flush();
        return;
      }
      case 'sessionDown':
        this.establishedAt = undefined;
        this.ribOutContext = undefined;
        this.ribOut.reset();
        this.ribIn.clear();
        return;
      case 'deliver':
        this.deliver(a.message);
        return;
      case 'connectTimedOut':
        this.run({ type: 'error', error: this.connectTimeoutError(a.seconds) });
        return;
      case 'error':
        this.lastError = { ...a.error, at: new Date(this.timers.now()).toISOString() };
        this.log.warn({ peer: this.address, ...a.error }, `bgp peer ${this.address}: ${a.error.name}`);
        return;
      case 'state': {
        this.log.info(
          { peer: this.address, from: a.from, to: a.to },
          `bgp peer ${this.address}: ${a.from} -> ${a.to}`,
        );
        this.o.onState?.(this.status(), a.from);
        return;
      }
    }
  }

  private deliver(m: import('./codec/messages.js').BgpMessage): void {
    const n = this.fsm.negotiated;
    if (!n) return;
    if (m.type === 'update') {
      if (m.treatAsWithdraw) {
        this.log.warn(
          {
            peer: this.address,
            code: m.treatAsWithdraw.code,
            subcode: m.treatAsWithdraw.subcode,
            reason: m.treatAsWithdraw.reason,
          },
          'bgp UPDATE malformed: its routes are treated as withdrawn (RFC 7606)',
        );
      }
      if (m.discarded)
        this.log.warn({ peer: this.address, attributes: m.discarded }, 'bgp attributes discarded (RFC 7606)');
      this.ribIn.apply(m, n.families, n.fourOctetAs);
    } else if (m.type === 'route-refresh') {
      // RFC 2918: ignore a refresh for a family we did not negotiate.
      if (m.family && n.families.includes(m.family)) {
        this.log.info({ peer: this.address, family: m.family }, 'bgp route refresh requested');
        this.ribOut.requestRefresh(m.family);
        void this.flush();
      }
    }
  }

  private openMessage(): Buffer {
    const p = this.o.peer;
    return encodeOpen({
      asn: this.o.localAsn,
      holdTime: p.holdTime,
      bgpId: routerIdNumber(this.o.routerId),
      capabilities: {
        families: p.families,
        routeRefresh: true,
        fourOctetAs: this.o.localAsn,
        ...(p.gracefulRestart
          ? {
              gracefulRestart: {
                restarting: this.o.restarting,
                restartTime: p.gracefulRestart.restartTime,
                // F bit: the node kept forwarding (the kernel owns the data path) while we restarted.
                families: p.families.map((family) => ({ family, forwarding: this.o.restarting })),
              },
            }
          : {}),
      },
    });
  }

  /** Next-hop-self unless configured: the session's local address, plus the interface's link-local for IPv6 on-link peers. */
  private contextFor(
    conn: ConnectionId,
    n: { families: import('./types.js').Family[]; fourOctetAs: boolean },
  ): RibOutContext {
    // A link-local session address carries its zone ("fe80::1%eth0"); the next hop field has no room for it.
    const local = canonicalAddress((this.conns.get(conn)?.socket?.localAddress ?? '').split('%')[0]!);
    const localParsed = parseAddress(local);
    const configured = this.o.peer.nextHop;
    let nextHopIPv4 = configured?.ipv4;
    let nextHopsIPv6 = configured?.ipv6 !== undefined ? [configured.ipv6] : undefined;
    if (localParsed?.family === 'ipv4-unicast') {
      nextHopIPv4 ??= local;
      // An IPv4 session carrying IPv6 routes: the IPv4-mapped address, unless one is configured.
      nextHopsIPv6 ??= [`::ffff:${local}`];
    } else if (localParsed?.family === 'ipv6-unicast') {
      if (!nextHopsIPv6) {
        nextHopsIPv6 = [local];
        const linkLocal = linkLocalFor(local, this.address);
        if (linkLocal) nextHopsIPv6.push(linkLocal);
      }
    }
    for (const family of n.families) {
      const missing = family === 'ipv4-unicast' ? nextHopIPv4 === undefined : nextHopsIPv6 === undefined;
      if (missing) {
        this.log.error(
          { peer: this.address, family },
          `bgp peer ${this.address}: no ${family} next hop (set nextHop.${family === 'ipv4-unicast' ? 'ipv4' : 'ipv6'}); routes of this family are not sent`,
        );
      }
    }
    return {
      localAsn: this.o.localAsn,
      ibgp: this.ibgp,
      fourOctetAs: n.fourOctetAs,
      families: n.families,
      ...(nextHopIPv4 !== undefined ? { nextHopIPv4 } : {}),
      ...(nextHopsIPv6 !== undefined ? { nextHopsIPv6 } : {}),
    };
  }

  /** Sends what the RIB-out has pending, in large writes, respecting the socket's backpressure. */
  private async flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.flushAgain = false;
        const id = this.fsm.establishedConnection;
        const ctx = this.ribOutContext;
        const socket = id !== undefined ? this.conns.get(id)?.socket : undefined;
        if (id === undefined || !ctx || !socket) return;
        if (!this.ribOut.pending && !this.needEndOfRib) return;
        const endOfRib = this.needEndOfRib ? ctx.families : [];
        this.needEndOfRib = false;
        const batch = this.ribOut.takeUpdates(ctx, { endOfRib });
        this.messagesSent += batch.messages;
        if (batch.announced + batch.withdrawn > 0) {
          this.log.debug(
            {
              peer: this.address,
              announced: batch.announced,
              withdrawn: batch.withdrawn,
              messages: batch.messages,
            },
            'bgp updates sent',
          );
        }
        for (const chunk of batch.chunks) {
          if (socket.destroyed || this.fsm.establishedConnection !== id) return;
          if (!socket.write(chunk)) await drained(socket);
        }
      } while (this.flushAgain);
    } catch (error) {
      this.log.error({ peer: this.address, err: error }, 'bgp update flush failed');
    } finally {
      this.flushing = false;
    }
  }

  // ---- sockets ----

  private connect(id: ConnectionId): void {
    const abort = new AbortController();
    this.conns.set(id, { abort, reader: new MessageReader(), closed: false });
    const p = this.o.peer;
    const ttl = this.ttl;
    this.o.transport
      .connect({
        address: p.address,
        port: p.port,
        ...(p.localAddress !== undefined ? { localAddress: p.localAddress } : {}),
        ...(p.password !== undefined ? { password: p.password } : {}),
        ...(ttl !== undefined ? { ttl } : {}),
        signal: abort.signal,
      })
      .then(
        (socket) => {
          const conn = this.conns.get(id);
          if (!conn || conn.closed) {
            socket.destroy();
            return;
          }
          this.attach(id, socket);
          this.handle({ type: 'connected', conn: id, direction: 'outgoing' });
        },
        (error: Error) => {
          const conn = this.conns.get(id);
          if (!conn || conn.closed) return;
          this.conns.delete(id);
          this.handle({ type: 'connectFailed', conn: id, error: error.message });
        },
      );
  }

  private connectTimeoutError(seconds: number): FsmError {
    const p = this.o.peer;
    const why =
      p.password !== undefined
        ? 'wrong or missing TCP MD5 password on either side?'
        : this.ttl === 1
          ? 'the peer or the path drops our SYNs; a router between us needs ebgpMultiHop'
          : 'the peer or the path drops our SYNs';
    return {
      direction: 'local',
      name: 'Connect failed',
      message: `connect to ${p.address} port ${p.port} timed out: no answer in ${seconds} s (${why})`,
    };
  }

  private attach(id: ConnectionId, socket: Socket): void {
    let conn = this.conns.get(id);
    if (!conn) {
      conn = { reader: new MessageReader(), closed: false };
      this.conns.set(id, conn);
    }
    conn.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(id, chunk));
    socket.on('error', (error) => {
      if (!conn.closed) this.log.debug({ peer: this.address, err: error.message }, 'bgp socket error');
    });
    socket.on('close', () => {
      const wasOpen = !conn.closed;
      conn.closed = true;
      this.conns.delete(id);
      if (wasOpen) this.handle({ type: 'closed', conn: id });
      this.notifyIfAllClosed();
    });
  }

  private onData(id: ConnectionId, chunk: Buffer): void {
    const conn = this.conns.get(id);
    if (!conn || conn.closed) return;
    try {
      conn.reader.push(chunk);
      for (;;) {
        if (conn.closed) return;
        const negotiated = this.fsm.connectionNegotiated(id);
        const result = conn.reader.next({ fourOctetAs: negotiated?.fourOctetAs ?? false, ebgp: !this.ibgp });
        if (!result) return;
        this.messagesReceived++;
        if (!result.ok) {
          this.handle({ type: 'decodeError', conn: id, error: result.error });
          return;
        }
        if (result.message.type === 'notification') {
          this.log.warn(
            { peer: this.address },
            `bgp NOTIFICATION received: ${describeNotification(result.message)}`,
          );
        }
        this.handle({ type: 'message', conn: id, message: result.message });
      }
    } catch (error) {
      // A decoder bug must not take the daemon down: reset the connection like any malformed input.
      this.log.error({ peer: this.address, err: error }, 'bgp message handling failed');
      this.handle({
        type: 'decodeError',
        conn: id,
        error: new BgpMessageError(
          ErrorCode.CEASE,
          CeaseSubcode.OUT_OF_RESOURCES,
          `internal error: ${String(error)}`,
        ),
      });
    }
  }

  private write(id: ConnectionId, message: Buffer): void {
    const socket = this.conns.get(id)?.socket;
    if (!socket || socket.destroyed || !socket.writable) return;
    socket.write(message);
    this.messagesSent++;
  }

  private close(id: ConnectionId): void {
    const conn = this.conns.get(id);
    if (!conn || conn.closed) return;
    conn.closed = true;
    conn.abort?.abort();
    const socket = conn.socket;
    if (!socket) {
      this.conns.delete(id);
      this.notifyIfAllClosed();
      return;
    }
    // end() flushes a queued NOTIFICATION first; destroy() bounds a peer that never reads.
    socket.end();
    const t = this.timers.setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    socket.once('close', () => this.timers.clearTimeout(t));
  }

  private notifyIfAllClosed(): void {
    if (this.conns.size > 0) return;
    const waiters = this.closedWaiters;
    this.closedWaiters = [];
    for (const w of waiters) w();
  }

  private startTimer(name: TimerName, seconds: number): void {
    this.stopTimer(name);
    const handle = this.timers.setTimeout(() => {
      this.timerHandles.delete(name);
      this.handle({ type: 'timer', timer: name });
    }, seconds * 1000);
    this.timerHandles.set(name, handle);
  }

  private stopTimer(name: TimerName): void {
    const handle = this.timerHandles.get(name);
    if (handle === undefined) return;
    this.timers.clearTimeout(handle);
    this.timerHandles.delete(name);
  }
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** The link-local address of the interface holding `local`, when `peer` is on that interface's subnet. */
export function linkLocalFor(local: string, peer: string): string | undefined {
  const peerParsed = parseAddress(peer);
  if (!peerParsed) return undefined;
  for (const addresses of Object.values(networkInterfaces())) {
    const list = addresses ?? [];
    const own = list.find((a) => a.family === 'IPv6' && canonicalAddress(a.address) === local);
    if (!own) continue;
    const linkLocal = list.find((a) => a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:'));
    if (!linkLocal) return undefined;
    const ownParsed = parseAddress(local);
    const length = Number(own.cidr?.split('/')[1] ?? addressBits('ipv6-unicast'));
    if (!ownParsed || !samePrefix(ownParsed.addr, peerParsed.addr, length)) return undefined;
    return canonicalAddress(linkLocal.address.split('%')[0]!);
  }
  return undefined;
}

function samePrefix(a: Uint8Array, b: Uint8Array, length: number): boolean {
  if (a.length !== b.length) return false;
  for (let bit = 0; bit < length; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((a[bit >> 3]! & mask) !== (b[bit >> 3]! & mask)) return false;
  }
  return true;
}
