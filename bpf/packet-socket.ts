/**
 * Raw Ethernet frames out of one interface: an AF_PACKET socket that only
 * sends (protocol 0, so the kernel queues nothing for us to read). Frames go
 * out in batches with sendmmsg, one system call for up to 1024 frames, so a
 * gratuitous ARP burst for a thousand addresses stays fast.
 */
import { BpfError } from './native/errors.js';
import { addressOf, c, lastErrno } from './native/ffi.js';

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const EINTR = 4;
const SOCKADDR_LL_SIZE = 20;
// struct iovec and struct mmsghdr on 64-bit Linux.
const IOVEC_SIZE = 16;
const MMSGHDR_SIZE = 64;
const BATCH = 1024;

export interface SendResult {
  sent: number;
  /** Frames the kernel would not take (a full queue: EAGAIN). */
  dropped: number;
}

export class PacketSocket {
  private constructor(private readonly fd: number) {}

  /**
   * `receive`: an EtherType (0x0806 for ARP) to also read frames of, on `ifindex`
   * only; without it the socket only sends.
   */
  static open(receive?: { etherType: number; ifindex: number }): PacketSocket {
    const protocol = receive ? ((receive.etherType & 0xff) << 8) | (receive.etherType >> 8) : 0;
    const fd = c.socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) throw new BpfError('open packet socket', 'AF_PACKET', lastErrno());
    if (receive) {
      const address = Buffer.alloc(SOCKADDR_LL_SIZE);
      address.writeUInt16LE(AF_PACKET, 0);
      address.writeUInt16LE(protocol, 2);
      address.writeInt32LE(receive.ifindex, 4);
      if (c.bind(fd, address, address.length) !== 0) {
        const errno = lastErrno();
        c.close(fd);
        throw new BpfError('bind packet socket', `ifindex ${receive.ifindex}`, errno);
      }
    }
    return new PacketSocket(fd);
  }

  /** One frame into `buffer` without waiting: its length, or 0 when none is queued. */
  receive(buffer: Buffer): number {
    const n = Number(c.recv(this.fd, buffer, buffer.length, MSG_DONTWAIT));
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno === EAGAIN) return 0;
    throw new BpfError('receive frame', 'AF_PACKET', errno);
  }

  /** Sends whole Ethernet frames out of `ifindex`. Throws on any error but a full queue. */
  send(ifindex: number, ifname: string, frames: readonly Buffer[]): SendResult {
    const address = Buffer.alloc(SOCKADDR_LL_SIZE);
    address.writeUInt16LE(AF_PACKET, 0);
    address.writeInt32LE(ifindex, 4);
    const result: SendResult = { sent: 0, dropped: 0 };
    for (let start = 0; start < frames.length; start += BATCH) {
      const batch = frames.slice(start, start + BATCH);
      const sent = this.sendBatch(address, ifname, batch);
      result.sent += sent;
      result.dropped += batch.length - sent;
    }
    return result;
  }

  private sendBatch(address: Buffer, ifname: string, frames: readonly Buffer[]): number {
    // Every buffer referenced by address must stay alive until sendmmsg returns.
    const data = Buffer.concat(frames as Buffer[]);
    const iovecs = Buffer.alloc(IOVEC_SIZE * frames.length);
    const headers = Buffer.alloc(MMSGHDR_SIZE * frames.length);
    const dataAt = addressOf(data);
    const iovAt = addressOf(iovecs);
    const nameAt = addressOf(address);
    let offset = 0;
    frames.forEach((frame, i) => {
      iovecs.writeBigUInt64LE(dataAt + BigInt(offset), i * IOVEC_SIZE);
      iovecs.writeBigUInt64LE(BigInt(frame.length), i * IOVEC_SIZE + 8);
      offset += frame.length;
      const h = i * MMSGHDR_SIZE;
      headers.writeBigUInt64LE(nameAt, h); // msg_name
      headers.writeUInt32LE(address.length, h + 8); // msg_namelen
      headers.writeBigUInt64LE(iovAt + BigInt(i * IOVEC_SIZE), h + 16); // msg_iov
      headers.writeBigUInt64LE(1n, h + 24); // msg_iovlen
    });
    let sent = 0;
    while (sent < frames.length) {
      const n = c.sendmmsg(
        this.fd,
        headers.subarray(sent * MMSGHDR_SIZE),
        frames.length - sent,
        MSG_DONTWAIT,
      );
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) break;
        throw new BpfError('send frames', ifname, errno);
      }
      sent += n;
    }
    return sent;
  }

  close(): void {
    c.close(this.fd);
  }
}
