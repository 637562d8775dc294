import { describe, expect, it } from 'vitest';
import {
  formatBgpPeers,
  formatBgpStatus,
  formatDuration,
  formatReceivedRoutes,
} from '../../daemon/bgp/format.js';
import type { BgpPeerRow } from '../../daemon/bgp/manager.js';

const established: BgpPeerRow = {
  name: 'tor-a',
  address: '10.0.0.1',
  asn: 64512,
  state: 'Established',
  establishedAt: '2026-01-01T00:00:00.000Z',
  uptimeSeconds: 3723,
  prefixesSent: 2,
  prefixesReceived: 1,
  messagesSent: 70,
  messagesReceived: 68,
  md5: true,
  negotiated: {
    holdTime: 9,
    keepaliveTime: 3,
    families: ['ipv4-unicast', 'ipv6-unicast'],
    fourOctetAs: true,
    gracefulRestart: true,
    routeRefresh: true,
  },
};

const down: BgpPeerRow = {
  name: 'tor-b',
  address: '2001:db8::1',
  asn: 64512,
  state: 'Active',
  prefixesSent: 0,
  prefixesReceived: 0,
  messagesSent: 3,
  messagesReceived: 2,
  md5: false,
  lastError: {
    direction: 'received',
    code: 6,
    subcode: 2,
    name: 'Cease/Administrative Shutdown',
    message: 'maintenance',
    at: '2026-01-01T00:01:00.000Z',
  },
};

describe('bgp text output', () => {
  it('formats durations in at most three units', () => {
    expect([0, 59, 61, 3723, 90061].map(formatDuration)).toEqual(['0s', '59s', '1m1s', '1h2m3s', '1d1h1m']);
  });

  it('tabulates peers, then their last NOTIFICATION with code and message, then what was negotiated', () => {
    expect(formatBgpPeers([established, down]).split('\n')).toEqual([
      'PEER   ADDRESS      ASN    STATE        UPTIME  SENT  RECEIVED  MSGS OUT/IN',
      'tor-a  10.0.0.1     64512  Established  1h2m3s  2     1         70/68',
      'tor-b  2001:db8::1  64512  Active       -       0     0         3/2',
      'tor-a: hold 9s, keepalive 3s, ipv4-unicast ipv6-unicast; 4-octet AS, route refresh, graceful restart',
      'tor-b: last error: received NOTIFICATION 6/2 Cease/Administrative Shutdown: maintenance (at 2026-01-01T00:01:00.000Z)',
    ]);
    expect(formatBgpPeers([])).toBe('no BGP peers configured');
  });

  it('adds a bgp block to status', () => {
    const lines = formatBgpStatus({
      asn: 64513,
      routerId: '10.0.0.21',
      restarting: true,
      routes: 3,
      listen: { address: '::', port: 179 },
      peers: [established, down],
    });
    expect(lines).toEqual([
      'bgp:      AS 64513, router ID 10.0.0.21 (started as a restarting speaker); 3 routes; 1/2 peers established',
      '  listening on [::]:179',
      '  tor-a (10.0.0.1, AS 64512): Established for 1h2m3s, 2 sent, 1 received',
      '  tor-b (2001:db8::1, AS 64512): Active, 0 sent, 0 received; last error: received NOTIFICATION 6/2 Cease/Administrative Shutdown: maintenance (at 2026-01-01T00:01:00.000Z)',
    ]);
  });

  it('lists received routes', () => {
    expect(
      formatReceivedRoutes([{ prefix: '192.0.2.0/24', nextHop: '10.0.0.1', asPath: [64512, 65000] }]),
    ).toBe('192.0.2.0/24         via 10.0.0.1  AS path 64512 65000');
    expect(formatReceivedRoutes([])).toBe('no routes received from this peer');
  });
});
