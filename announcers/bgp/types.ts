import type { Socket } from 'node:net';

/** The address families the speaker negotiates (AFI/SAFI 1/1 and 2/1). */
export type Family = 'ipv4-unicast' | 'ipv6-unicast';

/** pino-compatible: structured object first, message second. */
export interface BgpLogger {
  debug(o: object, m?: string): void;
  info(o: object, m?: string): void;
  warn(o: object, m?: string): void;
  error(o: object, m?: string): void;
}

export interface PeerConfig {
  address: string;
  asn: number;
  /** The config layer applies the default (179). */
  port: number;
  localAddress?: string;
  /** TCP MD5 (RFC 2385); needs a transport that can set TCP_MD5SIG. */
  password?: string;
  /** Seconds; 0 means no hold timer and no keepalives. */
  holdTime: number;
  /** Seconds; default holdTime/3. */
  keepaliveTime?: number;
  /** Seconds, the base of the exponential backoff between connection attempts. */
  connectRetryTime: number;
  /** TTL for eBGP sessions; undefined = 1 (directly connected). */
  ebgpMultihop?: number;
  passive: boolean;
  /** Present: the graceful restart capability is advertised with this restart time. */
  gracefulRestart?: { restartTime: number };
  families: Family[];
  /** Default: next-hop-self (the session's local address; for IPv6 also the interface's link-local when known). */
  nextHop?: { ipv4?: string; ipv6?: string };
}

export interface SpeakerConfig {
  asn: number;
  routerId: string;
  listen?: { address: string; port: number };
  peers: PeerConfig[];
}

export interface Route {
  /** "192.0.2.1/32", "2001:db8::1/128"; a bare address means a host prefix. */
  prefix: string;
  /** "65000:100" or a well-known name: no-export, no-advertise, no-export-subconfed, blackhole, ... */
  communities?: string[];
  /** "a:b:c" (RFC 8092). */
  largeCommunities?: string[];
  /** Sent on iBGP sessions only. */
  localPref?: number;
  med?: number;
  /** Peer addresses to announce to; undefined = every peer. */
  peers?: string[];
}

export interface Transport {
  connect(o: {
    address: string;
    port: number;
    localAddress?: string;
    password?: string;
    /** TTL / hop limit of our packets: 1 for a directly connected eBGP peer, the multihop TTL; undefined (iBGP) = system default. */
    ttl?: number;
    signal: AbortSignal;
  }): Promise<Socket>;
  /** Sets the TTL / hop limit of an accepted socket, once its peer is known (same meaning as connect's `ttl`). */
  setTtl?(socket: Socket, ttl: number): void;
  listen(o: {
    address: string;
    port: number;
    passwords: ReadonlyMap<string, string>;
    onConnection: (s: Socket) => void;
  }): Promise<{
    close(): Promise<void>;
    setPasswords(p: ReadonlyMap<string, string>): void;
    /** The bound port, when the transport knows it (listening on port 0 in tests). */
    port?: number;
  }>;
}

export type PeerState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

export interface PeerStatus {
  address: string;
  asn: number;
  state: PeerState;
  establishedAt?: string;
  uptimeSeconds?: number;
  prefixesSent: number;
  prefixesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  lastError?: {
    direction: 'sent' | 'received' | 'local';
    code?: number;
    subcode?: number;
    name: string;
    message?: string;
    at: string;
  };
  negotiated?: {
    holdTime: number;
    keepaliveTime: number;
    families: Family[];
    fourOctetAs: boolean;
    gracefulRestart: boolean;
    routeRefresh: boolean;
  };
}

export interface ReceivedRoute {
  prefix: string;
  nextHop: string;
  asPath: number[];
}

export interface SpeakerOptions {
  log: BgpLogger;
  transport?: Transport;
  /** Set the graceful restart R bit: we are a restarting speaker. */
  restarting?: boolean;
}

export interface StopOptions {
  /** Close without NOTIFICATION so that a graceful restart helper keeps our routes. */
  graceful?: boolean;
  /** RFC 8203 shutdown communication sent with Cease/Administrative Shutdown. */
  message?: string;
}
