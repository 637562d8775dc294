import type { Family } from '../types.js';
import type { LargeCommunity } from './communities.js';
import {
  AS_TRANS,
  AsPathSegmentType,
  AttrFlag,
  AttrType,
  HEADER_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
} from './constants.js';
import { BgpMessageError, ErrorCode, UpdateSubcode } from './errors.js';
import { writeHeader } from './header.js';
import { familyCode, familyOf } from './open.js';
import { formatIPv4, formatIPv6, parseAddress, parsePrefix, readNlri, writeNlri } from './prefix.js';

export interface AsPathSegment {
  type: number;
  asns: number[];
}

export interface PathAttributes {
  origin?: number;
  asPath?: AsPathSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  communities?: number[];
  largeCommunities?: LargeCommunity[];
  as4Path?: AsPathSegment[];
  /** Attributes the speaker does not interpret, kept as received. */
  other?: { flags: number; type: number; value: Uint8Array }[];
}

export interface MpReach {
  family: Family;
  /** One global address, or global then link-local for IPv6 (RFC 2545). */
  nextHops: string[];
  nlri: string[];
}

export interface MpUnreach {
  family: Family;
  withdrawn: string[];
}

export interface UpdateMessage {
  type: 'update';
  /** IPv4 unicast withdrawn routes (the body field). */
  withdrawn: string[];
  /** IPv4 unicast NLRI (the body field). */
  nlri: string[];
  attributes: PathAttributes;
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** The number of path attributes in the message (End-of-RIB detection). */
  attributeCount: number;
  /** RFC 7606 treat-as-withdraw: every NLRI of this message is to be handled as withdrawn, for this reason. */
  treatAsWithdraw?: BgpMessageError;
  /** RFC 7606 attribute discard: these attribute type codes were dropped as malformed. */
  discarded?: number[];
  /** AFI/SAFI pairs in MP attributes that the speaker does not speak, as "afi/safi"; ignored. */
  ignoredFamilies?: string[];
}

export interface UpdateContext {
  /** Both sides sent the 4-octet AS capability: AS numbers in AS_PATH and AGGREGATOR take 4 octets. */
  fourOctetAs: boolean;
  /** The session is eBGP: a received LOCAL_PREF is discarded (RFC 7606 7.5). */
  ebgp?: boolean;
}

const WELL_KNOWN = AttrFlag.TRANSITIVE;
const OPTIONAL_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
const OPTIONAL_NON_TRANSITIVE = AttrFlag.OPTIONAL;

/** The optional and transitive bits each known attribute must carry. */
const expectedFlags: Record<number, number> = {
  [AttrType.ORIGIN]: WELL_KNOWN,
  [AttrType.AS_PATH]: WELL_KNOWN,
  [AttrType.NEXT_HOP]: WELL_KNOWN,
  [AttrType.MULTI_EXIT_DISC]: OPTIONAL_NON_TRANSITIVE,
  [AttrType.LOCAL_PREF]: WELL_KNOWN,
  [AttrType.ATOMIC_AGGREGATE]: WELL_KNOWN,
  [AttrType.AGGREGATOR]: OPTIONAL_TRANSITIVE,
  [AttrType.COMMUNITIES]: OPTIONAL_TRANSITIVE,
  [AttrType.ORIGINATOR_ID]: OPTIONAL_NON_TRANSITIVE,
  [AttrType.CLUSTER_LIST]: OPTIONAL_NON_TRANSITIVE,
  [AttrType.MP_REACH_NLRI]: OPTIONAL_NON_TRANSITIVE,
  [AttrType.MP_UNREACH_NLRI]: OPTIONAL_NON_TRANSITIVE,
  [AttrType.AS4_PATH]: OPTIONAL_TRANSITIVE,
  [AttrType.AS4_AGGREGATOR]: OPTIONAL_TRANSITIVE,
  [AttrType.LARGE_COMMUNITY]: OPTIONAL_TRANSITIVE,
};

function u32(buf: Uint8Array, p: number): number {
  return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
}

function u16(buf: Uint8Array, p: number): number {
  return (buf[p]! << 8) | buf[p + 1]!;
}

function updateError(subcode: number, reason: string, data?: Uint8Array): BgpMessageError {
  return new BgpMessageError(ErrorCode.UPDATE_MESSAGE, subcode, reason, data);
}

/** AS_PATH or AS4_PATH segments; undefined when malformed. */
function decodeAsPath(
  buf: Uint8Array,
  start: number,
  end: number,
  asSize: number,
): AsPathSegment[] | undefined {
  const segments: AsPathSegment[] = [];
  let p = start;
  while (p < end) {
    if (p + 2 > end) return undefined;
    const type = buf[p]!;
    const count = buf[p + 1]!;
    if (type < AsPathSegmentType.AS_SET || type > AsPathSegmentType.AS_CONFED_SET || count === 0)
      return undefined;
    p += 2;
    if (p + count * asSize > end) return undefined;
    const asns: number[] = [];
    for (let i = 0; i < count; i++, p += asSize) asns.push(asSize === 4 ? u32(buf, p) : u16(buf, p));
    segments.push({ type, asns });
  }
  return segments;
}

/** The AS numbers of a path in order (sets and confederation segments flattened), for display. */
export function flattenAsPath(attributes: PathAttributes, fourOctetAs: boolean): number[] {
  const flat = (segments: AsPathSegment[] | undefined): number[] => (segments ?? []).flatMap((s) => s.asns);
  const path = flat(attributes.asPath);
  if (fourOctetAs || !attributes.as4Path) return path;
  // RFC 6793 4.2.3: the AS4_PATH replaces the trailing part of a 2-octet AS_PATH.
  const as4 = flat(attributes.as4Path);
  if (as4.length > path.length) return path;
  return [...path.slice(0, path.length - as4.length), ...as4];
}

/**
 * Decodes an UPDATE body. Errors RFC 7606 resolves by session reset are
 * thrown as BgpMessageError; treat-as-withdraw and attribute-discard are
 * reported in the result.
 */
export function decodeUpdate(buf: Uint8Array, start: number, end: number, ctx: UpdateContext): UpdateMessage {
  const withdrawnLength = u16(buf, start);
  const withdrawnEnd = start + 2 + withdrawnLength;
  if (withdrawnEnd + 2 > end) {
    throw updateError(
      UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
      `withdrawn routes length ${withdrawnLength} exceeds the message`,
    );
  }
  const attributesLength = u16(buf, withdrawnEnd);
  const attrStart = withdrawnEnd + 2;
  const attrEnd = attrStart + attributesLength;
  if (attrEnd > end) {
    throw updateError(
      UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
      `withdrawn routes length ${withdrawnLength} + total path attribute length ${attributesLength} exceed the message`,
    );
  }
  const withdrawn = readNlri(buf, start + 2, withdrawnEnd, 'ipv4-unicast');
  const nlri = readNlri(buf, attrEnd, end, 'ipv4-unicast');
  const update: UpdateMessage = { type: 'update', withdrawn, nlri, attributes: {}, attributeCount: 0 };
  const attributes = update.attributes;
  const taw = (subcode: number, reason: string, data?: Uint8Array): void => {
    update.treatAsWithdraw ??= updateError(subcode, reason, data);
  };
  const discard = (type: number): void => {
    update.discarded ??= [];
    update.discarded.push(type);
  };
  const seen = new Uint8Array(256);
  const asSize = ctx.fourOctetAs ? 4 : 2;
  let p = attrStart;
  while (p < attrEnd) {
    if (attrEnd - p < 3 || (buf[p]! & AttrFlag.EXTENDED_LENGTH && attrEnd - p < 4)) {
      // RFC 7606 4: too few octets for an attribute header; the total length still locates the NLRI.
      taw(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, 'path attributes end in a partial attribute header');
      break;
    }
    const flags = buf[p]!;
    const type = buf[p + 1]!;
    const extended = (flags & AttrFlag.EXTENDED_LENGTH) !== 0;
    const length = extended ? u16(buf, p + 2) : buf[p + 2]!;
    const v = p + (extended ? 4 : 3);
    const vEnd = v + length;
    if (vEnd > attrEnd) {
      if (type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI) {
        throw updateError(
          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
          `attribute ${type} runs past the path attributes`,
        );
      }
      taw(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `attribute ${type} runs past the path attributes`);
      break;
    }
    const raw = buf.subarray(p, vEnd);
    p = vEnd;
    update.attributeCount++;
    if (seen[type]) {
      if (type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI) {
        throw updateError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `attribute ${type} appears more than once`);
      }
      discard(type); // RFC 7606 3g: keep the first, drop the repeats
      continue;
    }
    seen[type] = 1;
    const expected = expectedFlags[type];
    if (expected === undefined) {
      if (!(flags & AttrFlag.OPTIONAL)) {
        throw updateError(
          UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
          `unrecognized well-known attribute ${type}`,
          raw,
        );
      }
      attributes.other ??= [];
      attributes.other.push({ flags, type, value: new Uint8Array(buf.subarray(v, vEnd)) });
      continue;
    }
    const flagsOk = (flags & (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)) === expected;
    const flagsReason = `attribute ${type} has flags 0x${flags.toString(16)}`;
    switch (type) {
      case AttrType.ORIGIN:
        if (!flagsOk) taw(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        else if (length !== 1) taw(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `ORIGIN length ${length}`, raw);
        else if (buf[v]! > 2) taw(UpdateSubcode.INVALID_ORIGIN, `ORIGIN value ${buf[v]}`, raw);
        else attributes.origin = buf[v]!;
        break;
      case AttrType.AS_PATH: {
        const segments = flagsOk ? decodeAsPath(buf, v, vEnd, asSize) : undefined;
        if (!flagsOk) taw(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        else if (!segments) taw(UpdateSubcode.MALFORMED_AS_PATH, 'malformed AS_PATH', raw);
        else attributes.asPath = segments;
        break;
      }
      case AttrType.NEXT_HOP:
        if (!flagsOk) taw(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        else if (length !== 4) taw(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `NEXT_HOP length ${length}`, raw);
        else if (buf[v] === 0 || buf[v]! >= 224) {
          taw(UpdateSubcode.INVALID_NEXT_HOP, `NEXT_HOP ${formatIPv4(buf, v)} is not a unicast address`, raw);
        } else attributes.nextHop = formatIPv4(buf, v);
        break;
      case AttrType.MULTI_EXIT_DISC:
        if (!flagsOk) taw(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        else if (length !== 4)
          taw(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `MULTI_EXIT_DISC length ${length}`, raw);
        else attributes.med = u32(buf, v);
        break;
      case AttrType.LOCAL_PREF:
        if (ctx.ebgp) discard(type);
        else if (!flagsOk) taw(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        else if (length !== 4) taw(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `LOCAL_PREF length ${length}`, raw);
        else attributes.localPref = u32(buf, v);
        break;
      case AttrType.ATOMIC_AGGREGATE:
        if (!flagsOk || length !== 0) discard(type);
        else attributes.atomicAggregate = true;
        break;
      case AttrType.AGGREGATOR:
        if (!flagsOk || length !== asSize + 4) discard(type);
        else {
          attributes.aggregator = {
            asn: asSize === 4 ? u32(buf, v) : u16(buf, v),
            address: formatIPv4(buf, v + asSize),
          };
        }
        break;
      case AttrType.COMMUNITIES:
        if (!flagsOk) taw(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        else if (length % 4 !== 0)
          taw(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `COMMUNITIES length ${length}`, raw);
        else {
          const values: number[] = [];
          for (let q = v; q < vEnd; q += 4) values.push(u32(buf, q));
          attributes.communities = values;
        }
        break;
      case AttrType.LARGE_COMMUNITY:
        if (!flagsOk) taw(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        else if (length % 12 !== 0) {
          taw(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `LARGE_COMMUNITY length ${length}`, raw);
        } else {
          const values: LargeCommunity[] = [];
          for (let q = v; q < vEnd; q += 12) values.push([u32(buf, q), u32(buf, q + 4), u32(buf, q + 8)]);
          attributes.largeCommunities = values;
        }
        break;
      case AttrType.ORIGINATOR_ID:
      case AttrType.CLUSTER_LIST: {
        const ok = type === AttrType.ORIGINATOR_ID ? length === 4 : length > 0 && length % 4 === 0;
        if (!flagsOk) taw(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        else if (!ok) taw(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `attribute ${type} length ${length}`, raw);
        else {
          attributes.other ??= [];
          attributes.other.push({ flags, type, value: new Uint8Array(buf.subarray(v, vEnd)) });
        }
        break;
      }
      case AttrType.AS4_PATH: {
        const segments = flagsOk ? decodeAsPath(buf, v, vEnd, 4) : undefined;
        if (!segments) discard(type);
        else attributes.as4Path = segments;
        break;
      }
      case AttrType.AS4_AGGREGATOR:
        if (!flagsOk || length !== 8) discard(type);
        break;
      case AttrType.MP_REACH_NLRI:
      case AttrType.MP_UNREACH_NLRI:
        if (!flagsOk) throw updateError(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, flagsReason, raw);
        decodeMp(update, type, buf, v, vEnd, raw);
        break;
    }
  }
  const announces = nlri.length > 0 || (update.mpReach !== undefined && update.mpReach.nlri.length > 0);
  if (announces && !update.treatAsWithdraw) {
    const missing =
      attributes.origin === undefined
        ? AttrType.ORIGIN
        : attributes.asPath === undefined
          ? AttrType.AS_PATH
          : nlri.length > 0 && attributes.nextHop === undefined
            ? AttrType.NEXT_HOP
            : undefined;
    if (missing !== undefined) {
      taw(
        UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
        `missing well-known attribute ${missing}`,
        Uint8Array.of(missing),
      );
    }
  }
  return update;
}

function decodeMp(
  update: UpdateMessage,
  type: number,
  buf: Uint8Array,
  v: number,
  vEnd: number,
  raw: Uint8Array,
): void {
  const reach = type === AttrType.MP_REACH_NLRI;
  const name = reach ? 'MP_REACH_NLRI' : 'MP_UNREACH_NLRI';
  const error = (reason: string): BgpMessageError =>
    updateError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `${name}: ${reason}`, raw);
  if (vEnd - v < (reach ? 5 : 3)) throw error('too short');
  const afi = u16(buf, v);
  const safi = buf[v + 2]!;
  const family = familyOf(afi, safi);
  if (!family) {
    update.ignoredFamilies ??= [];
    update.ignoredFamilies.push(`${afi}/${safi}`);
    return;
  }
  if (!reach) {
    update.mpUnreach = { family, withdrawn: readNlri(buf, v + 3, vEnd, family) };
    return;
  }
  const nhLength = buf[v + 3]!;
  const nh = v + 4;
  if (nh + nhLength + 1 > vEnd) throw error(`next hop length ${nhLength} runs past the attribute`);
  const nextHops: string[] = [];
  if (family === 'ipv4-unicast') {
    if (nhLength !== 4) throw error(`next hop length ${nhLength} for IPv4 unicast`);
    nextHops.push(formatIPv4(buf, nh));
  } else {
    if (nhLength !== 16 && nhLength !== 32) throw error(`next hop length ${nhLength} for IPv6 unicast`);
    nextHops.push(formatIPv6(buf, nh));
    if (nhLength === 32) nextHops.push(formatIPv6(buf, nh + 16));
  }
  // One reserved octet (the old SNPA count) follows the next hop (RFC 4760 3).
  update.mpReach = { family, nextHops, nlri: readNlri(buf, nh + nhLength + 1, vEnd, family) };
}

/** An update is an End-of-RIB marker (RFC 4724 2) for this family, or undefined. */
export function endOfRibFamily(u: UpdateMessage): Family | undefined {
  if (u.withdrawn.length > 0 || u.nlri.length > 0) return undefined;
  if (u.attributeCount === 0) return 'ipv4-unicast';
  if (u.attributeCount === 1 && u.mpUnreach && u.mpUnreach.withdrawn.length === 0) return u.mpUnreach.family;
  return undefined;
}

// ---- encoding ----

class ByteWriter {
  bytes: number[] = [];
  u8(n: number): void {
    this.bytes.push(n & 0xff);
  }
  u16(n: number): void {
    this.bytes.push((n >> 8) & 0xff, n & 0xff);
  }
  u32(n: number): void {
    this.bytes.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }
  raw(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]!);
  }
  attribute(flags: number, type: number, value: number[] | Uint8Array): void {
    if (value.length > 255) {
      this.bytes.push(flags | AttrFlag.EXTENDED_LENGTH, type, value.length >> 8, value.length & 0xff);
    } else {
      this.bytes.push(flags & ~AttrFlag.EXTENDED_LENGTH, type, value.length);
    }
    this.raw(value);
  }
}

function asPathValue(segments: AsPathSegment[], asSize: 2 | 4, mapAs: (as: number) => number): number[] {
  const w = new ByteWriter();
  for (const segment of segments) {
    // A segment holds at most 255 AS numbers; longer ones are split.
    for (let i = 0; i < segment.asns.length || i === 0; i += 255) {
      const chunk = segment.asns.slice(i, i + 255);
      if (chunk.length === 0) break;
      w.u8(segment.type);
      w.u8(chunk.length);
      for (const as of chunk) {
        if (asSize === 4) w.u32(mapAs(as));
        else w.u16(mapAs(as));
      }
    }
  }
  return w.bytes;
}

function addressBytes(text: string, family: Family): Uint8Array {
  const parsed = parseAddress(text);
  if (!parsed || parsed.family !== family)
    throw new RangeError(`next hop "${text}" is not an ${family} address`);
  return parsed.addr;
}

/**
 * Path attributes except MP_REACH/MP_UNREACH, in ascending type order. With
 * a 2-octet peer, AS numbers above 65535 become AS_TRANS and the real path
 * goes in AS4_PATH (RFC 6793 4.2.2).
 */
export function encodePathAttributes(a: PathAttributes, ctx: UpdateContext): Uint8Array {
  const w = new ByteWriter();
  if (a.origin !== undefined) w.attribute(WELL_KNOWN, AttrType.ORIGIN, [a.origin]);
  let needAs4Path = false;
  if (a.asPath !== undefined) {
    const value = ctx.fourOctetAs
      ? asPathValue(a.asPath, 4, (as) => as)
      : asPathValue(a.asPath, 2, (as) => {
          if (as > 0xffff) needAs4Path = true;
          return as > 0xffff ? AS_TRANS : as;
        });
    w.attribute(WELL_KNOWN, AttrType.AS_PATH, value);
  }
  if (a.nextHop !== undefined)
    w.attribute(WELL_KNOWN, AttrType.NEXT_HOP, addressBytes(a.nextHop, 'ipv4-unicast'));
  if (a.med !== undefined) w.attribute(OPTIONAL_NON_TRANSITIVE, AttrType.MULTI_EXIT_DISC, u32Bytes(a.med));
  if (a.localPref !== undefined) w.attribute(WELL_KNOWN, AttrType.LOCAL_PREF, u32Bytes(a.localPref));
  if (a.atomicAggregate) w.attribute(WELL_KNOWN, AttrType.ATOMIC_AGGREGATE, []);
  if (a.aggregator) {
    const v = new ByteWriter();
    if (ctx.fourOctetAs) v.u32(a.aggregator.asn);
    else v.u16(a.aggregator.asn > 0xffff ? AS_TRANS : a.aggregator.asn);
    v.raw(addressBytes(a.aggregator.address, 'ipv4-unicast'));
    w.attribute(OPTIONAL_TRANSITIVE, AttrType.AGGREGATOR, v.bytes);
  }
  if (a.communities !== undefined && a.communities.length > 0) {
    const v = new ByteWriter();
    for (const c of a.communities) v.u32(c);
    w.attribute(OPTIONAL_TRANSITIVE, AttrType.COMMUNITIES, v.bytes);
  }
  const as4Path = a.as4Path ?? (needAs4Path ? a.asPath : undefined);
  if (as4Path !== undefined && !ctx.fourOctetAs) {
    w.attribute(
      OPTIONAL_TRANSITIVE,
      AttrType.AS4_PATH,
      asPathValue(as4Path, 4, (as) => as),
    );
  }
  if (a.largeCommunities !== undefined && a.largeCommunities.length > 0) {
    const v = new ByteWriter();
    for (const [x, y, z] of a.largeCommunities) {
      v.u32(x);
      v.u32(y);
      v.u32(z);
    }
    w.attribute(OPTIONAL_TRANSITIVE, AttrType.LARGE_COMMUNITY, v.bytes);
  }
  for (const o of a.other ?? []) w.attribute(o.flags, o.type, o.value);
  return Uint8Array.from(w.bytes);
}

function u32Bytes(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** The fixed part of an MP_REACH_NLRI value before its NLRI: AFI, SAFI, next hop, reserved octet. */
export function mpReachPrefix(family: Family, nextHops: string[]): Uint8Array {
  const [afi, safi] = familyCode(family);
  const hops = nextHops.map((h) => addressBytes(h, family));
  const nhLength = hops.reduce((n, h) => n + h.length, 0);
  const out = new Uint8Array(4 + nhLength + 1);
  out[0] = afi >> 8;
  out[1] = afi & 0xff;
  out[2] = safi;
  out[3] = nhLength;
  let p = 4;
  for (const h of hops) {
    out.set(h, p);
    p += h.length;
  }
  return out;
}

function nlriBytes(prefixes: string[], family: Family): number[] {
  const out: number[] = [];
  const tmp = new Uint8Array(17);
  for (const text of prefixes) {
    const p = parsePrefix(text);
    if (p.family !== family) throw new RangeError(`${text} is not ${family}`);
    const end = writeNlri(tmp, 0, p.length, p.addr);
    for (let i = 0; i < end; i++) out.push(tmp[i]!);
  }
  return out;
}

/**
 * One UPDATE from a decoded-style description (tests, End-of-RIB, small
 * messages). The RIB-out packs large tables itself. MP attributes go first
 * (RFC 7606 5.1).
 */
export function encodeUpdate(
  u: {
    withdrawn?: string[];
    nlri?: string[];
    attributes?: PathAttributes;
    mpReach?: MpReach;
    mpUnreach?: MpUnreach;
  },
  ctx: UpdateContext,
): Buffer {
  const attrs = new ByteWriter();
  if (u.mpReach) {
    attrs.attribute(OPTIONAL_NON_TRANSITIVE, AttrType.MP_REACH_NLRI, [
      ...mpReachPrefix(u.mpReach.family, u.mpReach.nextHops),
      ...nlriBytes(u.mpReach.nlri, u.mpReach.family),
    ]);
  }
  if (u.mpUnreach) {
    const [afi, safi] = familyCode(u.mpUnreach.family);
    attrs.attribute(OPTIONAL_NON_TRANSITIVE, AttrType.MP_UNREACH_NLRI, [
      afi >> 8,
      afi & 0xff,
      safi,
      ...nlriBytes(u.mpUnreach.withdrawn, u.mpUnreach.family),
    ]);
  }
  if (u.attributes) attrs.raw(encodePathAttributes(u.attributes, ctx));
  const withdrawn = nlriBytes(u.withdrawn ?? [], 'ipv4-unicast');
  const nlri = nlriBytes(u.nlri ?? [], 'ipv4-unicast');
  const length = HEADER_LENGTH + 2 + withdrawn.length + 2 + attrs.bytes.length + nlri.length;
  if (length > MAX_MESSAGE_LENGTH)
    throw new RangeError(`UPDATE of ${length} octets exceeds ${MAX_MESSAGE_LENGTH}`);
  const buf = Buffer.alloc(length);
  let p = writeHeader(buf, 0, length, MessageType.UPDATE);
  buf.writeUInt16BE(withdrawn.length, p);
  p += 2;
  buf.set(withdrawn, p);
  p += withdrawn.length;
  buf.writeUInt16BE(attrs.bytes.length, p);
  p += 2;
  buf.set(attrs.bytes, p);
  p += attrs.bytes.length;
  buf.set(nlri, p);
  return buf;
}

export function encodeEndOfRib(family: Family): Buffer {
  return family === 'ipv4-unicast'
    ? encodeUpdate({}, { fourOctetAs: true })
    : encodeUpdate({ mpUnreach: { family, withdrawn: [] } }, { fourOctetAs: true });
}
