import { HEADER_LENGTH } from './constants.js';

/** Writes the 16-octet marker, length and type; returns the offset of the body. */
export function writeHeader(buf: Uint8Array, offset: number, length: number, type: number): number {
  buf.fill(0xff, offset, offset + 16);
  buf[offset + 16] = length >> 8;
  buf[offset + 17] = length & 0xff;
  buf[offset + 18] = type;
  return offset + HEADER_LENGTH;
}
