/**
 * TCP sockets for BGP that node:net cannot make: a TCP MD5 key (RFC 2385) per
 * peer, an IP TTL / IPv6 hop limit for eBGP, set before the SYN leaves. The
 * socket is created and connected through libc, then handed to Node as a
 * net.Socket (or to a net.Server as a listening fd), so that the BGP code reads
 * and writes it like any other stream.
 *
 * The connect is non-blocking; waiting for it to finish is a poll(2) on a koffi
 * worker thread, in short slices so that an abort takes effect promptly.
 */
import { isIPv4, isIPv6, Server, Socket } from 'node:net';
import { BpfError } from './native/errors.js';
import { c, lastErrno, tcpSocket } from './native/ffi.js';
import { inNetns } from './netns.js';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_ERROR = 4;
const IPPROTO_IP = 0;
const IPPROTO_TCP = 6;
const IPPROTO_IPV6 = 41;
const IP_TTL = 2;
const IPV6_UNICAST_HOPS = 16;
const TCP_NODELAY = 1;
const TCP_MD5SIG = 14;
const TCP_MD5SIG_MAXKEYLEN = 80;
const EINPROGRESS = 115;
const ENOENT = 2;
const POLLOUT = 0x4;
const POLL_SLICE_MS = 100;
const ETIMEDOUT = 110;
/**
 * A connect that gets no answer fails after this long, with an error that says
 * so, instead of hanging until the kernel gives up (about two minutes). Peers
 * are near; and a peer that silently drops our SYNs is the one sign of a TCP MD5
 * key mismatch, which the operator should see.
 */
export const CONNECT_TIMEOUT_MS = 5_000;
const LISTEN_BACKLOG = 128;

/** sizeof(struct sockaddr_storage) + flags, prefixlen, keylen, ifindex + key[80] (linux/tcp.h). */
const MD5SIG_SIZE = 128 + 1 + 1 + 2 + 4 + TCP_MD5SIG_MAXKEYLEN;

export interface TcpConnectOptions {
  address: string;
  port: number;
  localAddress?: string;
  /** TCP MD5 key for this peer (RFC 2385). */
  password?: string;
  /** IP TTL (IPv4) or unicast hop limit (IPv6) of every packet we send. */
  ttl?: number;
  signal: AbortSignal;
}

export interface TcpListenOptions {
  address: string;
  port: number;
  /** Peer address → TCP MD5 key; connections from these peers must carry it. */
  passwords: ReadonlyMap<string, string>;
  onConnection: (socket: Socket) => void;
}

export interface TcpListener {
  close(): Promise<void>;
  /** Replaces the listening socket's MD5 keys: removes keys of peers no longer listed. */
  setPasswords(passwords: ReadonlyMap<string, string>): void;
}

interface ParsedAddress {
  family: typeof AF_INET | typeof AF_INET6;
  /** 4 or 16 bytes, network order. */
  bytes: Buffer;
  scopeId: number;
}

function parseAddress(text: string): ParsedAddress {
  const [host = '', zone] = text.split('%');
  if (isIPv4(host)) return { family: AF_INET, bytes: Buffer.from(host.split('.').map(Number)), scopeId: 0 };
  if (!isIPv6(host)) throw new BpfError('parse address', text, 22 /* EINVAL */, 'not an IP address');
  const scopeId = zone === undefined ? 0 : /^\d+$/.test(zone) ? Number(zone) : c.ifNameToIndex(zone);
  if (zone !== undefined && scopeId === 0) throw new BpfError('resolve IPv6 zone', text, ENOENT);
  return { family: AF_INET6, bytes: ipv6Bytes(host), scopeId };
}

function ipv6Bytes(text: string): Buffer {
  let groups = text;
  // An embedded dotted quad (::ffff:1.2.3.4) is the last two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(groups);
  if (quad) {
    const [a, b, cc, d] = quad.slice(1).map(Number) as [number, number, number, number];
    groups = `${groups.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((cc << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = groups.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  const out = Buffer.alloc(16);
  [...left, ...zeros, ...right].forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}

/** The address as the socket's family wants it: IPv4 peers of an IPv6 socket are IPv4-mapped. */
function forFamily(addr: ParsedAddress, family: number): ParsedAddress {
  if (addr.family === family || family === AF_INET) return addr;
  const bytes = Buffer.alloc(16);
  bytes.writeUInt16BE(0xffff, 10);
  addr.bytes.copy(bytes, 12);
  return { family: AF_INET6, bytes, scopeId: 0 };
}

function sockaddr(addr: ParsedAddress, port: number): Buffer {
  if (addr.family === AF_INET) {
    const out = Buffer.alloc(16);
    out.writeUInt16LE(AF_INET, 0);
    out.writeUInt16BE(port, 2);
    addr.bytes.copy(out, 4);
    return out;
  }
  const out = Buffer.alloc(28);
  out.writeUInt16LE(AF_INET6, 0);
  out.writeUInt16BE(port, 2);
  addr.bytes.copy(out, 8);
  out.writeUInt32LE(addr.scopeId, 24);
  return out;
}

/** struct tcp_md5sig for one peer; an empty key deletes the peer's key. */
function md5sig(peer: ParsedAddress, key: Buffer): Buffer {
  const out = Buffer.alloc(MD5SIG_SIZE);
  sockaddr(peer, 0).copy(out, 0);
  out.writeUInt16LE(key.length, 130);
  key.copy(out, 136);
  return out;
}

function passwordBytes(peer: string, password: string): Buffer {
  const key = Buffer.from(password);
  if (key.length === 0 || key.length > TCP_MD5SIG_MAXKEYLEN) {
    throw new BpfError(
      'set TCP MD5 key',
      peer,
      22 /* EINVAL */,
      `key must be 1–${TCP_MD5SIG_MAXKEYLEN} bytes`,
    );
  }
  return key;
}

function setIntOption(
  fd: number,
  level: number,
  name: number,
  value: number,
  op: string,
  object: string,
): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value);
  if (tcpSocket.setsockopt(fd, level, name, buf, 4) !== 0) throw new BpfError(op, object, lastErrno());
}

function setMd5Key(fd: number, family: number, peer: string, key: Buffer): void {
  const value = md5sig(forFamily(parseAddress(peer), family), key);
  if (tcpSocket.setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, value, value.length) !== 0) {
    const errno = lastErrno();
    // Deleting a key the socket never had is not an error for us.
    if (key.length === 0 && errno === ENOENT) return;
    throw new BpfError(key.length ? 'set TCP MD5 key' : 'remove TCP MD5 key', peer, errno);
  }
}

/**
 * IP_TTL for IPv4, IPV6_UNICAST_HOPS for IPv6. An IPv4 peer of an IPv6 socket
 * (IPv4-mapped) is sent to with the IPv4 TTL, so that socket gets both.
 */
function setTtl(fd: number, family: number, ipv4Peer: boolean, ttl: number, target: string): void {
  if (family === AF_INET6) setIntOption(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, 'set TTL', target);
  if (family === AF_INET || ipv4Peer) setIntOption(fd, IPPROTO_IP, IP_TTL, ttl, 'set TTL', target);
}

/** The fd under a net.Socket (libuv exposes it on Unix as the handle's `fd`). */
function socketFd(socket: Socket, target: string): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new BpfError('set TTL', target, 9 /* EBADF */, 'socket has no fd');
  return fd;
}

function openSocket(family: number, netns: string | undefined, what: string): number {
  const create = () => c.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  const fd = netns === undefined ? create() : inNetns(netns, create);
  if (fd < 0) throw new BpfError('open TCP socket', what, lastErrno());
  return fd;
}

function socketError(fd: number): number {
  const value = Buffer.alloc(4);
  if (tcpSocket.getsockopt(fd, SOL_SOCKET, SO_ERROR, value, [4]) !== 0) return lastErrno();
  return value.readInt32LE();
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('connect aborted');
}

export interface NativeTcpOptions {
  /** Create the sockets inside this network namespace (/run/netns/<name>); for tests and benchmarks. */
  netns?: string;
}

/**
 * The BGP transport over native sockets. Structurally the speaker's
 * `Transport` (announcers/bgp), which bpf/ may not import.
 */
export class NativeTcpTransport {
  constructor(private readonly options: NativeTcpOptions = {}) {}

  async connect(o: TcpConnectOptions): Promise<Socket> {
    const target = `${o.address} port ${o.port}`;
    if (o.signal.aborted) throw abortReason(o.signal);
    const peer = parseAddress(o.address);
    const key = o.password === undefined ? undefined : passwordBytes(o.address, o.password);
    const fd = openSocket(peer.family, this.options.netns, target);
    let handedOver = false;
    try {
      if (key) setMd5Key(fd, peer.family, o.address, key);
      if (o.ttl !== undefined) setTtl(fd, peer.family, false, o.ttl, target);
      setIntOption(fd, IPPROTO_TCP, TCP_NODELAY, 1, 'set TCP_NODELAY', target);
      if (o.localAddress !== undefined) {
        const local = sockaddr(parseAddress(o.localAddress), 0);
        if (c.bind(fd, local, local.length) !== 0) throw new BpfError('bind', o.localAddress, lastErrno());
      }
      const remote = sockaddr(peer, o.port);
      if (tcpSocket.connect(fd, remote, remote.length) !== 0) {
        const errno = lastErrno();
        if (errno !== EINPROGRESS) throw new BpfError('connect', target, errno);
        await waitConnected(fd, target, o.signal, key !== undefined);
      }
      const socket = new Socket({ fd, readable: true, writable: true });
      handedOver = true;
      return socket;
    } finally {
      if (!handedOver) c.close(fd);
    }
  }

  /** The TTL of an accepted socket's packets, set once the speaker knows which peer it is. */
  setTtl(socket: Socket, ttl: number): void {
    const remote = socket.remoteAddress ?? '';
    const target = `${remote} port ${socket.remotePort ?? 0}`;
    const family = isIPv4(socket.localAddress ?? '') ? AF_INET : AF_INET6;
    setTtl(socketFd(socket, target), family, isIPv4(remote) || remote.startsWith('::ffff:'), ttl, target);
  }

  async listen(o: TcpListenOptions): Promise<TcpListener> {
    const local = parseAddress(o.address);
    const what = `${o.address} port ${o.port}`;
    const fd = openSocket(local.family, this.options.netns, what);
    let current = new Map<string, string>();
    const setPasswords = (passwords: ReadonlyMap<string, string>): void => {
      for (const peer of current.keys()) {
        if (!passwords.has(peer)) setMd5Key(fd, local.family, peer, Buffer.alloc(0));
      }
      for (const [peer, password] of passwords) {
        if (current.get(peer) !== password) setMd5Key(fd, local.family, peer, passwordBytes(peer, password));
      }
      current = new Map(passwords);
    };
    let server: Server | undefined;
    try {
      setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'set SO_REUSEADDR', what);
      const addr = sockaddr(local, o.port);
      if (c.bind(fd, addr, addr.length) !== 0) throw new BpfError('bind', what, lastErrno());
      // Keys go on before listen(), so that no unsigned handshake from a keyed peer slips in.
      setPasswords(o.passwords);
      if (tcpSocket.listen(fd, LISTEN_BACKLOG) !== 0) throw new BpfError('listen', what, lastErrno());
      const listening = new Server({ noDelay: true }, o.onConnection);
      server = listening;
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen({ fd, backlog: LISTEN_BACKLOG }, () => {
          listening.removeListener('error', reject);
          resolve();
        });
      });
    } catch (error) {
      if (server?.listening) server.close();
      else c.close(fd);
      throw error;
    }
    const listening = server;
    return {
      close: () => new Promise<void>((resolve) => listening.close(() => resolve())),
      setPasswords,
    };
  }
}

async function waitConnected(fd: number, target: string, signal: AbortSignal, md5: boolean): Promise<void> {
  const deadline = Date.now() + CONNECT_TIMEOUT_MS;
  const pollfd = Buffer.alloc(8);
  pollfd.writeInt32LE(fd, 0);
  pollfd.writeInt16LE(POLLOUT, 4);
  for (;;) {
    if (signal.aborted) throw abortReason(signal);
    pollfd.writeInt16LE(0, 6);
    const ready = await tcpSocket.pollAsync(pollfd, 1, POLL_SLICE_MS);
    if (signal.aborted) throw abortReason(signal);
    if (ready === 0 && Date.now() >= deadline) {
      const why = md5
        ? 'a TCP MD5 key is set: the peer drops segments whose key differs or is missing'
        : 'the peer or the path drops our SYNs';
      throw new BpfError('connect', target, ETIMEDOUT, `no answer in ${CONNECT_TIMEOUT_MS / 1000} s; ${why}`);
    }
    if (ready > 0) {
      const errno = socketError(fd);
      if (errno !== 0) throw new BpfError('connect', target, errno);
      return;
    }
  }
}
