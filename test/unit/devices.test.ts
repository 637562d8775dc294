import { describe, expect, it } from 'vitest';
import {
  defaultRouteDevicesV4,
  defaultRouteDevicesV6,
  detectDefaultRouteDevices,
} from '../../daemon/devices.js';

// /proc/net/route as the kernel prints it: a header, tab-separated fields padded
// with trailing spaces, addresses and masks in host (little-endian) hex.
const ROUTE_HEADER =
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ';

function routeLine(fields: string[]): string {
  return `${fields.join('\t')}                                                                            `;
}

const ROUTE_TABLE = [
  ROUTE_HEADER,
  // default via 192.168.2.1 dev eth0 metric 100
  routeLine(['eth0', '00000000', '0102A8C0', '0003', '0', '0', '100', '00000000', '0', '0', '0']),
  // 192.168.2.0/24 dev eth0
  routeLine(['eth0', '0002A8C0', '00000000', '0001', '0', '0', '100', '00FFFFFF', '0', '0', '0']),
  // 172.17.0.0/16 dev docker0
  routeLine(['docker0', '000011AC', '00000000', '0001', '0', '0', '0', '0000FFFF', '0', '0', '0']),
  // 0.0.0.0/32 dev dummy0: destination zero, but not a default route
  routeLine(['dummy0', '00000000', '00000000', '0005', '0', '0', '0', 'FFFFFFFF', '0', '0', '0']),
  // 0.0.0.0/1 dev tun0 (a VPN split route): not a default route either
  routeLine(['tun0', '00000000', '00000000', '0001', '0', '0', '0', '00000080', '0', '0', '0']),
  // default via 10.0.0.1 dev wlan0 metric 600: a second default
  routeLine(['wlan0', '00000000', '0100000A', '0003', '0', '0', '600', '00000000', '0', '0', '0']),
  '',
].join('\n');

const ZERO = '0'.repeat(32);

function v6Line(dest: string, prefix: string, nexthop: string, metric: string, flags: string, dev: string) {
  return `${dest} ${prefix} ${ZERO} 00 ${nexthop} ${metric} 00000001 00000000 ${flags} ${dev.padStart(8)}`;
}

// /proc/net/ipv6_route: no header; dest, dest prefix, src, src prefix, next hop,
// metric, refcnt, use, flags, device.
const IPV6_ROUTE_TABLE = [
  v6Line('00000000000000000000000000000001', '80', ZERO, '00000000', '00000001', 'lo'),
  v6Line('fe800000000000000000000000000000', '40', ZERO, '00000100', '00000001', 'eth0'),
  v6Line('20010db8000000010000000000000000', '40', ZERO, '00000100', '00000001', 'eth1'),
  // default via fe80::200:ff:fe00:1 dev eth1
  v6Line(ZERO, '00', 'fe80000000000000020000fffe000001', '00000400', '00450003', 'eth1'),
  // ::/1 via wg0: all-zero destination but a /1
  v6Line(ZERO, '01', ZERO, '00000400', '00000001', 'wg0'),
  // the kernel's unreachable default on lo when there is no IPv6 default route
  v6Line(ZERO, '00', ZERO, 'ffffffff', '00200200', 'lo'),
  // a second default, via bond0
  v6Line(ZERO, '00', 'fe800000000000000000000000000002', '00000400', '00450003', 'bond0'),
  '',
].join('\n');

describe('defaultRouteDevicesV4', () => {
  it('returns the device of every 0.0.0.0/0 route, in table order', () => {
    expect(defaultRouteDevicesV4(ROUTE_TABLE)).toEqual(['eth0', 'wlan0']);
  });

  it('returns nothing for a table without a default route', () => {
    const table = [
      ROUTE_HEADER,
      routeLine(['eth0', '0002A8C0', '00000000', '0001', '0', '0', '100', '00FFFFFF', '0', '0', '0']),
    ].join('\n');
    expect(defaultRouteDevicesV4(table)).toEqual([]);
  });

  it('returns nothing for a header only, an empty file or a truncated line', () => {
    expect(defaultRouteDevicesV4(`${ROUTE_HEADER}\n`)).toEqual([]);
    expect(defaultRouteDevicesV4('')).toEqual([]);
    expect(defaultRouteDevicesV4(`${ROUTE_HEADER}\neth0\t00000000\t0102A8C0\t0003\n`)).toEqual([]);
  });

  it('never treats the header as a route', () => {
    // A header whose columns happen to look like a default route.
    const fakeHeader = ['ifx', '00000000', 'x', 'x', 'x', 'x', 'x', '00000000'].join('\t');
    expect(defaultRouteDevicesV4(`${fakeHeader}\n`)).toEqual([]);
  });
});

describe('defaultRouteDevicesV6', () => {
  it('returns the device of every ::/0 route except the unreachable one on lo', () => {
    expect(defaultRouteDevicesV6(IPV6_ROUTE_TABLE)).toEqual(['eth1', 'bond0']);
  });

  it('returns nothing when the only ::/0 is the unreachable route on lo', () => {
    const table = [
      v6Line('fe800000000000000000000000000000', '40', ZERO, '00000100', '00000001', 'eth0'),
      v6Line(ZERO, '00', ZERO, 'ffffffff', '00200200', 'lo'),
    ].join('\n');
    expect(defaultRouteDevicesV6(table)).toEqual([]);
  });

  it('returns nothing for an empty file or truncated lines', () => {
    expect(defaultRouteDevicesV6('')).toEqual([]);
    expect(defaultRouteDevicesV6(`${ZERO} 00 ${ZERO} 00\n`)).toEqual([]);
  });
});

describe('detectDefaultRouteDevices', () => {
  it('returns a sorted list without duplicates from this namespace', () => {
    const devices = detectDefaultRouteDevices();
    expect(devices).toEqual([...new Set(devices)].sort());
    for (const d of devices) expect(d).toMatch(/^[^\s/]{1,15}$/);
  });
});
