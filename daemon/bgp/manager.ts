/**
 * Runs the BGP speaker for the daemon: plans from config, starts, reconfigures
 * on reload (the speaker keeps sessions whose peer config did not change) and
 * stops. Logs every session state change, serves status and metrics.
 *
 * Restart detection: while the speaker runs, a marker file in the run dir is
 * touched every few seconds. A clean stop that sends a Cease removes it; a
 * graceful stop or a crash leaves it. A daemon that finds a fresh marker (younger
 * than the longest graceful restart time) is a restarting speaker (RFC 4724 R
 * bit), so that helpers keep our routes until we have sent them again.
 */
import { readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BgpSpeaker,
  type PeerState,
  type PeerStatus,
  type Route,
  type SpeakerConfig,
  type Transport,
} from '../../announcers/bgp/index.js';
import { NativeTcpTransport } from '../../bpf/tcp-socket.js';
import type { LoadedConfig } from '../config/load.js';
import { localAddresses } from '../firewall/manager.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { type BgpPlan, planBgp } from './plan.js';

const MARKER_FILE = 'bgp-speaker';
const MARKER_TOUCH_MS = 5_000;

/** One row of `nodewarden bgp peers`. */
export interface BgpPeerRow extends PeerStatus {
  name: string;
  /** A TCP MD5 password is configured for this peer. */
  md5: boolean;
}

export interface BgpStatus {
  asn: number;
  routerId: string;
  /** Started as a restarting speaker (graceful restart R bit). */
  restarting: boolean;
  listen?: { address: string; port: number };
  routes: number;
  peers: BgpPeerRow[];
  /** The speaker failed to start (for example, the listen port was taken). */
  lastError?: { at: string; message: string };
}

const STATE_NUMBER: Record<PeerState, number> = {
  Idle: 1,
  Connect: 2,
  Active: 3,
  OpenSent: 4,
  OpenConfirm: 5,
  Established: 6,
};

export interface BgpManagerOptions {
  log: Logger;
  runDir: string;
  /** Default: the native transport (TCP MD5, TTL). */
  transport?: Transport;
}

export class BgpManager {
  private speaker: BgpSpeaker | undefined;
  private plan: BgpPlan | undefined;
  private restarting = false;
  private lastError: BgpStatus['lastError'];
  private markerTimer: NodeJS.Timeout | undefined;
  private readonly stateChanges = new Map<string, number>();
  private readonly transport: Transport;

  constructor(private readonly options: BgpManagerOptions) {
    this.transport = options.transport ?? new NativeTcpTransport();
  }

  private get markerPath(): string {
    return join(this.options.runDir, MARKER_FILE);
  }

  /** Validates config into a plan without touching the running speaker. Throws InputError. */
  prepare(config: LoadedConfig): BgpPlan | undefined {
    if (!config.bgp) return undefined;
    return planBgp(config.bgp, {
      file: config.file,
      hostAddresses: localAddresses(),
      readSecret: (path) => readFileSync(path, 'utf8'),
    });
  }

  /** Makes the speaker match the plan: start, reconfigure in place, or stop. */
  apply(plan: BgpPlan | undefined): void {
    const previous = this.plan;
    this.plan = plan;
    if (!plan) {
      if (this.speaker) void this.stop({ message: 'BGP removed from the nodewarden configuration' });
      return;
    }
    if (!this.speaker) {
      this.startSpeaker(plan);
      return;
    }
    if (JSON.stringify(previous?.speaker) !== JSON.stringify(plan.speaker))
      this.speaker.reconfigure(plan.speaker);
    this.speaker.setRoutes(plan.routes);
    this.options.log.info(
      { routes: plan.routes.length, peers: plan.speaker.peers.length },
      'bgp configuration applied',
    );
  }

  private startSpeaker(plan: BgpPlan): void {
    const { log } = this.options;
    this.restarting = this.previousRunLeftRoutes(plan.speaker);
    const speaker = new BgpSpeaker(plan.speaker, {
      log: log.child({ component: 'bgp' }),
      transport: this.transport,
      restarting: this.restarting,
    });
    this.speaker = speaker;
    speaker.on('peerState', (status: PeerStatus, previous: PeerState) => this.onPeerState(status, previous));
    speaker.setRoutes(plan.routes);
    this.lastError = undefined;
    speaker.start().then(
      () => this.keepMarker(),
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.lastError = { at: new Date().toISOString(), message };
        log.error({ err: message }, 'bgp speaker failed to start; the next reload tries again');
        // Forget it, so that the next reload starts a fresh speaker instead of reconfiguring this one.
        if (this.speaker === speaker) {
          this.speaker = undefined;
          void speaker.stop({ message: 'nodewarden could not start BGP' });
        }
      },
    );
  }

  private onPeerState(status: PeerStatus, previous: PeerState): void {
    const name = this.plan?.peerNames.get(status.address) ?? status.address;
    const key = `${name}\0${status.state}`;
    this.stateChanges.set(key, (this.stateChanges.get(key) ?? 0) + 1);
    // The speaker logs every transition; losing a session also gets the peer's name and why.
    if (previous === 'Established') {
      this.options.log.warn(
        { peer: name, address: status.address, state: status.state, lastError: status.lastError },
        `bgp session with ${name} lost: ${status.lastError?.name ?? 'connection closed'}`,
      );
    }
  }

  /** A marker younger than the longest restart time means peers may still hold our routes. */
  private previousRunLeftRoutes(config: SpeakerConfig): boolean {
    const restartTime = Math.max(0, ...config.peers.map((p) => p.gracefulRestart?.restartTime ?? 0));
    if (restartTime === 0) return false;
    try {
      const age = Date.now() - statSync(this.markerPath).mtimeMs;
      const fresh = age < restartTime * 1000;
      this.options.log.info(
        { markerAgeMs: Math.round(age), restarting: fresh },
        'found a previous BGP speaker run',
      );
      return fresh;
    } catch {
      return false;
    }
  }

  private keepMarker(): void {
    const touch = () => {
      try {
        const now = new Date();
        utimesSync(this.markerPath, now, now);
      } catch {
        try {
          writeFileSync(this.markerPath, `${process.pid}\n`);
        } catch (error) {
          this.options.log.warn({ err: String(error) }, 'cannot write the BGP restart marker');
        }
      }
    };
    touch();
    clearInterval(this.markerTimer);
    this.markerTimer = setInterval(touch, MARKER_TOUCH_MS);
    this.markerTimer.unref();
  }

  peers(): BgpPeerRow[] {
    if (!this.speaker) return [];
    const keyed = new Set(
      this.plan?.speaker.peers.filter((p) => p.password !== undefined).map((p) => p.address),
    );
    const name = (address: string) => this.plan?.peerNames.get(address) ?? address;
    return this.speaker.peers().map((p) => ({ ...p, name: name(p.address), md5: keyed.has(p.address) }));
  }

  status(): BgpStatus | undefined {
    if (!this.plan) return undefined;
    const status: BgpStatus = {
      asn: this.plan.speaker.asn,
      routerId: this.plan.speaker.routerId,
      restarting: this.restarting,
      routes: this.plan.routes.length,
      peers: this.peers(),
    };
    if (this.plan.speaker.listen) status.listen = this.plan.speaker.listen;
    if (this.lastError) status.lastError = this.lastError;
    return status;
  }

  routes(): Route[] {
    return this.plan?.routes ?? [];
  }

  /** Received routes of one peer (by name or address); we never install them. */
  receivedRoutes(peer: string): ReturnType<BgpSpeaker['receivedRoutes']> {
    const address = [...(this.plan?.peerNames ?? [])].find(([a, n]) => n === peer || a === peer)?.[0];
    if (address === undefined)
      throw new Error(`no BGP peer named ${JSON.stringify(peer)} in the configuration`);
    return this.speaker?.receivedRoutes(address) ?? [];
  }

  registerMetrics(metrics: Metrics): void {
    const rows = () => this.peers();
    const perPeer = (name: string, help: string, value: (p: BgpPeerRow) => number) =>
      metrics.gauge(name, help, ['peer', 'address'], (set) => {
        for (const p of rows()) set({ peer: p.name, address: p.address }, value(p));
      });
    perPeer(
      'nodewarden_bgp_session_state',
      'BGP FSM state: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established',
      (p) => STATE_NUMBER[p.state],
    );
    perPeer('nodewarden_bgp_session_established', '1 while the session is Established', (p) =>
      p.state === 'Established' ? 1 : 0,
    );
    perPeer('nodewarden_bgp_session_uptime_seconds', 'Seconds since the session was established', (p) =>
      p.state === 'Established' ? (p.uptimeSeconds ?? 0) : 0,
    );
    perPeer('nodewarden_bgp_prefixes_sent', 'Prefixes announced to the peer', (p) => p.prefixesSent);
    perPeer(
      'nodewarden_bgp_prefixes_received',
      'Prefixes received from the peer (never installed)',
      (p) => p.prefixesReceived,
    );
    perPeer('nodewarden_bgp_messages_sent', 'BGP messages sent to the peer', (p) => p.messagesSent);
    perPeer(
      'nodewarden_bgp_messages_received',
      'BGP messages received from the peer',
      (p) => p.messagesReceived,
    );
    metrics.gauge(
      'nodewarden_bgp_session_state_changes',
      'Times each peer entered each state since the daemon started',
      ['peer', 'state'],
      (set) => {
        for (const [key, count] of this.stateChanges) {
          const [peer = '', state = ''] = key.split('\0');
          set({ peer, state }, count);
        }
      },
    );
  }

  /**
   * Stops the speaker. With graceful restart negotiated on an Established
   * session, the sessions close without a NOTIFICATION, so that helpers keep our
   * routes until the next daemon sends them again; otherwise every peer gets a
   * Cease with an RFC 8203 shutdown message and the restart marker is removed.
   */
  async stop(o: { message?: string } = {}): Promise<void> {
    const speaker = this.speaker;
    this.speaker = undefined;
    clearInterval(this.markerTimer);
    if (!speaker) return;
    const graceful = this.plan !== undefined && speaker.peers().some((p) => p.negotiated?.gracefulRestart);
    const message = o.message ?? 'nodewarden is shutting down';
    this.options.log.info(
      { graceful },
      graceful ? 'bgp: graceful stop, peers keep our routes' : 'bgp: stopping',
    );
    await speaker.stop(graceful ? { graceful: true } : { message });
    if (!graceful) rmSync(this.markerPath, { force: true });
  }
}
