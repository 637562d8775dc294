/**
 * What the .deb and .rpm contain and declare, read back with the distributions'
 * own tools (dpkg-deb, rpm), their checkers (lintian, rpmlint), and the unit's
 * hardening as systemd scores it.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../lab/index.js';
import { type BuiltPackages, buildPackages } from '../package/build.js';
import { REPO_ROOT } from '../support/paths.js';

let pkgs: BuiltPackages;

beforeAll(async () => {
  pkgs = await buildPackages();
}, 300_000);

const bpfObjects = () => readdirSync(join(REPO_ROOT, 'bpf/out')).filter((f) => f.endsWith('.o'));
const examples = () => readdirSync(join(REPO_ROOT, 'host-policies/examples'));
const manifests = () =>
  readdirSync(join(REPO_ROOT, 'manifests'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.yaml'),
  );

/** Files both packages ship, with their modes; the unit's directory differs (see each block). */
function expectedFiles(unitDir: string): Record<string, string> {
  return {
    '/usr/bin/nodewarden': '-rwxr-xr-x',
    '/usr/lib/nodewarden/koffi.node': '-rw-r--r--',
    ...Object.fromEntries(bpfObjects().map((o) => [`/usr/lib/nodewarden/bpf/${o}`, '-rw-r--r--'])),
    ...Object.fromEntries(
      examples().map((e) => [`/usr/lib/nodewarden/examples/policies/${e}`, '-rw-r--r--']),
    ),
    ...Object.fromEntries(manifests().map((m) => [`/usr/lib/nodewarden/manifests/${m}`, '-rw-r--r--'])),
    '/etc/nodewarden/config.yaml': '-rw-r--r--',
    '/etc/nodewarden/policies.d': 'drwxr-x---',
    [`${unitDir}/nodewarden.service`]: '-rw-r--r--',
    '/usr/lib/tmpfiles.d/nodewarden.conf': '-rw-r--r--',
    '/usr/share/man/man8/nodewarden.8.gz': '-rw-r--r--',
    '/usr/share/doc/nodewarden/operations.md': '-rw-r--r--',
  };
}

describe('.deb', () => {
  it('declares its version, architecture, dependencies with versions, and the conffile', async () => {
    const info = (await run(['dpkg-deb', '-I', pkgs.deb])).stdout;
    const field = (name: string) => info.match(new RegExp(`^ ${name}: (.*)$`, 'm'))?.[1];
    expect(field('Package')).toBe('nodewarden');
    expect(field('Version')).toBe(pkgs.version);
    expect(field('Architecture')).toBe('amd64');
    const depends = field('Depends')!.split(', ');
    expect(depends).toContain('libbpf1 (>= 1:1.1)');
    // Only system libraries, each with a version; never the distribution's Node.js.
    for (const dep of depends) expect(dep).toMatch(/^(libbpf1|libc6|libgcc-s1|libstdc\+\+6) \(>= [^)]+\)$/);
    const control = await run([
      'sh',
      '-c',
      `dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles`,
      'sh',
      pkgs.deb,
    ]);
    expect(control.stdout.trim().split('\n')).toEqual(['/etc/nodewarden/config.yaml']);
    for (const script of ['postinst', 'prerm', 'postrm'])
      expect(info).toMatch(new RegExp(`\\* +${script} +#!/bin/sh`));
  });

  it('ships the layout with root ownership and the intended modes', async () => {
    const listing = (await run(['dpkg-deb', '-c', pkgs.deb])).stdout.trim().split('\n');
    const entries = new Map(
      listing.map((line) => {
        const [mode, owner, , , , path] = line.split(/\s+/);
        return [path!.replace(/^\./, '').replace(/\/$/, ''), { mode: mode!, owner: owner! }];
      }),
    );
    for (const [path, mode] of Object.entries(expectedFiles('/lib/systemd/system'))) {
      expect(entries.get(path)?.mode, path).toBe(mode);
    }
    expect([...entries.values()].every((e) => e.owner === 'root/root')).toBe(true);
    // Nothing outside the package's own places.
    const allowed =
      /^(|\/etc|\/lib|\/lib\/systemd|\/usr|\/usr\/bin|\/usr\/lib|\/usr\/share|\/usr\/share\/man|\/usr\/share\/doc|\/usr\/share\/lintian.*|\/usr\/lib\/tmpfiles\.d.*|\/usr\/share\/man\/man8.*|\/lib\/systemd\/system.*|\/etc\/nodewarden.*|\/usr\/lib\/nodewarden.*|\/usr\/bin\/nodewarden|\/usr\/share\/doc\/nodewarden.*)$/;
    expect([...entries.keys()].filter((p) => !allowed.test(p))).toEqual([]);
  });

  it('passes lintian: no errors or warnings (overrides carry their reasons)', async () => {
    const { stdout } = await run(['lintian', '--fail-on', 'none', pkgs.deb], { timeoutMs: 240_000 });
    expect(stdout.split('\n').filter((l) => /^[EW]: /.test(l))).toEqual([]);
  }, 300_000);
});

describe('.rpm', () => {
  it('declares its version, architecture, dependencies and the config file', async () => {
    const info = (await run(['rpm', '-qpi', pkgs.rpm])).stdout;
    expect(info).toMatch(/^Name\s+: nodewarden$/m);
    expect(info).toMatch(new RegExp(`^Version\\s+: ${pkgs.version.replaceAll('+', '\\+')}$`, 'm'));
    expect(info).toMatch(/^Architecture: x86_64$/m);
    const requires = (await run(['rpm', '-qpR', pkgs.rpm])).stdout.split('\n');
    expect(requires).toContain('libbpf >= 1.1');
    expect(requires.filter((r) => /^nodejs|^node\b|\/usr\/bin\/node\b/.test(r))).toEqual([]);
    expect((await run(['rpm', '-qpc', pkgs.rpm])).stdout.trim()).toBe('/etc/nodewarden/config.yaml');
  });

  it('ships the layout with root ownership and the intended modes', async () => {
    const listing = (await run(['rpm', '-qplv', pkgs.rpm])).stdout.trim().split('\n');
    const entries = new Map(
      listing.map((line) => {
        const fields = line.split(/\s+/);
        return [fields.at(-1)!, { mode: fields[0]!, owner: `${fields[2]}/${fields[3]}` }];
      }),
    );
    for (const [path, mode] of Object.entries(expectedFiles('/usr/lib/systemd/system'))) {
      expect(entries.get(path)?.mode, path).toBe(mode);
    }
    expect([...entries.values()].every((e) => e.owner === 'root/root')).toBe(true);
  });

  it('passes rpmlint: no errors or warnings (filters carry their reasons)', async () => {
    const { stdout } = await run(['rpmlint', '-r', join(REPO_ROOT, 'packaging/rpm/rpmlintrc'), pkgs.rpm], {
      allowFailure: true,
      timeoutMs: 120_000,
    });
    expect(stdout).toMatch(/0 errors, 0 warnings/);
  }, 180_000);
});

it('the unit is hardened to an exposure of 4.0 or lower (systemd-analyze security)', async () => {
  const { stdout } = await run([
    'systemd-analyze',
    'security',
    '--offline=yes',
    join(REPO_ROOT, 'systemd/nodewarden.service'),
  ]);
  const score = Number(stdout.match(/Overall exposure level for nodewarden\.service: ([\d.]+)/)?.[1]);
  expect(score).toBeLessThanOrEqual(4.0);
});
