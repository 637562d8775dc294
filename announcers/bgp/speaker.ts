import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { CeaseSubcode, ErrorCode } from './codec/errors.js';
import { parseAddress } from './codec/prefix.js';
import type { NotificationSpec } from './fsm.js';
import { canonicalAddress, type PreparedRoute, prepareRoutes } from './routes.js';
import { PeerSession, routerIdNumber, type TimerHost } from './session.js';
import { NodeTransport } from './transport.js';
import type {
  PeerConfig,
  PeerState,
  PeerStatus,
  ReceivedRoute,
  Route,
  SpeakerConfig,
  SpeakerOptions,
  StopOptions,
  Transport,
} from './types.js';

/** Options beyond the public contract, for tests. */
export interface SpeakerTestOptions {
  timers?: TimerHost;
  random?: () => number;
}

type Listener = Awaited<ReturnType<Transport['listen']>>;

/** A speaker configuration the speaker refuses, naming the field. */
export class SpeakerConfigError extends Error {
  override name = 'SpeakerConfigError';
}

function validate(config: SpeakerConfig): void {
  const asn = (n: number, path: string): void => {
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff)
      throw new SpeakerConfigError(`${path}: ${n} is not an AS number 1..4294967295`);
  };
  asn(config.asn, 'asn');
  try {
    if (routerIdNumber(config.routerId) === 0) throw new RangeError('router ID 0.0.0.0');
  } catch (error) {
    throw new SpeakerConfigError(`routerId: ${(error as Error).message}`);
  }
  const seen = new Set<string>();
  config.peers.forEach((p, i) => {
    asn(p.asn, `peers[${i}].asn`);
    const key = canonicalAddress(p.address);
    if (seen.has(key)) throw new SpeakerConfigError(`peers[${i}].address: ${p.address} is listed twice`);
    seen.add(key);
    if (p.holdTime !== 0 && (p.holdTime < 3 || p.holdTime > 65535)) {
      throw new SpeakerConfigError(`peers[${i}].holdTime: ${p.holdTime} (must be 0 or 3..65535)`);
    }
    if (!(p.connectRetryTime > 0)) throw new SpeakerConfigError(`peers[${i}].connectRetryTime: must be > 0`);
    if (p.families.length === 0) throw new SpeakerConfigError(`peers[${i}].families: empty`);
    const v4 = p.nextHop?.ipv4;
    if (v4 !== undefined && parseAddress(v4)?.family !== 'ipv4-unicast') {
      throw new SpeakerConfigError(`peers[${i}].nextHop.ipv4: "${v4}" is not an IPv4 address`);
    }
    const v6 = p.nextHop?.ipv6;
    if (v6 !== undefined && parseAddress(v6)?.family !== 'ipv6-unicast') {
      throw new SpeakerConfigError(`peers[${i}].nextHop.ipv6: "${v6}" is not an IPv6 address`);
    }
  });
}

const peerDeconfigured: NotificationSpec = { code: ErrorCode.CEASE, subcode: CeaseSubcode.PEER_DECONFIGURED };
const configChanged: NotificationSpec = {
  code: ErrorCode.CEASE,
  subcode: CeaseSubcode.OTHER_CONFIGURATION_CHANGE,
};

/**
 * The BGP speaker: one session per configured peer, one listener, one
 * desired table. Emits 'peerState' (status, previous state) on every change.
 */
export class BgpSpeaker extends EventEmitter {
  private config: SpeakerConfig;
  private readonly transport: Transport;
  private readonly sessions = new Map<string, PeerSession>();
  private routes: PreparedRoute[] = [];
  private listener?: Listener;
  private started = false;
  private stopped = false;

  constructor(
    config: SpeakerConfig,
    private readonly options: SpeakerOptions & SpeakerTestOptions,
  ) {
    super();
    validate(config);
    this.config = config;
    this.transport = options.transport ?? new NodeTransport();
  }

  /** The port the listener is bound to, when the transport reports it (useful with port 0). */
  get listenPort(): number | undefined {
    return this.listener?.port;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { log } = this.options;
    log.info(
      {
        asn: this.config.asn,
        routerId: this.config.routerId,
        peers: this.config.peers.length,
        restarting: this.options.restarting ?? false,
      },
      'bgp speaker starting',
    );
    if (this.config.listen) await this.listen(this.config.listen);
    for (const peer of this.config.peers) this.addSession(peer);
  }

  setRoutes(routes: Route[]): void {
    this.routes = prepareRoutes(routes);
    for (const session of this.sessions.values()) session.setRoutes(this.routesFor(session.address));
  }

  reconfigure(config: SpeakerConfig): void {
    validate(config);
    const previous = this.config;
    this.config = config;
    if (!this.started || this.stopped) return;
    const global = previous.asn !== config.asn || previous.routerId !== config.routerId;
    const next = new Map(config.peers.map((p) => [canonicalAddress(p.address), p]));
    const before = new Map(previous.peers.map((p) => [canonicalAddress(p.address), p]));
    for (const [address, session] of [...this.sessions]) {
      const peer = next.get(address);
      if (!peer) {
        this.options.log.info({ peer: address }, 'bgp peer removed');
        this.sessions.delete(address);
        void session.stop(peerDeconfigured);
      } else if (global || JSON.stringify(peer) !== JSON.stringify(before.get(address))) {
        this.options.log.info({ peer: address }, 'bgp peer changed: resetting its session');
        this.sessions.delete(address);
        void session.stop(configChanged).then(() => {
          if (!this.stopped && this.config.peers.some((p) => canonicalAddress(p.address) === address)) {
            this.addSession(next.get(address)!);
          }
        });
      }
    }
    for (const [address, peer] of next) {
      if (!before.has(address) && !this.sessions.has(address)) this.addSession(peer);
    }
    const listenChanged = JSON.stringify(previous.listen) !== JSON.stringify(config.listen);
    if (listenChanged) {
      const old = this.listener;
      this.listener = undefined;
      void (async () => {
        await old?.close();
        if (config.listen && !this.stopped) await this.listen(config.listen);
      })().catch((error: unknown) => this.options.log.error({ err: error }, 'bgp listener failed'));
    } else {
      try {
        this.listener?.setPasswords(this.passwords());
      } catch (error) {
        this.options.log.error({ err: error }, "bgp listener cannot set the peers' passwords");
      }
    }
  }

  peers(): PeerStatus[] {
    return this.config.peers.map((p) => {
      const session = this.sessions.get(canonicalAddress(p.address));
      return (
        session?.status() ?? {
          address: canonicalAddress(p.address),
          asn: p.asn,
          state: 'Idle' as PeerState,
          prefixesSent: 0,
          prefixesReceived: 0,
          messagesSent: 0,
          messagesReceived: 0,
        }
      );
    });
  }

  receivedRoutes(peerAddress: string): ReceivedRoute[] {
    return this.sessions.get(canonicalAddress(peerAddress))?.receivedRoutes() ?? [];
  }

  async stop(o: StopOptions = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const notification: NotificationSpec | undefined = o.graceful
      ? undefined
      : {
          code: ErrorCode.CEASE,
          subcode: CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
          ...(o.message !== undefined ? { shutdownMessage: o.message } : {}),
        };
    this.options.log.info({ graceful: o.graceful ?? false, message: o.message }, 'bgp speaker stopping');
    const listener = this.listener;
    this.listener = undefined;
    await Promise.all([listener?.close(), ...[...this.sessions.values()].map((s) => s.stop(notification))]);
    this.sessions.clear();
  }

  private passwords(): Map<string, string> {
    const out = new Map<string, string>();
    for (const p of this.config.peers) if (p.password !== undefined) out.set(p.address, p.password);
    return out;
  }

  private async listen(listen: { address: string; port: number }): Promise<void> {
    this.listener = await this.transport.listen({
      address: listen.address,
      port: listen.port,
      passwords: this.passwords(),
      onConnection: (socket) => this.onConnection(socket),
    });
    this.options.log.info(
      { address: listen.address, port: this.listener.port ?? listen.port },
      'bgp listening',
    );
  }

  private onConnection(socket: Socket): void {
    const remote = canonicalAddress(socket.remoteAddress ?? '');
    const session = this.stopped ? undefined : this.sessions.get(remote);
    if (!session) {
      this.options.log.warn(
        { remote },
        'bgp connection from an address that is not a configured peer: closed',
      );
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    session.acceptIncoming(socket);
  }

  private addSession(peer: PeerConfig): void {
    const session = new PeerSession({
      localAsn: this.config.asn,
      routerId: this.config.routerId,
      peer,
      log: this.options.log,
      transport: this.transport,
      restarting: this.options.restarting ?? false,
      ...(this.options.timers ? { timers: this.options.timers } : {}),
      ...(this.options.random ? { random: this.options.random } : {}),
      onState: (status, previous) => this.emit('peerState', status, previous),
    });
    this.sessions.set(session.address, session);
    session.setRoutes(this.routesFor(session.address));
    session.start();
  }

  private routesFor(address: string): PreparedRoute[] {
    return this.routes.filter((r) => !r.peers || r.peers.has(address));
  }
}
