/**
 * AF_UNIX datagram sockets, which Node's dgram module does not offer: the
 * sd_notify protocol sends systemd one datagram per state change.
 */
import { BpfError } from './native/errors.js';
import { c, lastErrno } from './native/ffi.js';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;

/** struct sockaddr_un for a path; a leading '@' names an abstract socket (a NUL byte). */
function sockaddrUn(path: string): Buffer {
  const name = Buffer.from(path.startsWith('@') ? `\0${path.slice(1)}` : path);
  if (name.length > 107) throw new BpfError('address unix socket', path, 36 /* ENAMETOOLONG */);
  const addr = Buffer.alloc(2 + name.length + (path.startsWith('@') ? 0 : 1));
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  return addr;
}

function open(what: string): number {
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new BpfError('open unix datagram socket', what, lastErrno());
  return fd;
}

/** Sends one datagram to the socket at `path`. */
export function sendUnixDatagram(path: string, message: string): void {
  const fd = open(path);
  try {
    const addr = sockaddrUn(path);
    const data = Buffer.from(message);
    if (Number(c.sendto(fd, data, data.length, 0, addr, addr.length)) < 0) {
      throw new BpfError('send to unix socket', path, lastErrno());
    }
  } finally {
    c.close(fd);
  }
}

/** A bound datagram socket, for tests that play systemd's side. */
export class UnixDatagramReceiver {
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = open(path);
    const addr = sockaddrUn(path);
    if (c.bind(this.fd, addr, addr.length) !== 0) {
      const errno = lastErrno();
      c.close(this.fd);
      throw new BpfError('bind unix socket', path, errno);
    }
  }

  /** Every datagram queued now. */
  receive(): string[] {
    const out: string[] = [];
    const buf = Buffer.alloc(4096);
    for (;;) {
      const n = Number(c.recv(this.fd, buf, buf.length, MSG_DONTWAIT));
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EAGAIN) return out;
        throw new BpfError('receive from unix socket', this.path, errno);
      }
      out.push(buf.subarray(0, n).toString());
    }
  }

  close(): void {
    c.close(this.fd);
  }
}
