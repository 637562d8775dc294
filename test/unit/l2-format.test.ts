/** The text of `nodewarden l2 status`. */
import { describe, expect, it } from 'vitest';
import { formatL2Status } from '../../daemon/l2/format.js';
import type { L2Status } from '../../daemon/l2/manager.js';

const status: L2Status = {
  ips: [
    {
      ip: '192.0.2.10',
      owner: 'node-a',
      state: 'announced',
      interfaces: [
        {
          name: 'eth0',
          ifindex: 2,
          mac: '02:00:00:00:00:02',
          replies: 4,
          lastReplyAt: '2026-11-22T02:20:02.530Z',
          lastAnnouncedAt: '2026-11-22T02:19:40.101Z',
        },
      ],
      localRoute: true,
    },
    {
      ip: '192.0.2.11',
      owner: null,
      state: 'not-owned',
      reason: 'another node owns it',
      interfaces: [],
      localRoute: false,
    },
  ],
  interfaces: [
    { name: 'eth0', announcing: true },
    { name: 'eth1', announcing: false, skipped: 'down' },
  ],
  localRoutes: ['192.0.2.10'],
  warnings: ['kube-proxy IPVS mode without strictARP: …'],
  errors: [
    {
      at: '2026-11-22T02:21:00.000Z',
      what: 'local route 192.0.2.12',
      error: 'add local route: RTNETLINK answers: Permission denied',
    },
  ],
  settings: { gratuitousCount: 3, gratuitousIntervalMs: 200, reannounceIntervalMs: 0, localRoutes: true },
};

describe('formatL2Status', () => {
  it('shows each IP with owner, interfaces, replies and announcement time, then skips, warnings and errors', () => {
    expect(formatL2Status(status)).toEqual([
      '192.0.2.10           announced        owner node-a, local route',
      '  eth0         02:00:00:00:00:02  4 replies (last 2026-11-22T02:20:02.530Z); last announced 2026-11-22T02:19:40.101Z',
      '192.0.2.11           not-owned        owner another node  (another node owns it)',
      'interface eth1 skipped: down',
      'WARNING: kube-proxy IPVS mode without strictARP: …',
      'error at 2026-11-22T02:21:00.000Z: local route 192.0.2.12: add local route: RTNETLINK answers: Permission denied',
    ]);
  });

  it('says when nothing is configured, and marks adopted entries', () => {
    expect(formatL2Status({ ...status, ips: [], interfaces: [], warnings: [], errors: [] })).toEqual([
      'no L2 announcements configured',
    ]);
    const adopted = structuredClone(status);
    delete adopted.ips[0]!.interfaces[0]!.lastAnnouncedAt;
    expect(formatL2Status(adopted)[1]).toContain('last announced before this daemon started');
  });
});
