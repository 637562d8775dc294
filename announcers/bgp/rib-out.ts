/**
 * What we announce to one peer: the desired routes, what the peer has been
 * sent, and the UPDATE stream that takes it from one to the other.
 *
 * Routes with equal attributes share UPDATEs: one attribute block, then as
 * many prefixes as fit in 4096 octets (about 800 IPv4 /32s). Messages are
 * written back to back into large chunks, so 100k prefixes leave in a few
 * socket writes, without an allocation per prefix.
 */
import {
  AsPathSegmentType,
  AttrFlag,
  AttrType,
  MAX_MESSAGE_LENGTH,
  MessageType,
  Origin,
} from './codec/constants.js';
import { writeHeader } from './codec/header.js';
import { familyCode } from './codec/open.js';
import { nlriSize, writeNlri } from './codec/prefix.js';
import { encodeEndOfRib, encodePathAttributes, mpReachPrefix, type PathAttributes } from './codec/update.js';
import type { PreparedRoute } from './routes.js';
import type { Family } from './types.js';

/** Per-session facts the encoding depends on. */
export interface RibOutContext {
  localAsn: number;
  ibgp: boolean;
  fourOctetAs: boolean;
  /** Negotiated families; routes of other families are not sent. */
  families: readonly Family[];
  /** IPv4 next hop for IPv4 routes; undefined = IPv4 routes cannot be sent on this session. */
  nextHopIPv4?: string;
  /** IPv6 next hops for IPv6 routes: global, optionally link-local. */
  nextHopsIPv6?: string[];
}

export interface UpdateBatch {
  /** Whole messages, concatenated; each chunk is one socket write. */
  chunks: Buffer[];
  messages: number;
  announced: number;
  withdrawn: number;
}

/** Default chunk size: big writes, bounded memory. */
export const CHUNK_BYTES = 256 * 1024;

class ChunkWriter {
  readonly chunks: Buffer[] = [];
  messages = 0;
  private buf: Buffer;
  pos = 0;

  constructor(private readonly chunkBytes: number) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** Makes room for one whole message and returns the buffer to write it into at `pos`. */
  reserve(): Buffer {
    if (this.buf.length - this.pos < MAX_MESSAGE_LENGTH) this.cut();
    return this.buf;
  }

  append(message: Uint8Array): void {
    const buf = this.reserve();
    buf.set(message, this.pos);
    this.pos += message.length;
    this.messages++;
  }

  private cut(): void {
    if (this.pos > 0) this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(this.chunkBytes);
    this.pos = 0;
  }

  finish(): Buffer[] {
    this.cut();
    return this.chunks;
  }
}

export class RibOut {
  /** Prefix key → the route as the peer has been told. */
  private advertised = new Map<string, PreparedRoute>();
  /** advertised is the desired Map itself (after a full send of everything); copied before a change. */
  private advertisedShared = false;
  /** Prefix key → route, as we want it. */
  private desired = new Map<string, PreparedRoute>();
  /** Prefixes whose advertised state may differ from the desired one. */
  private readonly dirty = new Set<string>();
  /** Nothing advertised and everything desired is to be sent: skips per-prefix dirty tracking after a reset. */
  private full = true;
  /** Families the peer asked to be sent again (ROUTE-REFRESH). */
  private readonly refresh = new Set<Family>();
  private readonly attributeCache = new Map<string, Uint8Array>();

  get advertisedCount(): number {
    return this.advertised.size;
  }

  get pending(): boolean {
    return (this.full && this.desired.size > 0) || this.dirty.size > 0 || this.refresh.size > 0;
  }

  /** Replaces the desired table (already filtered for this peer). */
  setDesired(routes: readonly PreparedRoute[]): void {
    const next = new Map<string, PreparedRoute>();
    for (const r of routes) next.set(r.key, r);
    if (this.full) {
      this.desired = next;
      return;
    }
    for (const [key, route] of next) {
      if (this.advertised.get(key)?.attrKey !== route.attrKey) this.dirty.add(key);
    }
    for (const key of this.advertised.keys()) if (!next.has(key)) this.dirty.add(key);
    this.desired = next;
  }

  /** The session went down: the peer holds nothing from us any more. */
  reset(): void {
    this.advertised = new Map();
    this.advertisedShared = false;
    this.attributeCache.clear();
    this.refresh.clear();
    this.dirty.clear();
    this.full = true;
  }

  /** ROUTE-REFRESH: send every route of the family again. */
  requestRefresh(family: Family): void {
    this.refresh.add(family);
  }

  /**
   * Encodes the difference between advertised and desired (withdrawals first),
   * marks it advertised, and appends End-of-RIB markers for `endOfRib`.
   */
  takeUpdates(
    ctx: RibOutContext,
    o: { endOfRib?: readonly Family[]; chunkBytes?: number } = {},
  ): UpdateBatch {
    const w = new ChunkWriter(o.chunkBytes ?? CHUNK_BYTES);
    const canIPv4 = ctx.families.includes('ipv4-unicast') && ctx.nextHopIPv4 !== undefined;
    const canIPv6 = ctx.families.includes('ipv6-unicast') && (ctx.nextHopsIPv6?.length ?? 0) > 0;
    const sendable = (family: Family): boolean => (family === 'ipv4-unicast' ? canIPv4 : canIPv6);
    const withdraw: Record<Family, PreparedRoute[]> = { 'ipv4-unicast': [], 'ipv6-unicast': [] };
    const groups = new Map<string, PreparedRoute[]>();
    const announce = (route: PreparedRoute): void => {
      const groupKey = `${route.family}#${route.attrKey}`;
      const group = groups.get(groupKey);
      if (group) group.push(route);
      else groups.set(groupKey, [route]);
    };
    let fullSend = false;
    if (this.full) {
      this.full = false;
      fullSend = true;
      for (const route of this.desired.values()) {
        if (sendable(route.family)) announce(route);
        else fullSend = false;
      }
    }
    for (const key of this.dirty) {
      const route = this.desired.get(key);
      const sent = this.advertised.get(key);
      if (route && sendable(route.family)) {
        if (sent?.attrKey !== route.attrKey) announce(route);
      } else if (sent !== undefined) {
        withdraw[sent.family].push(sent);
      }
    }
    this.dirty.clear();
    for (const family of this.refresh) {
      for (const route of this.desired.values()) {
        if (
          route.family === family &&
          sendable(family) &&
          this.advertised.get(route.key)?.attrKey === route.attrKey
        ) {
          announce(route);
        }
      }
    }
    this.refresh.clear();
    if (fullSend) {
      // Everything desired goes out: the peer will hold exactly the desired Map, so share it (setDesired never mutates it).
      this.advertised = this.desired;
      this.advertisedShared = true;
    } else if (
      this.advertisedShared &&
      (groups.size > 0 || withdraw['ipv4-unicast'].length + withdraw['ipv6-unicast'].length > 0)
    ) {
      this.advertised = new Map(this.advertised);
      this.advertisedShared = false;
    }
    let withdrawn = 0;
    for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
      const routes = withdraw[family];
      if (routes.length === 0) continue;
      this.writeWithdrawals(w, family, routes);
      for (const r of routes) this.advertised.delete(r.key);
      withdrawn += routes.length;
    }
    let announced = 0;
    for (const routes of groups.values()) {
      const first = routes[0]!;
      this.writeAnnouncements(w, ctx, first, routes);
      if (!fullSend) for (const r of routes) this.advertised.set(r.key, r);
      announced += routes.length;
    }
    for (const family of o.endOfRib ?? []) w.append(encodeEndOfRib(family));
    return { chunks: w.finish(), messages: w.messages, announced, withdrawn };
  }

  private attributes(ctx: RibOutContext, route: PreparedRoute): Uint8Array {
    const family = route.family;
    const cacheKey = route.groupKey;
    let block = this.attributeCache.get(cacheKey);
    if (block) return block;
    const a: PathAttributes = {
      origin: Origin.IGP,
      // eBGP: prepend our AS; iBGP: an empty AS_PATH (RFC 4271 5.1.2).
      asPath: ctx.ibgp ? [] : [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [ctx.localAsn] }],
    };
    if (family === 'ipv4-unicast') a.nextHop = ctx.nextHopIPv4!;
    if (route.med !== undefined) a.med = route.med;
    // LOCAL_PREF is for iBGP only (RFC 4271 5.1.5).
    if (ctx.ibgp) a.localPref = route.localPref ?? 100;
    if (route.communities.length > 0) a.communities = route.communities;
    if (route.largeCommunities.length > 0) a.largeCommunities = [...route.largeCommunities];
    block = encodePathAttributes(a, { fourOctetAs: ctx.fourOctetAs });
    if (family === 'ipv6-unicast') {
      // MP_REACH_NLRI first (RFC 7606 5.1); its NLRI are appended per message.
      const prefix = mpReachPrefix(family, ctx.nextHopsIPv6!);
      const withMp = new Uint8Array(prefix.length + block.length);
      withMp.set(prefix, 0);
      withMp.set(block, prefix.length);
      block = withMp;
    }
    this.attributeCache.set(cacheKey, block);
    return block;
  }

  private writeAnnouncements(
    w: ChunkWriter,
    ctx: RibOutContext,
    first: PreparedRoute,
    routes: PreparedRoute[],
  ): void {
    const block = this.attributes(ctx, first);
    const v6 = first.family === 'ipv6-unicast';
    let i = 0;
    while (i < routes.length) {
      const buf = w.reserve();
      const start = w.pos;
      let p = writeHeader(buf, start, 0, MessageType.UPDATE);
      buf[p++] = 0; // no withdrawn routes
      buf[p++] = 0;
      const attrLengthAt = p;
      p += 2;
      let mpLengthAt = 0;
      let mpPrefixLength = 0;
      if (v6) {
        // The block starts with AFI, SAFI, next hop length, next hop and the reserved octet.
        mpPrefixLength = 4 + block[3]! + 1;
        buf[p++] = AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH;
        buf[p++] = AttrType.MP_REACH_NLRI;
        mpLengthAt = p;
        p += 2;
        buf.set(block.subarray(0, mpPrefixLength), p);
        p += mpPrefixLength;
        const limit = start + MAX_MESSAGE_LENGTH - (block.length - mpPrefixLength);
        while (i < routes.length) {
          const r = routes[i]!;
          if (p + nlriSize(r.length) > limit) break;
          p = writeRouteNlri(buf, p, r);
          i++;
        }
        buf.writeUInt16BE(p - mpLengthAt - 2, mpLengthAt);
        buf.set(block.subarray(mpPrefixLength), p);
        p += block.length - mpPrefixLength;
        buf.writeUInt16BE(p - attrLengthAt - 2, attrLengthAt);
      } else {
        buf.set(block, p);
        p += block.length;
        buf.writeUInt16BE(block.length, attrLengthAt);
        const limit = start + MAX_MESSAGE_LENGTH;
        while (i < routes.length) {
          const r = routes[i]!;
          if (p + nlriSize(r.length) > limit) break;
          p = writeRouteNlri(buf, p, r);
          i++;
        }
      }
      buf.writeUInt16BE(p - start, start + 16);
      w.pos = p;
      w.messages++;
    }
  }

  private writeWithdrawals(w: ChunkWriter, family: Family, routes: PreparedRoute[]): void {
    let i = 0;
    while (i < routes.length) {
      const buf = w.reserve();
      const start = w.pos;
      let p = writeHeader(buf, start, 0, MessageType.UPDATE);
      const limit = start + MAX_MESSAGE_LENGTH;
      if (family === 'ipv4-unicast') {
        const lengthAt = p;
        p += 2;
        while (i < routes.length) {
          const route = routes[i]!;
          if (p + nlriSize(route.length) + 2 > limit) break;
          p = writeRouteNlri(buf, p, route);
          i++;
        }
        buf.writeUInt16BE(p - lengthAt - 2, lengthAt);
        buf[p++] = 0; // no path attributes
        buf[p++] = 0;
      } else {
        buf[p++] = 0;
        buf[p++] = 0;
        const attrLengthAt = p;
        p += 2;
        buf[p++] = AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH;
        buf[p++] = AttrType.MP_UNREACH_NLRI;
        const mpLengthAt = p;
        p += 2;
        const [afi, safi] = familyCode(family);
        buf.writeUInt16BE(afi, p);
        buf[p + 2] = safi;
        p += 3;
        while (i < routes.length) {
          const route = routes[i]!;
          if (p + nlriSize(route.length) > limit) break;
          p = writeRouteNlri(buf, p, route);
          i++;
        }
        buf.writeUInt16BE(p - mpLengthAt - 2, mpLengthAt);
        buf.writeUInt16BE(p - attrLengthAt - 2, attrLengthAt);
      }
      buf.writeUInt16BE(p - start, start + 16);
      w.pos = p;
      w.messages++;
    }
  }
}

/** One NLRI entry from a prepared route (RFC 4271 4.3): the length, then only the octets it covers. */
function writeRouteNlri(buf: Buffer, offset: number, r: PreparedRoute): number {
  if (r.ipv6) return writeNlri(buf, offset, r.length, r.ipv6);
  buf[offset++] = r.length;
  const a = r.ipv4;
  if (r.length > 0) buf[offset++] = a >>> 24;
  if (r.length > 8) buf[offset++] = (a >>> 16) & 0xff;
  if (r.length > 16) buf[offset++] = (a >>> 8) & 0xff;
  if (r.length > 24) buf[offset++] = a & 0xff;
  return offset;
}
