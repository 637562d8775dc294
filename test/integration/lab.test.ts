import { afterAll, describe, expect, it } from 'vitest';
import {
  CommandError,
  createLab,
  isPidAlive,
  labNetnsName,
  listLabNamespaces,
  run,
  sweepStaleLabs,
  withLab,
} from '../lab/index.js';

function ownNamespaces(names: string[]): string[] {
  return names.filter((n) => n.startsWith(`nwl-${process.pid}-`));
}

afterAll(async () => {
  expect(ownNamespaces(await listLabNamespaces())).toEqual([]);
});

describe('test lab', () => {
  it('links two hosts with IPv4 and IPv6 and pings both ways', async () => {
    await withLab(async (lab) => {
      const a = await lab.host('a');
      const b = await lab.host('b');
      const link = await lab.link(a, b, {
        aAddrs: ['10.0.0.1/24', 'fd00::1/64'],
        bAddrs: ['10.0.0.2/24', 'fd00::2/64'],
        mtu: 1400,
      });
      expect(link.a.dev).toBe('eth0');
      expect(link.b.dev).toBe('eth0');
      expect(link.a.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(link.a.mac).not.toBe(link.b.mac);
      expect(await a.ifindex('eth0')).toBeGreaterThan(1);

      for (const [host, dst] of [
        [a, '10.0.0.2'],
        [a, 'fd00::2'],
        [b, '10.0.0.1'],
        [b, 'fd00::1'],
      ] as const) {
        await host.exec(['ping', '-c1', '-W1', dst]);
      }
      const { stdout } = await a.exec(['ip', 'link', 'show', 'eth0']);
      expect(stdout).toContain('mtu 1400');
    });
  });

  it('routes between two segments through a router host', async () => {
    await withLab(async (lab) => {
      const [a, r, b] = [await lab.host('a'), await lab.host('router'), await lab.host('b')];
      await lab.link(a, r, { aAddrs: ['10.1.0.2/24'], bAddrs: ['10.1.0.1/24'] });
      await lab.link(r, b, { aAddrs: ['10.2.0.1/24'], bAddrs: ['10.2.0.2/24'] });
      expect(r.name).toBe('router');
      await r.sysctl('net.ipv4.ip_forward', 1);
      await a.addRoute('default', '10.1.0.1');
      await b.addRoute('10.1.0.0/24', '10.2.0.1', 'eth0');
      await a.exec(['ping', '-c1', '-W1', '10.2.0.2']);
      await expect(r.sysctl('kernel.hostname', 'x')).rejects.toThrow(/only net\.\* keys/);
    });
  });

  it('connects three hosts on a bridge', async () => {
    await withLab(async (lab) => {
      const lan = await lab.bridge('lan');
      const hosts = [await lab.host('a'), await lab.host('b'), await lab.host('c')];
      const ports = [];
      for (const [i, host] of hosts.entries()) {
        ports.push(await lan.attach(host, { addrs: [`192.168.7.${i + 1}/24`, `fd07::${i + 1}/64`] }));
      }
      expect(ports.map((p) => p.port)).toEqual(['p1-a', 'p2-b', 'p3-c']);
      await hosts[0]!.exec(['ping', '-c1', '-W1', '192.168.7.3']);
      await hosts[0]!.exec(['ping', '-c1', '-W1', 'fd07::3']);
      // The switch learned host c's MAC on c's port.
      const { stdout } = await lan.switchHost.exec(['bridge', 'fdb', 'show', 'br', lan.dev]);
      expect(stdout).toContain(`${ports[2]!.mac} dev p3-c`);
    });
  });

  it('runs a background server, and kills background processes on destroy', async () => {
    let pids: number[] = [];
    let orphan = 0;
    await withLab(async (lab) => {
      const server = await lab.host('server');
      const client = await lab.host('client');
      await lab.link(server, client, { aAddrs: ['10.9.0.1/24'], bAddrs: ['10.9.0.2/24'] });

      const listen =
        "require('node:net').createServer((s) => s.end('hello from ' + process.pid))" +
        ".listen(8080, '10.9.0.1', () => console.log('listening'))";
      const srv = server.spawn([process.execPath, '-e', listen]);
      await srv.waitForOutput(/listening/, 10_000);
      const connect =
        "const s = require('node:net').connect(8080, '10.9.0.1'); s.pipe(process.stdout);" +
        "s.on('error', (e) => { console.error(e.message); process.exit(1); })";
      const { stdout } = await client.exec([process.execPath, '-e', connect]);
      expect(stdout).toBe(`hello from ${srv.pid}`);

      const sleeper = client.spawn(['sleep', '60']);
      // Not tracked by the lab at all: only the namespace sweep can find it.
      const detached = await client.exec(['sh', '-c', 'sleep 61 >/dev/null 2>&1 & echo $!']);
      pids = [srv.pid, sleeper.pid];
      orphan = Number(detached.stdout.trim());
      for (const pid of [...pids, orphan]) expect(isPidAlive(pid)).toBe(true);
    });
    // Our own children are reaped by the time destroy resolves, so their pids are gone entirely.
    for (const pid of pids)
      expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    // The orphan belongs to init, which may not have reaped it yet: dead is all we can ask.
    expect(isPidAlive(orphan)).toBe(false);
  });

  it('reports failing commands with the command line, exit code and stderr', async () => {
    await withLab(async (lab) => {
      const h = await lab.host('h');
      const err = await h.exec(['sh', '-c', 'echo boom >&2; exit 3']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CommandError);
      expect((err as CommandError).code).toBe(3);
      expect((err as CommandError).message).toMatch(/exit code 3.*sh -c 'echo boom >&2; exit 3'\nboom/s);
      expect(await h.exec(['false'], { allowFailure: true })).toMatchObject({ code: 1 });

      const quitter = h.spawn(['sh', '-c', 'echo bye; exit 2']);
      await expect(quitter.waitForOutput(/never/, 5_000)).rejects.toThrow(/exited \(exit code 2\).*bye/s);
      await expect(lab.link(h, h, { aDev: 'much-too-long-name' })).rejects.toThrow(/invalid interface name/);
    });
  });

  it('tears down and rethrows when the callback throws', async () => {
    const boom = new Error('boom');
    let names: readonly string[] = [];
    let pid = 0;
    await expect(
      withLab(async (lab) => {
        const a = await lab.host('a');
        const b = await lab.host('b');
        await lab.link(a, b);
        await lab.bridge('seg');
        pid = a.spawn(['sleep', '60']).pid;
        names = lab.namespaces;
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(names).toHaveLength(3);
    const left = await listLabNamespaces();
    expect(names.filter((n) => left.includes(n))).toEqual([]);
    expect(isPidAlive(pid)).toBe(false);
  });

  it('destroy is idempotent and a destroyed lab refuses new hosts', async () => {
    const lab = await createLab();
    await lab.host('x');
    await Promise.all([lab.destroy(), lab.destroy()]);
    await lab.destroy();
    await expect(lab.host('y')).rejects.toThrow(/destroyed/);
    const left = await listLabNamespaces();
    expect(lab.namespaces.filter((n) => left.includes(n))).toEqual([]);
  });

  it('sweeps namespaces of dead pids and never those of live ones', async () => {
    // A pid that has just exited and been reaped is dead (reuse within this test is implausible).
    const done = await run(['sh', '-c', 'echo $$']);
    const deadPid = Number(done.stdout.trim());
    expect(isPidAlive(deadPid)).toBe(false);
    const stale = labNetnsName(deadPid, 1, 'stale');
    const live = labNetnsName(process.pid, 999_999, 'live');
    try {
      await run(['ip', 'netns', 'add', stale]);
      await run(['ip', 'netns', 'add', live]);
      // Something still running in the stale namespace must not keep it alive.
      const straggler = await run([
        'ip',
        'netns',
        'exec',
        stale,
        'sh',
        '-c',
        'sleep 62 >/dev/null 2>&1 & echo $!',
      ]);
      const stragglerPid = Number(straggler.stdout.trim());
      expect(isPidAlive(stragglerPid)).toBe(true);

      const swept = await sweepStaleLabs();
      expect(swept).toContain(stale);
      expect(swept).not.toContain(live);
      const left = await listLabNamespaces();
      expect(left).not.toContain(stale);
      expect(left).toContain(live);
      expect(isPidAlive(stragglerPid)).toBe(false);
    } finally {
      for (const ns of [stale, live]) await run(['ip', 'netns', 'del', ns], { allowFailure: true });
    }
  });
});
