/**
 * A minimal MRT TABLE_DUMP_V2 writer (RFC 6396): one peer, IPv4 unicast RIB
 * entries with ORIGIN, AS_PATH and NEXT_HOP. It lets the benchmark load a large
 * table into gobgpd in one `gobgp mrt inject global` call instead of one CLI
 * call per route.
 */
const TABLE_DUMP_V2 = 13;
const PEER_INDEX_TABLE = 1;
const RIB_IPV4_UNICAST = 2;
const PEER_TYPE_AS4 = 0x02;

function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function record(subtype: number, body: Buffer, timestamp: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt32BE(timestamp, 0);
  header.writeUInt16BE(TABLE_DUMP_V2, 4);
  header.writeUInt16BE(subtype, 6);
  header.writeUInt32BE(body.length, 8);
  return Buffer.concat([header, body]);
}

function attribute(type: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x40, type, value.length]), value]);
}

export interface MrtTable {
  peer: { routerId: string; address: string; asn: number };
  /** IPv4 prefixes "a.b.c.d/len". */
  prefixes: readonly string[];
  nextHop: string;
  asPath: readonly number[];
}

export function mrtTableDump(table: MrtTable): Buffer {
  const now = Math.floor(Date.now() / 1000);
  const peerIndex = Buffer.alloc(4 + 2 + 2 + 1 + 4 + 4 + 4);
  ipv4(table.peer.routerId).copy(peerIndex, 0);
  peerIndex.writeUInt16BE(0, 4); // no view name
  peerIndex.writeUInt16BE(1, 6);
  peerIndex.writeUInt8(PEER_TYPE_AS4, 8);
  ipv4(table.peer.routerId).copy(peerIndex, 9);
  ipv4(table.peer.address).copy(peerIndex, 13);
  peerIndex.writeUInt32BE(table.peer.asn, 17);

  const asPath = Buffer.alloc(table.asPath.length ? 2 + 4 * table.asPath.length : 0);
  if (table.asPath.length) {
    asPath.writeUInt8(2, 0); // AS_SEQUENCE
    asPath.writeUInt8(table.asPath.length, 1);
    table.asPath.forEach((asn, i) => {
      asPath.writeUInt32BE(asn, 2 + 4 * i);
    });
  }
  const attributes = Buffer.concat([
    attribute(1, Buffer.from([0])), // ORIGIN IGP
    attribute(2, asPath),
    attribute(3, ipv4(table.nextHop)),
  ]);
  const records = [record(PEER_INDEX_TABLE, peerIndex, now)];
  table.prefixes.forEach((prefix, seq) => {
    const [address = '', lengthText = '32'] = prefix.split('/');
    const length = Number(lengthText);
    const bytes = ipv4(address).subarray(0, Math.ceil(length / 8));
    const entry = Buffer.alloc(2 + 4 + 2);
    entry.writeUInt16BE(0, 0);
    entry.writeUInt32BE(now, 2);
    entry.writeUInt16BE(attributes.length, 6);
    const head = Buffer.alloc(4 + 1);
    head.writeUInt32BE(seq, 0);
    head.writeUInt8(length, 4);
    const count = Buffer.alloc(2);
    count.writeUInt16BE(1);
    records.push(record(RIB_IPV4_UNICAST, Buffer.concat([head, bytes, count, entry, attributes]), now));
  });
  return Buffer.concat(records);
}
