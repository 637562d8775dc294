/** Gratuitous ARP and unsolicited NA frames, checked field by field against the RFCs. */
import { describe, expect, it } from 'vitest';
import { canonicalIp, keyBytes, keyToIp } from '../../announcers/l2/addresses.js';
import { announcementFrames, gratuitousArp, unsolicitedAdvertisement } from '../../announcers/l2/frames.js';
import { internetChecksum } from '../support/packets.js';

const MAC = '02:aa:bb:cc:dd:01';
const macBuf = Buffer.from([2, 0xaa, 0xbb, 0xcc, 0xdd, 1]);

describe('gratuitous ARP', () => {
  it.each([1, 2] as const)('op %i: broadcast, sender = target = the IP, our MAC as sender', (op) => {
    const f = gratuitousArp(MAC, '192.0.2.10', op);
    expect(f.length).toBe(60);
    expect(f.subarray(0, 6)).toEqual(Buffer.alloc(6, 0xff));
    expect(f.subarray(6, 12)).toEqual(macBuf);
    expect(f.readUInt16BE(12)).toBe(0x0806);
    expect(f.readUInt16BE(14)).toBe(1);
    expect(f.readUInt16BE(16)).toBe(0x0800);
    expect([f[18], f[19]]).toEqual([6, 4]);
    expect(f.readUInt16BE(20)).toBe(op);
    expect(f.subarray(22, 28)).toEqual(macBuf);
    expect([...f.subarray(28, 32)]).toEqual([192, 0, 2, 10]);
    expect(f.subarray(32, 38)).toEqual(op === 1 ? Buffer.alloc(6) : Buffer.alloc(6, 0xff));
    expect([...f.subarray(38, 42)]).toEqual([192, 0, 2, 10]);
  });
});

describe('unsolicited NA', () => {
  it('goes to ff02::1 with Override set, Solicited clear, TLLA and a valid checksum', () => {
    const f = unsolicitedAdvertisement(MAC, '2001:db8::10');
    expect(f.length).toBe(86);
    expect([...f.subarray(0, 6)]).toEqual([0x33, 0x33, 0, 0, 0, 1]);
    expect(f.readUInt16BE(12)).toBe(0x86dd);
    expect(f[20]).toBe(58);
    expect(f[21]).toBe(255);
    expect(f.subarray(22, 38)).toEqual(keyBytes('2001:db8::10'));
    expect(f.subarray(38, 54).toString('hex')).toBe('ff020000000000000000000000000001');
    const icmp = f.subarray(54);
    expect(icmp[0]).toBe(136);
    expect(icmp[4]).toBe(0x20);
    expect(icmp.subarray(8, 24)).toEqual(keyBytes('2001:db8::10'));
    expect([icmp[24], icmp[25]]).toEqual([2, 1]);
    expect(icmp.subarray(26, 32)).toEqual(macBuf);
    const pseudo = Buffer.alloc(40);
    f.copy(pseudo, 0, 22, 54);
    pseudo.writeUInt32BE(32, 32);
    pseudo.writeUInt32BE(58, 36);
    expect(internetChecksum(Buffer.concat([pseudo, icmp]))).toBe(0);
  });

  it('sends both ARP forms for IPv4 and one NA for IPv6', () => {
    expect(announcementFrames(MAC, '192.0.2.10')).toHaveLength(2);
    expect(announcementFrames(MAC, '2001:db8::10')).toHaveLength(1);
  });
});

describe('addresses', () => {
  it('round-trips the map key form', () => {
    for (const ip of ['192.0.2.10', '2001:db8::10', 'fe80::1', '::1'])
      expect(keyToIp(keyBytes(ip))).toBe(canonicalIp(ip));
    expect(keyBytes('192.0.2.10').toString('hex')).toBe('00000000000000000000ffffc000020a');
  });
  it('refuses a malformed MAC', () => {
    expect(() => gratuitousArp('02:aa', '192.0.2.10', 1)).toThrow(/not a MAC/);
  });
});
