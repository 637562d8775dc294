/**
 * Link, address and route changes from rtnetlink, without blocking the event
 * loop: a non-blocking NETLINK_ROUTE socket subscribed to those groups is
 * drained from a timer. Callers only need to know *that* something changed;
 * they re-read the state they care about (devices, addresses) themselves.
 */
import { BpfError } from './native/errors.js';
import { c, lastErrno } from './native/ffi.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
// RTMGRP_* multicast groups.
const GROUPS =
  0x1 /* LINK */ |
  0x10 /* IPV4_IFADDR */ |
  0x40 /* IPV4_ROUTE */ |
  0x100 /* IPV6_IFADDR */ |
  0x400; /* IPV6_ROUTE */

export type NetlinkChange = 'link' | 'address' | 'route';

const KINDS: Record<number, NetlinkChange> = {
  16: 'link', // RTM_NEWLINK
  17: 'link', // RTM_DELLINK
  20: 'address', // RTM_NEWADDR
  21: 'address', // RTM_DELADDR
  24: 'route', // RTM_NEWROUTE
  25: 'route', // RTM_DELROUTE
};

/** Message kinds in one datagram of netlink messages (struct nlmsghdr: len u32, type u16, ...). */
export function netlinkChanges(datagram: Buffer): Set<NetlinkChange> {
  const kinds = new Set<NetlinkChange>();
  for (let off = 0; off + 16 <= datagram.length; ) {
    const len = datagram.readUInt32LE(off);
    const kind = KINDS[datagram.readUInt16LE(off + 4)];
    if (kind) kinds.add(kind);
    if (len < 16) break;
    off += (len + 3) & ~3;
  }
  return kinds;
}

export class NetlinkWatcher {
  private readonly fd: number;
  private readonly buffer = Buffer.alloc(1 << 16);
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly onChange: (kinds: Set<NetlinkChange>) => void) {
    this.fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (this.fd < 0) throw new BpfError('open netlink socket', 'NETLINK_ROUTE', lastErrno());
    const addr = Buffer.alloc(12); // struct sockaddr_nl
    addr.writeUInt16LE(AF_NETLINK, 0);
    addr.writeUInt32LE(GROUPS, 8);
    if (c.bind(this.fd, addr, addr.length) !== 0) {
      const errno = lastErrno();
      c.close(this.fd);
      throw new BpfError('subscribe to netlink', 'link, address and route groups', errno);
    }
  }

  /** Reads everything queued; calls onChange once with every kind seen. */
  drain(): void {
    const kinds = new Set<NetlinkChange>();
    for (;;) {
      const n = Number(c.recv(this.fd, this.buffer, this.buffer.length, MSG_DONTWAIT));
      if (n < 0) {
        const errno = lastErrno();
        // ENOBUFS: the kernel dropped messages; something changed, so say so.
        if (errno === 105) for (const k of ['link', 'address', 'route'] as const) kinds.add(k);
        else if (errno !== EAGAIN) throw new BpfError('read netlink', 'NETLINK_ROUTE', errno);
        break;
      }
      for (const kind of netlinkChanges(this.buffer.subarray(0, n))) kinds.add(kind);
    }
    if (kinds.size > 0) this.onChange(kinds);
  }

  start(intervalMs = 200, onError: (error: unknown) => void = () => {}): void {
    this.timer ??= setInterval(() => {
      try {
        this.drain();
      } catch (error) {
        onError(error);
      }
    }, intervalMs);
  }

  close(): void {
    clearInterval(this.timer);
    c.close(this.fd);
  }
}
