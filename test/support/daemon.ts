/** Runs the real, bundled nodewarden daemon inside a lab host, with its own paths. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callDaemon } from '../../daemon/control/client.js';
import type { DaemonStatus } from '../../daemon/daemon.js';
import { controlSocketPath } from '../../daemon/paths.js';
import type { Host, LabProcess } from '../lab/index.js';
import { CLI_BUNDLE } from './paths.js';

export interface DaemonInstance {
  process: LabProcess;
  configPath: string;
  pinDir: string;
  runDir: string;
  status(): Promise<DaemonStatus>;
  /** Re-reads config and policies; resolves when the daemon has applied or rejected them. */
  reload(): Promise<DaemonStatus['lastReload']>;
  /** Runs a CLI command inside the host with this instance's paths. */
  cli(args: string[], allowFailure?: boolean): ReturnType<Host['exec']>;
}

export interface DaemonFiles {
  dir: string;
  configPath: string;
  runDir: string;
  writeConfig(yaml: string): void;
  destroy(): void;
}

export function daemonFiles(configYaml: string): DaemonFiles {
  const dir = mkdtempSync(join(tmpdir(), 'nw-daemon-'));
  const configPath = join(dir, 'config.yaml');
  const writeConfig = (yaml: string) => writeFileSync(configPath, yaml);
  writeConfig(configYaml);
  return {
    dir,
    configPath,
    runDir: join(dir, 'run'),
    writeConfig,
    destroy: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function startDaemon(
  host: Host,
  files: DaemonFiles,
  pinDir: string,
  env?: Record<string, string>,
): Promise<DaemonInstance> {
  const paths = ['--config', files.configPath, '--pin-dir', pinDir, '--run-dir', files.runDir];
  const proc = host.spawn(['node', CLI_BUNDLE, 'daemon', ...paths], env ? { env } : undefined);
  // Emulated guests (bench/dsr-ipvs.ts under TCG) start it far slower than 15 s.
  await proc.waitForOutput(/nodewarden started/, Number(process.env.NODEWARDEN_DAEMON_START_MS ?? 15_000));
  const socket = controlSocketPath(files.runDir);
  return {
    process: proc,
    configPath: files.configPath,
    pinDir,
    runDir: files.runDir,
    status: async () => (await callDaemon(socket, 'status')) as DaemonStatus,
    reload: async () => (await callDaemon(socket, 'reload')) as DaemonStatus['lastReload'],
    cli: (args, allowFailure = false) => host.exec(['node', CLI_BUNDLE, ...args, ...paths], { allowFailure }),
  };
}
