/** Address forms the L2 announcer uses: canonical text, wire bytes, the map's 16-byte key form. */
import { isIPv4, isIPv6, SocketAddress } from 'node:net';

/** 4 bytes for IPv4, 16 for IPv6. */
export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new RangeError(`not an IP address: ${ip}`);
  // A dotted IPv4 tail becomes two hex groups, then "::" becomes the zero groups it stands for.
  const hex = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) =>
    [((+a << 8) | +b).toString(16), ((+c << 8) | +d).toString(16)].join(':'),
  );
  const [left = '', right] = hex.split('::');
  const head = left ? left.split(':') : [];
  const tail = right ? right.split(':') : [];
  const groups =
    right === undefined
      ? head
      : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
}

/** The map key form: 16 bytes, IPv4 as ::ffff:a.b.c.d. */
export function keyBytes(ip: string): Buffer {
  const bytes = ipBytes(ip);
  return bytes.length === 16
    ? bytes
    : Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), bytes]);
}

/** Back from the key form to text (IPv4 for mapped addresses). */
export function keyToIp(key: Uint8Array): string {
  const b = Buffer.from(key);
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff)
    return [...b.subarray(12)].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return canonicalIp(groups.join(':'));
}

/** One spelling per address, so "2001:DB8::0:1" and "2001:db8::1" are the same IP. */
export function canonicalIp(ip: string): string {
  if (isIPv4(ip)) return ip;
  return new SocketAddress({ address: ip, family: 'ipv6' }).address;
}
