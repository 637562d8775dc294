/**
 * The RFC 4271 (section 8) finite state machine of one peer, as a pure state
 * machine: events in, actions out. It owns no sockets and no timers; the
 * session carries out its actions and feeds it events, and the unit tests
 * drive it with an injected clock.
 *
 * A peer can have more than one TCP connection at a time (our outgoing one and
 * the peer's incoming one); each runs its own OpenSent/OpenConfirm handshake,
 * and collision detection (RFC 4271 6.8) keeps one of them.
 */
import { AS_TRANS } from './codec/constants.js';
import {
  type BgpMessageError,
  CeaseSubcode,
  ErrorCode,
  FsmSubcode,
  notificationName,
  OpenSubcode,
} from './codec/errors.js';
import type { BgpMessage } from './codec/messages.js';
import type { GracefulRestartCapability, OpenMessage } from './codec/open.js';
import { openAsn } from './codec/open.js';
import type { Family, PeerState } from './types.js';

export type ConnectionId = number;
export type Direction = 'outgoing' | 'incoming';
export type TimerName = 'connectRetry' | `hold:${number}` | `keepalive:${number}`;

export interface FsmConfig {
  localAsn: number;
  /** Our BGP identifier as an unsigned 32-bit number. */
  localId: number;
  peerAsn: number;
  holdTime: number;
  keepaliveTime?: number;
  connectRetryTime: number;
  passive: boolean;
  families: Family[];
  gracefulRestart?: { restartTime: number };
  /** Uniform in [0, 1): the jitter source (RFC 4271 10). */
  random?: () => number;
}

export interface Negotiated {
  holdTime: number;
  keepaliveTime: number;
  families: Family[];
  fourOctetAs: boolean;
  gracefulRestart: boolean;
  routeRefresh: boolean;
  peerAsn: number;
  peerBgpId: number;
  /** The peer's graceful restart capability as sent. */
  peerGracefulRestart?: GracefulRestartCapability;
}

export interface NotificationSpec {
  code: number;
  subcode: number;
  data?: Uint8Array;
  shutdownMessage?: string;
}

export interface FsmError {
  direction: 'sent' | 'received' | 'local';
  code?: number;
  subcode?: number;
  name: string;
  message?: string;
}

export type FsmEvent =
  | { type: 'start' }
  /** notification undefined: close without one (graceful restart keeps our routes at the helper). */
  | { type: 'stop'; notification?: NotificationSpec }
  | { type: 'timer'; timer: TimerName }
  | { type: 'connected'; conn: ConnectionId; direction: Direction }
  | { type: 'connectFailed'; conn: ConnectionId; error: string }
  | { type: 'closed'; conn: ConnectionId; error?: string }
  | { type: 'message'; conn: ConnectionId; message: BgpMessage }
  | { type: 'decodeError'; conn: ConnectionId; error: BgpMessageError };

export type FsmAction =
  | { type: 'connect'; conn: ConnectionId }
  | { type: 'sendOpen'; conn: ConnectionId }
  | { type: 'sendKeepalive'; conn: ConnectionId }
  | { type: 'sendNotification'; conn: ConnectionId; notification: NotificationSpec }
  /** Close the connection once what was queued before it is written. */
  | { type: 'close'; conn: ConnectionId }
  | { type: 'startTimer'; timer: TimerName; seconds: number }
  | { type: 'stopTimer'; timer: TimerName }
  | { type: 'established'; conn: ConnectionId; negotiated: Negotiated }
  | { type: 'sessionDown'; conn: ConnectionId; error?: FsmError }
  /** UPDATE and ROUTE-REFRESH on the Established connection, for the RIBs. */
  | { type: 'deliver'; conn: ConnectionId; message: BgpMessage }
  | { type: 'error'; error: FsmError }
  /** The connect-retry timer gave up on a connect still pending after `seconds`. */
  | { type: 'connectTimedOut'; conn: ConnectionId; seconds: number }
  | { type: 'state'; from: PeerState; to: PeerState };

type ConnState = 'Connecting' | 'OpenSent' | 'OpenConfirm' | 'Established';

interface Connection {
  id: ConnectionId;
  direction: Direction;
  state: ConnState;
  open?: OpenMessage;
  negotiated?: Negotiated;
}

/** The hold time proposed before the peer's OPEN arrives (RFC 4271 8.2.2 suggests 4 minutes). */
export const LARGE_HOLD_TIME = 240;
/** Upper bound of the backoff, unless connectRetryTime itself is longer. */
export const MAX_BACKOFF_SECONDS = 300;

export function negotiate(config: FsmConfig, open: OpenMessage): Negotiated {
  const holdTime = Math.min(config.holdTime, open.holdTime);
  const configuredKeepalive = config.keepaliveTime ?? Math.floor(config.holdTime / 3);
  const keepaliveTime =
    holdTime === 0 ? 0 : Math.max(1, Math.min(configuredKeepalive, Math.floor(holdTime / 3)));
  const offered = open.capabilities.families ?? ['ipv4-unicast'];
  const caps = open.capabilities;
  return {
    holdTime,
    keepaliveTime,
    families: config.families.filter((f) => offered.includes(f)),
    fourOctetAs: caps.fourOctetAs !== undefined,
    gracefulRestart: config.gracefulRestart !== undefined && caps.gracefulRestart !== undefined,
    routeRefresh: caps.routeRefresh === true,
    peerAsn: openAsn(open),
    peerBgpId: open.bgpId,
    ...(caps.gracefulRestart ? { peerGracefulRestart: caps.gracefulRestart } : {}),
  };
}

export class PeerFsm {
  private running = false;
  private readonly conns = new Map<ConnectionId, Connection>();
  private nextConn = 1;
  /** Consecutive failed attempts or sessions; the backoff exponent. */
  private failures = 0;
  private connectRetryRunning = false;
  private connectRetrySeconds = 0;
  /** Waiting out the backoff after a session or handshake failed (shown as Idle, RFC 4271 8.2.2). */
  private idleHold = false;
  private current: PeerState = 'Idle';
  private actions: FsmAction[] = [];

  constructor(private config: FsmConfig) {}

  get state(): PeerState {
    return this.current;
  }

  /** The Established connection, if any. */
  get establishedConnection(): ConnectionId | undefined {
    for (const c of this.conns.values()) if (c.state === 'Established') return c.id;
    return undefined;
  }

  /** What a connection negotiated once its OPEN arrived (the decoder needs fourOctetAs). */
  connectionNegotiated(id: ConnectionId): Negotiated | undefined {
    return this.conns.get(id)?.negotiated;
  }

  get negotiated(): Negotiated | undefined {
    for (const c of this.conns.values()) if (c.state === 'Established') return c.negotiated;
    return undefined;
  }

  /** Connection ids for incoming sockets; the session asks before it feeds a 'connected' event. */
  allocateConnection(): ConnectionId {
    return this.nextConn++;
  }

  /** The delay before retry number `failures` (>= 1), with 0-25% jitter subtracted. */
  backoffSeconds(failures: number): number {
    const base = this.config.connectRetryTime;
    const cap = Math.max(base, MAX_BACKOFF_SECONDS);
    const delay = Math.min(base * 2 ** Math.min(Math.max(failures - 1, 0), 20), cap);
    const jitter = 1 - 0.25 * (this.config.random ?? Math.random)();
    return delay * jitter;
  }

  handle(event: FsmEvent): FsmAction[] {
    this.actions = [];
    this.dispatch(event);
    const next = this.computeState();
    if (next !== this.current) {
      this.actions.push({ type: 'state', from: this.current, to: next });
      this.current = next;
    }
    return this.actions;
  }

  private emit(action: FsmAction): void {
    this.actions.push(action);
  }

  private computeState(): PeerState {
    let best: ConnState | undefined;
    const rank: Record<ConnState, number> = { Connecting: 0, OpenSent: 1, OpenConfirm: 2, Established: 3 };
    for (const c of this.conns.values()) if (!best || rank[c.state] > rank[best]) best = c.state;
    if (best === 'Established' || best === 'OpenConfirm' || best === 'OpenSent') return best;
    if (!this.running) return 'Idle';
    if (best === 'Connecting') return 'Connect';
    // Waiting out a backoff after a failure: Idle (RFC 4271 8.2.2, Idle with automatic restart).
    if (this.idleHold && this.connectRetryRunning && !this.config.passive) return 'Idle';
    return 'Active';
  }

  private dispatch(e: FsmEvent): void {
    switch (e.type) {
      case 'start':
        if (this.running) return;
        this.running = true;
        this.failures = 0;
        if (!this.config.passive) this.connectNow();
        return;
      case 'stop':
        this.stop(e.notification);
        return;
      case 'timer':
        this.onTimer(e.timer);
        return;
      case 'connected':
        this.onConnected(e.conn, e.direction);
        return;
      case 'connectFailed': {
        const c = this.conns.get(e.conn);
        if (c?.state !== 'Connecting') return;
        this.conns.delete(e.conn);
        this.emit({ type: 'error', error: { direction: 'local', name: 'Connect failed', message: e.error } });
        if (this.conns.size === 0 && this.running && !this.config.passive) {
          this.failures++;
          this.startConnectRetry(this.backoffSeconds(this.failures));
        }
        return;
      }
      case 'closed': {
        const c = this.conns.get(e.conn);
        if (!c) return;
        const error: FsmError = {
          direction: 'local',
          name: 'Connection closed',
          message: e.error ?? 'closed by peer',
        };
        this.emit({ type: 'error', error });
        this.drop(c, error);
        return;
      }
      case 'decodeError': {
        const c = this.conns.get(e.conn);
        if (!c) return;
        this.fail(c, { code: e.error.code, subcode: e.error.subcode, data: e.error.data }, e.error.reason);
        return;
      }
      case 'message': {
        const c = this.conns.get(e.conn);
        if (c) this.onMessage(c, e.message);
        return;
      }
    }
  }

  private connectNow(): void {
    this.idleHold = false;
    const id = this.allocateConnection();
    this.conns.set(id, { id, direction: 'outgoing', state: 'Connecting' });
    this.emit({ type: 'connect', conn: id });
    // Bounds the TCP attempt too: a SYN into a black hole is retried when it expires.
    this.startConnectRetry(this.backoffSeconds(Math.max(this.failures, 1)));
  }

  private startConnectRetry(seconds: number): void {
    this.connectRetryRunning = true;
    this.connectRetrySeconds = seconds;
    this.emit({ type: 'startTimer', timer: 'connectRetry', seconds });
  }

  private stopConnectRetry(): void {
    if (!this.connectRetryRunning) return;
    this.connectRetryRunning = false;
    this.emit({ type: 'stopTimer', timer: 'connectRetry' });
  }

  private onTimer(timer: TimerName): void {
    if (timer === 'connectRetry') {
      this.connectRetryRunning = false;
      if (!this.running) return;
      const handshaking = [...this.conns.values()].some((c) => c.state !== 'Connecting');
      if (handshaking) return;
      for (const c of [...this.conns.values()]) {
        // Every failed attempt leaves an error, also one that never got an answer.
        if (c.direction === 'outgoing')
          this.emit({ type: 'connectTimedOut', conn: c.id, seconds: this.connectRetrySeconds });
        this.removeConnection(c);
      }
      if (this.config.passive) return;
      this.connectNow();
      return;
    }
    const [kind, idText] = timer.split(':') as ['hold' | 'keepalive', string];
    const c = this.conns.get(Number(idText));
    if (!c) return;
    if (kind === 'keepalive') {
      if (c.state !== 'OpenConfirm' && c.state !== 'Established') return;
      this.emit({ type: 'sendKeepalive', conn: c.id });
      this.emit({ type: 'startTimer', timer, seconds: c.negotiated!.keepaliveTime });
      return;
    }
    this.fail(
      c,
      { code: ErrorCode.HOLD_TIMER_EXPIRED, subcode: 0 },
      'no message from the peer within the hold time',
    );
  }

  private onConnected(id: ConnectionId, direction: Direction): void {
    if (!this.running) {
      this.emit({ type: 'close', conn: id });
      return;
    }
    let c = this.conns.get(id);
    if (direction === 'outgoing') {
      if (c?.state !== 'Connecting') {
        this.emit({ type: 'close', conn: id }); // an attempt we already gave up on
        return;
      }
    } else {
      c = { id, direction, state: 'Connecting' };
      this.conns.set(id, c);
    }
    const others = [...this.conns.values()].some((o) => o.id !== id && o.state === 'Connecting');
    if (!others) this.stopConnectRetry();
    c.state = 'OpenSent';
    this.emit({ type: 'sendOpen', conn: id });
    this.emit({ type: 'startTimer', timer: `hold:${id}`, seconds: LARGE_HOLD_TIME });
  }

  private onMessage(c: Connection, m: BgpMessage): void {
    if (m.type === 'notification') {
      const error: FsmError = {
        direction: 'received',
        code: m.code,
        subcode: m.subcode,
        name: notificationName(m.code, m.subcode),
        ...(m.shutdownMessage !== undefined ? { message: m.shutdownMessage } : {}),
      };
      this.emit({ type: 'error', error });
      this.drop(c, error);
      return;
    }
    switch (c.state) {
      case 'Connecting':
        return;
      case 'OpenSent':
        if (m.type === 'open') this.onOpen(c, m);
        else
          this.fail(
            c,
            { code: ErrorCode.FSM, subcode: FsmSubcode.UNEXPECTED_IN_OPEN_SENT },
            `${m.type} in OpenSent`,
          );
        return;
      case 'OpenConfirm':
        if (m.type === 'keepalive') this.onEstablished(c);
        else {
          this.fail(
            c,
            { code: ErrorCode.FSM, subcode: FsmSubcode.UNEXPECTED_IN_OPEN_CONFIRM },
            `${m.type} in OpenConfirm`,
          );
        }
        return;
      case 'Established':
        if (m.type === 'open') {
          this.fail(
            c,
            { code: ErrorCode.FSM, subcode: FsmSubcode.UNEXPECTED_IN_ESTABLISHED },
            'OPEN in Established',
          );
          return;
        }
        this.restartHold(c);
        if (m.type === 'update' || m.type === 'route-refresh')
          this.emit({ type: 'deliver', conn: c.id, message: m });
        return;
    }
  }

  private onOpen(c: Connection, open: OpenMessage): void {
    const asn = openAsn(open);
    if (asn !== this.config.peerAsn) {
      const data =
        open.myAs === AS_TRANS && open.capabilities.fourOctetAs !== undefined
          ? new Uint8Array(0)
          : Uint8Array.of(open.myAs >> 8, open.myAs & 0xff);
      this.fail(
        c,
        { code: ErrorCode.OPEN_MESSAGE, subcode: OpenSubcode.BAD_PEER_AS, data },
        `peer AS ${asn}, expected ${this.config.peerAsn}`,
      );
      return;
    }
    if (open.bgpId === this.config.localId && this.config.peerAsn === this.config.localAsn) {
      this.fail(
        c,
        { code: ErrorCode.OPEN_MESSAGE, subcode: OpenSubcode.BAD_BGP_IDENTIFIER },
        'iBGP peer uses our BGP identifier',
      );
      return;
    }
    const negotiated = negotiate(this.config, open);
    c.open = open;
    c.negotiated = negotiated;
    // Collision detection (RFC 4271 6.8) against every other connection that has an OPEN.
    for (const other of [...this.conns.values()]) {
      if (other === c || !other.open) continue;
      if (other.state === 'Established') {
        if (other.negotiated?.gracefulRestart) {
          // RFC 4724 4.2: a new connection from a graceful-restart peer replaces the old session.
          const error: FsmError = {
            direction: 'local',
            name: 'Peer restarted',
            message: 'new connection from the peer',
          };
          this.emit({ type: 'error', error });
          this.removeConnection(other, error);
          continue;
        }
        this.collide(c);
        return;
      }
      const keepOutgoing = this.config.localId > open.bgpId;
      const loser =
        c.direction === other.direction ? other : (c.direction === 'outgoing') === keepOutgoing ? other : c;
      this.collide(loser);
      if (loser === c) return;
    }
    c.state = 'OpenConfirm';
    this.emit({ type: 'sendKeepalive', conn: c.id });
    if (negotiated.holdTime > 0) {
      this.emit({ type: 'startTimer', timer: `hold:${c.id}`, seconds: negotiated.holdTime });
      this.emit({ type: 'startTimer', timer: `keepalive:${c.id}`, seconds: negotiated.keepaliveTime });
    } else {
      this.emit({ type: 'stopTimer', timer: `hold:${c.id}` });
    }
  }

  private collide(loser: Connection): void {
    const notification = { code: ErrorCode.CEASE, subcode: CeaseSubcode.CONNECTION_COLLISION_RESOLUTION };
    this.emit({ type: 'sendNotification', conn: loser.id, notification });
    this.emit({ type: 'error', error: { direction: 'sent', ...notification, name: notificationName(6, 7) } });
    this.removeConnection(loser);
  }

  private onEstablished(c: Connection): void {
    c.state = 'Established';
    this.failures = 0;
    this.stopConnectRetry();
    for (const other of [...this.conns.values()]) {
      if (other === c) continue;
      if (other.state === 'Connecting') this.removeConnection(other);
      else this.collide(other);
    }
    this.restartHold(c);
    this.emit({ type: 'established', conn: c.id, negotiated: c.negotiated! });
  }

  private restartHold(c: Connection): void {
    const hold = c.negotiated?.holdTime ?? 0;
    if (hold > 0) this.emit({ type: 'startTimer', timer: `hold:${c.id}`, seconds: hold });
  }

  /** Sends a NOTIFICATION for a local error and drops the connection. */
  private fail(c: Connection, notification: NotificationSpec, reason: string): void {
    const error: FsmError = {
      direction: 'sent',
      code: notification.code,
      subcode: notification.subcode,
      name: notificationName(notification.code, notification.subcode),
      message: reason,
    };
    if (c.state !== 'Connecting') this.emit({ type: 'sendNotification', conn: c.id, notification });
    this.emit({ type: 'error', error });
    this.drop(c, error);
  }

  /**
   * Removes a connection that failed. When no handshake is left, backs off
   * before trying again; an attempt still in flight keeps a timer bounding it.
   */
  private drop(c: Connection, error: FsmError): void {
    this.removeConnection(c, error);
    if (!this.running) return;
    if ([...this.conns.values()].some((o) => o.state !== 'Connecting')) return;
    this.failures++;
    if (this.conns.size === 0) this.idleHold = true;
    if (!this.config.passive && (this.conns.size === 0 || !this.connectRetryRunning)) {
      this.startConnectRetry(this.backoffSeconds(this.failures));
    }
  }

  private removeConnection(c: Connection, error?: FsmError): void {
    this.conns.delete(c.id);
    this.emit({ type: 'stopTimer', timer: `hold:${c.id}` });
    this.emit({ type: 'stopTimer', timer: `keepalive:${c.id}` });
    this.emit({ type: 'close', conn: c.id });
    if (c.state === 'Established')
      this.emit({ type: 'sessionDown', conn: c.id, ...(error ? { error } : {}) });
  }

  private stop(notification: NotificationSpec | undefined): void {
    this.running = false;
    this.failures = 0;
    this.stopConnectRetry();
    for (const c of [...this.conns.values()]) {
      if (notification && c.state !== 'Connecting') {
        this.emit({ type: 'sendNotification', conn: c.id, notification });
      }
      const error: FsmError = notification
        ? {
            direction: 'sent',
            code: notification.code,
            subcode: notification.subcode,
            name: notificationName(notification.code, notification.subcode),
            ...(notification.shutdownMessage !== undefined ? { message: notification.shutdownMessage } : {}),
          }
        : { direction: 'local', name: 'Stopped', message: 'closed without NOTIFICATION (graceful restart)' };
      if (c.state !== 'Connecting') this.emit({ type: 'error', error });
      this.removeConnection(c, error);
    }
  }

  /** Replaces timers and limits for later events; the session re-creates the FSM for changes that need a reset. */
  updateConfig(config: FsmConfig): void {
    this.config = config;
  }
}
