/** The l2 section of config.yaml: defaults, a full example, and errors that name file, line and field. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../daemon/config/load.js';
import { l2Announcements, l2Settings, standaloneOwnership } from '../../daemon/l2/manager.js';

const dir = mkdtempSync(join(tmpdir(), 'nw-l2-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(yaml: string) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return { file, load: () => loadConfig(file) };
}

describe('l2 config', () => {
  it('maps announcements onto the planner model, with the default interfaces filled in', () => {
    const config = load(
      [
        'l2:',
        "  interfaces: ['^eth0$']",
        '  announcements:',
        '    - ips: [192.0.2.10, 2001:DB8::10]',
        '    - ips: [192.0.2.11]',
        "      interfaces: ['^bond0$']",
        '  gratuitous: { count: 5, intervalMs: 50 }',
        '  reannounceSeconds: 30',
        '  localRoutes: false',
      ].join('\n'),
    ).load().l2;
    expect(l2Announcements(config)).toEqual([
      { ips: ['192.0.2.10', '2001:DB8::10'], interfaces: ['^eth0$'] },
      { ips: ['192.0.2.11'], interfaces: ['^bond0$'] },
    ]);
    expect(l2Settings(config)).toEqual({
      gratuitousCount: 5,
      gratuitousIntervalMs: 50,
      reannounceIntervalMs: 30_000,
    });
    expect([...standaloneOwnership(config)]).toEqual(['192.0.2.10', '2001:db8::10', '192.0.2.11']);
    expect(config.localRoutes).toBe(false);
  });

  it.each([
    '224.0.0.5',
    '127.0.0.1',
    '0.0.0.0',
    '255.255.255.255',
    'ff02::1',
    '::1',
    '::',
    '::ffff:192.0.2.1',
  ])('refuses %s, which no LAN host can own', (ip) => {
    const { file, load: run } = load(`l2:\n  announcements:\n    - ips: ['${ip}']\n`);
    expect(run).toThrow(`${file}:3: l2.announcements[0].ips[0]: must be a unicast address`);
  });

  it('names the file, line and field of every error', () => {
    const { file, load: run } = load(
      [
        'l2:',
        '  announcements:',
        '    - ips: [192.0.2.10, not-an-ip]',
        "      interfaces: ['eth(']",
        '  gratuitous: { count: 0 }',
        '  bogus: 1',
      ].join('\n'),
    );
    expect(run).toThrow(`${file}:3: l2.announcements[0].ips[1]: must be an IPv4 or IPv6 address`);
    expect(run).toThrow(`${file}:4: l2.announcements[0].interfaces[0]: must be a valid regular expression`);
    expect(run).toThrow(`${file}:5: l2.gratuitous.count`);
    expect(run).toThrow(`${file}:6: l2.bogus: unknown field`);
  });
});
