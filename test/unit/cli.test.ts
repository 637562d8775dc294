import { describe, expect, it } from 'vitest';
import {
  COMMON_HELP,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  parseCommon,
  UsageError,
} from '../../daemon/cli/args.js';
import { commandHelp, commands, formatStatus, mainHelp } from '../../daemon/cli/commands.js';
import { DEFAULT_CONFIG_PATH } from '../../daemon/config/load.js';
import type { DaemonStatus } from '../../daemon/daemon.js';
import { controlSocketPath, DEFAULT_PIN_DIR, DEFAULT_RUN_DIR } from '../../daemon/paths.js';

function usageError(argv: string[]): UsageError {
  try {
    parseCommon(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error(`parseCommon(${JSON.stringify(argv)}) did not throw`);
}

describe('exit codes', () => {
  it('are 0 for success, 1 for failure, 2 for usage', () => {
    expect([EXIT_OK, EXIT_FAILED, EXIT_USAGE]).toEqual([0, 1, 2]);
  });
});

describe('parseCommon', () => {
  it('gives the defaults for no flags', () => {
    const { flags, positionals } = parseCommon([]);
    expect(flags).toEqual({
      config: '/etc/nodewarden/config.yaml',
      pinDir: '/sys/fs/bpf/nodewarden',
      runDir: '/run/nodewarden',
      output: 'text',
      help: false,
    });
    expect(flags.config).toBe(DEFAULT_CONFIG_PATH);
    expect(flags.pinDir).toBe(DEFAULT_PIN_DIR);
    expect(flags.runDir).toBe(DEFAULT_RUN_DIR);
    expect(positionals).toEqual([]);
  });

  it('reads every common flag, long and short, and keeps positionals', () => {
    const { flags, positionals } = parseCommon([
      '--config',
      '/tmp/c.yaml',
      '--pin-dir=/sys/fs/bpf/test',
      '--run-dir',
      '/tmp/run',
      '-o',
      'json',
      'extra',
      '-h',
    ]);
    expect(flags).toEqual({
      config: '/tmp/c.yaml',
      pinDir: '/sys/fs/bpf/test',
      runDir: '/tmp/run',
      output: 'json',
      help: true,
    });
    expect(positionals).toEqual(['extra']);
    expect(parseCommon(['--output=json', '--help']).flags).toMatchObject({ output: 'json', help: true });
    expect(parseCommon(['--output', 'text']).flags.output).toBe('text');
  });

  it('rejects an unknown flag as a usage error', () => {
    const error = usageError(['--bogus']);
    expect(error.name).toBe('UsageError');
    expect(error.message).toMatch(/^Unknown option '--bogus'/);
    expect(usageError(['-x']).message).toMatch(/^Unknown option '-x'/);
  });

  it('rejects a flag without its value', () => {
    expect(usageError(['--config']).message).toMatch(/--config/);
    expect(usageError(['--run-dir']).message).toMatch(/--run-dir/);
  });

  it('rejects a value given to a boolean flag', () => {
    expect(usageError(['--help=yes']).message).toMatch(/--help/);
  });

  it('rejects an output format other than text or json', () => {
    expect(usageError(['--output', 'yaml']).message).toBe('--output must be text or json, not yaml');
    expect(usageError(['-o', 'JSON']).message).toBe('--output must be text or json, not JSON');
    expect(usageError(['-o', '']).message).toBe('--output must be text or json, not ');
  });

  it('accepts extra options of a command besides the common ones', () => {
    const { values, flags } = parseCommon(['--force', '--device', 'eth0', '-o', 'json'], {
      force: { type: 'boolean' },
      device: { type: 'string' },
    });
    expect(values.force).toBe(true);
    expect(values.device).toBe('eth0');
    expect(flags.output).toBe('json');
    // Without them the same flags are unknown.
    expect(() => parseCommon(['--force'])).toThrow(UsageError);
  });
});

describe('help', () => {
  it('lists every command with its summary', () => {
    const help = mainHelp();
    const names = Object.keys(commands);
    expect(names).toEqual(expect.arrayContaining(['daemon', 'status', 'cleanup', 'version']));
    const width = Math.max(...names.map((n) => n.length));
    const lines = help.split('\n');
    for (const [name, command] of Object.entries(commands)) {
      expect(lines).toContain(`  ${name.padEnd(width)}  ${command.summary}`);
    }
    const start = lines.indexOf('Commands:') + 1;
    expect(lines.slice(start, start + names.length).map((l) => l.trim().split(/\s+/)[0])).toEqual(names);
  });

  it('starts with the usage and ends with the common flags and exit codes', () => {
    const help = mainHelp();
    expect(help).toMatch(/^nodewarden: .*\n\nUsage: nodewarden COMMAND \[flags\]\n/);
    expect(help).toContain(COMMON_HELP);
    expect(help.endsWith('Exit codes: 0 success, 1 invalid input or failed check, 2 usage error.')).toBe(
      true,
    );
  });

  it('documents every common flag with its default', () => {
    for (const flag of ['--config', '--pin-dir', '--run-dir', '--output', '--help']) {
      expect(COMMON_HELP).toContain(flag);
    }
    for (const value of [DEFAULT_CONFIG_PATH, DEFAULT_PIN_DIR, DEFAULT_RUN_DIR]) {
      expect(COMMON_HELP).toContain(`(default ${value})`);
    }
  });

  it('gives each command a usage line that starts with its name', () => {
    for (const [name, command] of Object.entries(commands)) {
      expect(command.usage.startsWith(`nodewarden ${name}`)).toBe(true);
      expect(commandHelp(name, command)).toBe(
        `${command.summary}\n\nUsage: ${command.usage}\n\n${COMMON_HELP}\n\n(${name})`,
      );
    }
  });
});

describe('formatStatus', () => {
  const status: DaemonStatus = {
    version: '0.1.0',
    pid: 1234,
    nodeName: 'edge-1',
    startedAt: '2025-01-01T00:00:00.000Z',
    configFile: '/etc/nodewarden/config.yaml',
    pinDir: '/sys/fs/bpf/nodewarden',
    runDir: '/run/nodewarden',
    devices: ['eth0'],
    attachments: [
      {
        ifname: 'eth0',
        hook: 'tc-ingress',
        program: 'nw_tc_count_ingress',
        state: 'attached',
        kind: 'tcx',
        adopted: true,
      },
      {
        ifname: 'eth0',
        hook: 'tc-egress',
        program: 'nw_tc_count_egress',
        state: 'failed',
        error: 'attach tcx eth0: EBUSY',
      },
    ],
    packetCounters: {
      xdp: { packets: '0', bytes: '0' },
      tcIngress: { packets: '10', bytes: '1500' },
      tcEgress: { packets: '3', bytes: '180' },
    },
    firewall: {
      generation: 3,
      policies: ['ssh-lockdown'],
      defaults: { ingress: 'deny', egress: 'allow' },
      identities: 4,
      entries: 12,
      rules: 2,
      systemAllows: ['egress Kubernetes API 10.0.0.1:6443'],
      warnings: [],
      lastApply: {
        at: '2025-01-01T00:00:01.000Z',
        generation: 3,
        slot: 1,
        identities: 4,
        entries: 12,
        durationMs: 1.25,
      },
    },
    lastReload: { at: '2025-01-01T00:01:00.000Z', ok: false, error: 'bad config' },
  };

  it('shows the daemon, its attachments and counters', () => {
    expect(formatStatus(status).split('\n')).toEqual([
      'nodewarden 0.1.0 on edge-1 (pid 1234, since 2025-01-01T00:00:00.000Z)',
      'config:   /etc/nodewarden/config.yaml  (last reload rejected: bad config)',
      'pin dir:  /sys/fs/bpf/nodewarden',
      'devices:  eth0',
      'attachments:',
      '  eth0         tc-ingress  nw_tc_count_ingress    tcx (adopted)',
      '  eth0         tc-egress   nw_tc_count_egress     FAILED: attach tcx eth0: EBUSY',
      'firewall: generation 3, policies: ssh-lockdown',
      '  default ingress deny, egress allow; 2 rules, 4 identities, 12 policy entries',
      '  last apply 2025-01-01T00:00:01.000Z in 1.3 ms',
      '  always allowed: egress Kubernetes API 10.0.0.1:6443',
      'packet counters:',
      '  xdp        0 packets, 0 bytes',
      '  tcIngress  10 packets, 1500 bytes',
      '  tcEgress   3 packets, 180 bytes',
    ]);
  });

  it('says (none) for no devices and nothing for a good reload', () => {
    const text = formatStatus({ ...status, devices: [], lastReload: { at: 'now', ok: true } });
    expect(text).toContain('\ndevices:  (none)\n');
    expect(text).toContain('\nconfig:   /etc/nodewarden/config.yaml\n');
  });
});

describe('controlSocketPath', () => {
  it('puts the socket in the run directory', () => {
    expect(controlSocketPath('/run/nodewarden')).toBe('/run/nodewarden/nodewarden.sock');
  });
});
