import type { Family } from '../types.js';
import { Afi, AS_TRANS, BGP_VERSION, CapabilityCode, HEADER_LENGTH, MessageType, Safi } from './constants.js';
import { BgpMessageError, ErrorCode, OpenSubcode } from './errors.js';
import { writeHeader } from './header.js';

export interface GracefulRestartCapability {
  /** The R bit: the sender has restarted and its peer should not wait for its own End-of-RIB first. */
  restarting: boolean;
  /** Seconds (12 bits). */
  restartTime: number;
  /** Families whose routes the peer should keep as stale; forwarding = the F bit. */
  families: { family: Family; forwarding: boolean }[];
}

export interface Capabilities {
  /** MP-BGP (RFC 4760) families; undefined when no multiprotocol capability was sent (IPv4 unicast implied). */
  families?: Family[];
  /** AFI/SAFI pairs we do not speak, as "afi/safi". */
  otherFamilies?: string[];
  /** RFC 6793: the sender's real AS number. */
  fourOctetAs?: number;
  routeRefresh?: boolean;
  gracefulRestart?: GracefulRestartCapability;
  /** Capability codes we do not interpret. */
  unknown?: number[];
}

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The 2-octet "My Autonomous System" field (AS_TRANS for 4-octet AS numbers). */
  myAs: number;
  holdTime: number;
  /** BGP Identifier as an unsigned 32-bit number. */
  bgpId: number;
  capabilities: Capabilities;
}

const familyCodes: Record<Family, [number, number]> = {
  'ipv4-unicast': [Afi.IPV4, Safi.UNICAST],
  'ipv6-unicast': [Afi.IPV6, Safi.UNICAST],
};

export function familyCode(family: Family): [number, number] {
  return familyCodes[family];
}

export function familyOf(afi: number, safi: number): Family | undefined {
  if (safi !== Safi.UNICAST) return undefined;
  if (afi === Afi.IPV4) return 'ipv4-unicast';
  if (afi === Afi.IPV6) return 'ipv6-unicast';
  return undefined;
}

/** The AS number an OPEN announces: the 4-octet capability when present (RFC 6793 4.1). */
export function openAsn(open: OpenMessage): number {
  return open.capabilities.fourOctetAs ?? open.myAs;
}

export function encodeOpen(o: {
  asn: number;
  holdTime: number;
  bgpId: number;
  capabilities: Capabilities;
}): Buffer {
  const caps: number[] = [];
  const cap = (code: number, value: number[]): void => {
    caps.push(code, value.length, ...value);
  };
  for (const family of o.capabilities.families ?? []) {
    const [afi, safi] = familyCode(family);
    cap(CapabilityCode.MULTIPROTOCOL, [afi >> 8, afi & 0xff, 0, safi]);
  }
  if (o.capabilities.routeRefresh) cap(CapabilityCode.ROUTE_REFRESH, []);
  const gr = o.capabilities.gracefulRestart;
  if (gr) {
    const flagsAndTime = (gr.restarting ? 0x8000 : 0) | (gr.restartTime & 0x0fff);
    const value = [flagsAndTime >> 8, flagsAndTime & 0xff];
    for (const f of gr.families) {
      const [afi, safi] = familyCode(f.family);
      value.push(afi >> 8, afi & 0xff, safi, f.forwarding ? 0x80 : 0);
    }
    cap(CapabilityCode.GRACEFUL_RESTART, value);
  }
  if (o.capabilities.fourOctetAs !== undefined) {
    const as = o.capabilities.fourOctetAs;
    cap(CapabilityCode.FOUR_OCTET_AS, [(as >>> 24) & 0xff, (as >>> 16) & 0xff, (as >>> 8) & 0xff, as & 0xff]);
  }
  // One Capabilities optional parameter (type 2) holding them all (RFC 5492).
  const params = caps.length > 0 ? [2, caps.length, ...caps] : [];
  if (params.length > 255) throw new RangeError('OPEN optional parameters exceed 255 bytes');
  const length = HEADER_LENGTH + 10 + params.length;
  const buf = Buffer.alloc(length);
  let p = writeHeader(buf, 0, length, MessageType.OPEN);
  buf[p++] = BGP_VERSION;
  buf.writeUInt16BE(o.asn > 0xffff ? AS_TRANS : o.asn, p);
  buf.writeUInt16BE(o.holdTime, p + 2);
  buf.writeUInt32BE(o.bgpId >>> 0, p + 4);
  buf[p + 8] = params.length;
  p += 9;
  for (const b of params) buf[p++] = b;
  return buf;
}

function openError(subcode: number, reason: string, data?: Uint8Array): BgpMessageError {
  return new BgpMessageError(ErrorCode.OPEN_MESSAGE, subcode, reason, data);
}

function decodeCapabilities(buf: Uint8Array, start: number, end: number, into: Capabilities): void {
  let p = start;
  while (p < end) {
    if (p + 2 > end) throw openError(OpenSubcode.UNSPECIFIC, 'capability header runs past its parameter');
    const code = buf[p]!;
    const length = buf[p + 1]!;
    const v = p + 2;
    if (v + length > end)
      throw openError(OpenSubcode.UNSPECIFIC, `capability ${code} runs past its parameter`);
    const bad = (): BgpMessageError =>
      openError(OpenSubcode.UNSPECIFIC, `capability ${code} has a malformed value (length ${length})`);
    switch (code) {
      case CapabilityCode.MULTIPROTOCOL: {
        if (length !== 4) throw bad();
        const afi = (buf[v]! << 8) | buf[v + 1]!;
        const safi = buf[v + 3]!;
        const family = familyOf(afi, safi);
        if (family) {
          into.families ??= [];
          if (!into.families.includes(family)) into.families.push(family);
        } else {
          into.families ??= [];
          into.otherFamilies ??= [];
          into.otherFamilies.push(`${afi}/${safi}`);
        }
        break;
      }
      case CapabilityCode.ROUTE_REFRESH:
        if (length !== 0) throw bad();
        into.routeRefresh = true;
        break;
      case CapabilityCode.GRACEFUL_RESTART: {
        if (length < 2 || (length - 2) % 4 !== 0) throw bad();
        const word = (buf[v]! << 8) | buf[v + 1]!;
        const families: GracefulRestartCapability['families'] = [];
        for (let q = v + 2; q < v + length; q += 4) {
          const family = familyOf((buf[q]! << 8) | buf[q + 1]!, buf[q + 2]!);
          if (family) families.push({ family, forwarding: (buf[q + 3]! & 0x80) !== 0 });
        }
        into.gracefulRestart = { restarting: (word & 0x8000) !== 0, restartTime: word & 0x0fff, families };
        break;
      }
      case CapabilityCode.FOUR_OCTET_AS:
        if (length !== 4) throw bad();
        into.fourOctetAs = ((buf[v]! << 24) | (buf[v + 1]! << 16) | (buf[v + 2]! << 8) | buf[v + 3]!) >>> 0;
        break;
      default:
        into.unknown ??= [];
        into.unknown.push(code);
    }
    p = v + length;
  }
}

/** Decodes an OPEN body (after the header); `end` is the message end. */
export function decodeOpen(buf: Uint8Array, start: number, end: number): OpenMessage {
  // The header layer guarantees at least the 10 fixed octets (length >= 29).
  const version = buf[start]!;
  if (version !== BGP_VERSION) {
    throw openError(OpenSubcode.UNSUPPORTED_VERSION, `version ${version}`, Uint8Array.of(0, BGP_VERSION));
  }
  const myAs = (buf[start + 1]! << 8) | buf[start + 2]!;
  const holdTime = (buf[start + 3]! << 8) | buf[start + 4]!;
  const bgpId =
    ((buf[start + 5]! << 24) | (buf[start + 6]! << 16) | (buf[start + 7]! << 8) | buf[start + 8]!) >>> 0;
  let paramsLength = buf[start + 9]!;
  let p = start + 10;
  // RFC 9072 extended optional parameters: length 255 followed by type 255 and a 2-octet length.
  let extended = false;
  if (paramsLength === 255 && p < end && buf[p] === 255) {
    if (p + 3 > end)
      throw openError(OpenSubcode.UNSPECIFIC, 'extended optional parameters length runs past the message');
    paramsLength = (buf[p + 1]! << 8) | buf[p + 2]!;
    p += 3;
    extended = true;
  }
  if (p + paramsLength !== end) {
    throw new BgpMessageError(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.UNSPECIFIC,
      `optional parameters length ${paramsLength} does not match the message (${end - p} octets left)`,
    );
  }
  if (holdTime === 1 || holdTime === 2) {
    throw openError(OpenSubcode.UNACCEPTABLE_HOLD_TIME, `hold time ${holdTime} s (must be 0 or at least 3)`);
  }
  if (bgpId === 0) throw openError(OpenSubcode.BAD_BGP_IDENTIFIER, 'BGP identifier 0.0.0.0');
  const capabilities: Capabilities = {};
  const headerSize = extended ? 3 : 2;
  while (p < end) {
    if (p + headerSize > end)
      throw openError(OpenSubcode.UNSPECIFIC, 'optional parameter header runs past the message');
    const type = buf[p]!;
    const length = extended ? (buf[p + 1]! << 8) | buf[p + 2]! : buf[p + 1]!;
    const v = p + headerSize;
    if (v + length > end)
      throw openError(OpenSubcode.UNSPECIFIC, `optional parameter ${type} runs past the message`);
    if (type !== 2) {
      throw openError(OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER, `optional parameter type ${type}`);
    }
    decodeCapabilities(buf, v, v + length, capabilities);
    p = v + length;
  }
  return { type: 'open', version, myAs, holdTime, bgpId, capabilities };
}
