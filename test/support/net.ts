/** Small, real network probes run inside lab hosts. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host, LabProcess } from '../lab/index.js';

/** Connects to ip:port from `host`; resolves the first bytes the server sent, or undefined when it cannot connect. */
export async function tcpBanner(
  host: Host,
  ip: string,
  port: number,
  timeoutSec = 1,
): Promise<string | undefined> {
  const script = `exec 3<>/dev/tcp/${ip}/${port} || exit 3; head -c 32 <&3`;
  const result = await host.exec(['timeout', String(timeoutSec), 'bash', '-c', script], {
    allowFailure: true,
  });
  return result.code === 0 ? result.stdout : undefined;
}

/** True when a TCP connection to ip:port completes within the timeout. */
export async function tcpConnects(host: Host, ip: string, port: number, timeoutSec = 1): Promise<boolean> {
  const result = await host.exec(
    ['timeout', String(timeoutSec), 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`],
    { allowFailure: true },
  );
  return result.code === 0;
}

export async function pings(host: Host, ip: string): Promise<boolean> {
  const result = await host.exec(['ping', '-c', '1', '-W', '1', ip], { allowFailure: true });
  return result.code === 0;
}

/** A TCP server on every address of `host` that greets each connection and then echoes. */
export async function startTcpServer(
  host: Host,
  port: number,
  greeting = `hello from ${port}\n`,
): Promise<LabProcess> {
  const code = `require('net').createServer((s) => { s.write(${JSON.stringify(greeting)}); s.pipe(s); s.on('error', () => {}); }).listen(${port}, '::', () => console.log('listening'));`;
  const proc = host.spawn(['node', '-e', code]);
  await proc.waitForOutput(/listening/);
  return proc;
}

export interface Sshd {
  process: LabProcess;
  destroy(): void;
}

/** Debian's real sshd on port 22, with a throwaway host key. */
export async function startSshd(host: Host): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'nw-sshd-'));
  const key = join(dir, 'host_ed25519');
  await host.exec(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      'Port 22',
      'ListenAddress 0.0.0.0',
      'ListenAddress ::',
      `HostKey ${key}`,
      `PidFile ${dir}/sshd.pid`,
      'UsePAM no',
      '',
    ].join('\n'),
  );
  // sshd insists on its privilege-separation directory.
  await host.exec(['mkdir', '-p', '-m', '0755', '/run/sshd']);
  const proc = host.spawn(['/usr/sbin/sshd', '-D', '-e', '-f', config]);
  await proc.waitForOutput(/Server listening on/);
  return { process: proc, destroy: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Long-lived TCP flows from `host` to ip:port: each sends a line every
 * interval and expects the echo. Prints one JSON line with the totals when it
 * gets SIGTERM or its duration ends.
 */
export function startFlows(
  host: Host,
  ip: string,
  port: number,
  flows: number,
  durationMs: number,
): LabProcess {
  const code = `
const net = require('net');
let ok = 0, failed = 0, errors = [], open = 0;
for (let i = 0; i < ${flows}; i++) {
  const s = net.connect(${port}, ${JSON.stringify(ip)});
  let pending = 0, greeted = false;
  s.setNoDelay(true);
  s.on('connect', () => { open++; if (open === ${flows}) console.log('all connected'); });
  s.on('data', (d) => { if (!greeted) { greeted = true; return; } ok += d.toString().split('ping').length - 1; pending = 0; });
  s.on('error', (e) => { failed++; errors.push(e.code); });
  const t = setInterval(() => { if (pending > 20) { failed++; errors.push('stalled'); clearInterval(t); s.destroy(); return; } pending++; s.write('ping'); }, 100);
  s.on('close', () => clearInterval(t));
}
const finish = () => { console.log(JSON.stringify({ ok, failed, errors: [...new Set(errors)] })); process.exit(0); };
setTimeout(finish, ${durationMs});
process.on('SIGTERM', finish);
`;
  return host.spawn(['node', '-e', code]);
}
