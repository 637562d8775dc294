/** The nodewarden commands. Each returns an exit code; main.ts maps errors to codes. */
import { readdirSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { callDaemon } from '../control/client.js';
import { Daemon, type DaemonStatus } from '../daemon.js';
import { cleanupDatapath } from '../datapath/actuator.js';
import { createLogger } from '../log.js';
import { controlSocketPath } from '../paths.js';
import { VERSION } from '../version.js';
import { COMMON_HELP, type CommonFlags, EXIT_OK } from './args.js';

export interface Command {
  summary: string;
  usage: string;
  run(flags: CommonFlags, positionals: string[]): Promise<number>;
}

function print(flags: CommonFlags, value: unknown, text: () => string): void {
  process.stdout.write(flags.output === 'json' ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

async function runDaemon(flags: CommonFlags): Promise<number> {
  const config = loadConfig(flags.config);
  const log = createLogger(config.log.level);
  const daemon = new Daemon({ configPath: flags.config, pinDir: flags.pinDir, runDir: flags.runDir, log });
  await daemon.start(config);
  return await new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      void daemon.stop().then(() => resolve(EXIT_OK));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => daemon.reload());
  });
}

export function formatStatus(s: DaemonStatus): string {
  const lines = [
    `nodewarden ${s.version} on ${s.nodeName} (pid ${s.pid}, since ${s.startedAt})`,
    `config:   ${s.configFile}${s.lastReload.ok ? '' : `  (last reload rejected: ${s.lastReload.error})`}`,
    `pin dir:  ${s.pinDir}`,
    `devices:  ${s.devices.length > 0 ? s.devices.join(', ') : '(none)'}`,
    'attachments:',
    ...s.attachments.map((a) =>
      a.state === 'attached'
        ? `  ${a.ifname.padEnd(12)} ${a.hook.padEnd(11)} ${a.program.padEnd(22)} ${a.kind}${a.adopted ? ' (adopted)' : ''}${a.fallbackReason ? ` [${a.fallbackReason}]` : ''}`
        : `  ${a.ifname.padEnd(12)} ${a.hook.padEnd(11)} ${a.program.padEnd(22)} FAILED: ${a.error}`,
    ),
    'packet counters:',
    ...Object.entries(s.packetCounters).map(
      ([slot, c]) => `  ${slot.padEnd(10)} ${c.packets} packets, ${c.bytes} bytes`,
    ),
  ];
  return lines.join('\n');
}

function listInterfaces(): string[] {
  try {
    return readdirSync('/sys/class/net');
  } catch {
    return [];
  }
}

export const commands: Record<string, Command> = {
  daemon: {
    summary: 'run the daemon (foreground; systemd runs it this way)',
    usage: 'nodewarden daemon [--config FILE] [--pin-dir DIR] [--run-dir DIR]',
    run: (flags) => runDaemon(flags),
  },
  status: {
    summary: "show the running daemon's state",
    usage: 'nodewarden status [--run-dir DIR] [-o json]',
    async run(flags) {
      const status = (await callDaemon(controlSocketPath(flags.runDir), 'status')) as DaemonStatus;
      print(flags, status, () => formatStatus(status));
      return EXIT_OK;
    },
  },
  cleanup: {
    summary: 'detach every nodewarden program and remove its pinned maps (purge, emergencies)',
    usage: 'nodewarden cleanup [--pin-dir DIR] [-o json]',
    async run(flags) {
      const removed = cleanupDatapath(flags.pinDir, listInterfaces());
      print(flags, { removed }, () =>
        removed.length > 0 ? removed.map((r) => `removed ${r}`).join('\n') : 'nothing to remove',
      );
      return EXIT_OK;
    },
  },
  version: {
    summary: 'print the version',
    usage: 'nodewarden version [-o json]',
    async run(flags) {
      print(flags, { version: VERSION, node: process.version }, () => VERSION);
      return EXIT_OK;
    },
  },
};

export function mainHelp(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  return [
    'nodewarden: host firewall, LoadBalancer IP announcer and service traffic for bare-metal nodes',
    '',
    'Usage: nodewarden COMMAND [flags]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    COMMON_HELP,
    '',
    'Exit codes: 0 success, 1 invalid input or failed check, 2 usage error.',
  ].join('\n');
}

export function commandHelp(name: string, command: Command): string {
  return `${command.summary}\n\nUsage: ${command.usage}\n\n${COMMON_HELP}\n\n(${name})`;
}
