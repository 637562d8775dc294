import { HEADER_LENGTH, MAX_MESSAGE_LENGTH, MessageType } from './constants.js';
import { BgpMessageError, ErrorCode, HeaderSubcode } from './errors.js';
import {
  decodeNotification,
  type KeepaliveMessage,
  type NotificationMessage,
  type RouteRefreshMessage,
} from './notification.js';
import { decodeOpen, familyOf, type OpenMessage } from './open.js';
import { decodeUpdate, type UpdateContext, type UpdateMessage } from './update.js';

export type BgpMessage =
  | OpenMessage
  | UpdateMessage
  | NotificationMessage
  | KeepaliveMessage
  | RouteRefreshMessage;

export type DecodeResult = { ok: true; message: BgpMessage } | { ok: false; error: BgpMessageError };

/** Smallest (and for KEEPALIVE and ROUTE-REFRESH, only) valid length per message type. */
const minLength: Record<number, number> = {
  [MessageType.OPEN]: 29,
  [MessageType.UPDATE]: 23,
  [MessageType.NOTIFICATION]: 21,
  [MessageType.KEEPALIVE]: 19,
  [MessageType.ROUTE_REFRESH]: 23,
};

function headerError(subcode: number, reason: string, data?: Uint8Array): BgpMessageError {
  return new BgpMessageError(ErrorCode.MESSAGE_HEADER, subcode, reason, data);
}

/**
 * Validates the 19-octet header at offset (RFC 4271 6.1) and returns the
 * message length and type.
 */
export function decodeHeader(buf: Uint8Array, offset: number): { length: number; type: number } {
  for (let i = 0; i < 16; i++) {
    if (buf[offset + i] !== 0xff) {
      throw headerError(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, 'marker is not all ones');
    }
  }
  const length = (buf[offset + 16]! << 8) | buf[offset + 17]!;
  const type = buf[offset + 18]!;
  const lengthData = Uint8Array.of(buf[offset + 16]!, buf[offset + 17]!);
  if (length < HEADER_LENGTH || length > MAX_MESSAGE_LENGTH) {
    throw headerError(HeaderSubcode.BAD_MESSAGE_LENGTH, `length ${length}`, lengthData);
  }
  const min = minLength[type];
  if (min === undefined)
    throw headerError(HeaderSubcode.BAD_MESSAGE_TYPE, `type ${type}`, Uint8Array.of(type));
  const exact = type === MessageType.KEEPALIVE || type === MessageType.ROUTE_REFRESH;
  if (length < min || (exact && length !== min)) {
    throw headerError(
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      `length ${length} for message type ${type}`,
      lengthData,
    );
  }
  return { length, type };
}

function decodeBody(
  buf: Uint8Array,
  offset: number,
  length: number,
  type: number,
  ctx: UpdateContext,
): BgpMessage {
  const start = offset + HEADER_LENGTH;
  const end = offset + length;
  switch (type) {
    case MessageType.OPEN:
      return decodeOpen(buf, start, end);
    case MessageType.UPDATE:
      return decodeUpdate(buf, start, end, ctx);
    case MessageType.NOTIFICATION:
      return decodeNotification(buf, start, end);
    case MessageType.KEEPALIVE:
      return { type: 'keepalive' };
    default: {
      const afi = (buf[start]! << 8) | buf[start + 1]!;
      const safi = buf[start + 3]!;
      const family = familyOf(afi, safi);
      return family ? { type: 'route-refresh', afi, safi, family } : { type: 'route-refresh', afi, safi };
    }
  }
}

function settle(run: () => BgpMessage): DecodeResult {
  try {
    return { ok: true, message: run() };
  } catch (error) {
    if (error instanceof BgpMessageError) return { ok: false, error };
    throw error; // a bug in the decoder, not bad input: the fuzz tests look for exactly this
  }
}

/** Decodes exactly one message filling buf. */
export function decodeMessage(buf: Uint8Array, ctx: UpdateContext): DecodeResult {
  return settle(() => {
    if (buf.length < HEADER_LENGTH) {
      throw headerError(HeaderSubcode.BAD_MESSAGE_LENGTH, `${buf.length} octets is shorter than a header`);
    }
    const { length, type } = decodeHeader(buf, 0);
    if (length !== buf.length) {
      throw headerError(
        HeaderSubcode.BAD_MESSAGE_LENGTH,
        `length field ${length} but ${buf.length} octets`,
        Uint8Array.of(length >> 8, length & 0xff),
      );
    }
    return decodeBody(buf, 0, length, type, ctx);
  });
}

/**
 * Splits a TCP byte stream into messages. A bad header is reported as soon
 * as its 19 octets are in, without waiting for a body that may never come.
 */
export class MessageReader {
  private pending: Buffer = Buffer.alloc(0);
  private offset = 0;

  push(chunk: Buffer): void {
    if (this.offset >= this.pending.length) {
      this.pending = chunk;
    } else {
      this.pending = Buffer.concat([this.pending.subarray(this.offset), chunk]);
    }
    this.offset = 0;
  }

  /** The next message, an error, or undefined when more bytes are needed. */
  next(ctx: UpdateContext): DecodeResult | undefined {
    const available = this.pending.length - this.offset;
    if (available < HEADER_LENGTH) return undefined;
    const offset = this.offset;
    let header: { length: number; type: number };
    try {
      header = decodeHeader(this.pending, offset);
    } catch (error) {
      if (error instanceof BgpMessageError) return { ok: false, error };
      throw error;
    }
    if (available < header.length) return undefined;
    this.offset += header.length;
    return settle(() => decodeBody(this.pending, offset, header.length, header.type, ctx));
  }
}
