import type { Family } from '../types.js';
import { HEADER_LENGTH, MessageType } from './constants.js';
import { CeaseSubcode, ErrorCode, notificationName } from './errors.js';
import { writeHeader } from './header.js';
import { familyCode } from './open.js';

export interface NotificationMessage {
  type: 'notification';
  code: number;
  subcode: number;
  data: Uint8Array;
  /** RFC 8203/9003 shutdown communication, when the data carries a valid one. */
  shutdownMessage?: string;
}

export interface KeepaliveMessage {
  type: 'keepalive';
}

export interface RouteRefreshMessage {
  type: 'route-refresh';
  afi: number;
  safi: number;
  /** Undefined for AFI/SAFI pairs the speaker does not know. */
  family?: Family;
}

/**
 * RFC 8203 allowed 128 octets, RFC 9003 255; 128 keeps receivers that still
 * implement RFC 8203 from discarding the message.
 */
export const MAX_SHUTDOWN_MESSAGE_BYTES = 128;

export function encodeKeepalive(): Buffer {
  const buf = Buffer.alloc(HEADER_LENGTH);
  writeHeader(buf, 0, HEADER_LENGTH, MessageType.KEEPALIVE);
  return buf;
}

/** Truncates UTF-8 to at most max bytes without splitting a character. */
function utf8Prefix(text: string, max: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

function carriesShutdownCommunication(code: number, subcode: number): boolean {
  return (
    code === ErrorCode.CEASE &&
    (subcode === CeaseSubcode.ADMINISTRATIVE_SHUTDOWN || subcode === CeaseSubcode.ADMINISTRATIVE_RESET)
  );
}

export function encodeNotification(o: {
  code: number;
  subcode: number;
  data?: Uint8Array;
  shutdownMessage?: string;
}): Buffer {
  let data = o.data ?? new Uint8Array(0);
  if (o.shutdownMessage !== undefined && carriesShutdownCommunication(o.code, o.subcode)) {
    const text = utf8Prefix(o.shutdownMessage, MAX_SHUTDOWN_MESSAGE_BYTES);
    data = Buffer.concat([Uint8Array.of(text.length), text]);
  }
  // The data may not make the message exceed 4096 octets.
  if (data.length > 4096 - HEADER_LENGTH - 2) data = data.subarray(0, 4096 - HEADER_LENGTH - 2);
  const length = HEADER_LENGTH + 2 + data.length;
  const buf = Buffer.alloc(length);
  const p = writeHeader(buf, 0, length, MessageType.NOTIFICATION);
  buf[p] = o.code;
  buf[p + 1] = o.subcode;
  buf.set(data, p + 2);
  return buf;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Never fails: a NOTIFICATION is never answered with another one (RFC 4271 6.4). */
export function decodeNotification(buf: Uint8Array, start: number, end: number): NotificationMessage {
  const code = buf[start]!;
  const subcode = buf[start + 1]!;
  const data = new Uint8Array(buf.subarray(start + 2, end)); // a plain copy, not a view of the socket buffer
  const out: NotificationMessage = { type: 'notification', code, subcode, data };
  if (carriesShutdownCommunication(code, subcode) && data.length >= 1) {
    const length = data[0]!;
    if (length > 0 && length + 1 <= data.length) {
      try {
        out.shutdownMessage = utf8.decode(data.subarray(1, 1 + length));
      } catch {
        // Invalid UTF-8: RFC 8203 says to treat the message as absent, nothing more.
      }
    }
  }
  return out;
}

export function describeNotification(n: { code: number; subcode: number; shutdownMessage?: string }): string {
  const name = notificationName(n.code, n.subcode);
  return n.shutdownMessage !== undefined ? `${name}: "${n.shutdownMessage}"` : name;
}

export function encodeRouteRefresh(family: Family): Buffer {
  const length = HEADER_LENGTH + 4;
  const buf = Buffer.alloc(length);
  const p = writeHeader(buf, 0, length, MessageType.ROUTE_REFRESH);
  const [afi, safi] = familyCode(family);
  buf.writeUInt16BE(afi, p);
  buf[p + 3] = safi;
  return buf;
}
