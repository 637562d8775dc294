/** The nodewarden commands. Each returns an exit code; main.ts maps errors to codes. */
import { readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { basename } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { ReceivedRoute } from '../../announcers/bgp/index.js';
import { BARE_PROTOCOLS as BARE_PROTOCOL_NUMBERS } from '../../host-policies/cilium-names.js';
import { compilePolicies } from '../../host-policies/compile.js';
import { parsePolicyFiles } from '../../host-policies/parse.js';
import { InputError } from '../../model/input-errors.js';
import { formatBgpPeers, formatBgpStatus, formatReceivedRoutes } from '../bgp/format.js';
import type { BgpPeerRow } from '../bgp/manager.js';
import { loadConfig } from '../config/load.js';
import { callDaemon, streamFromDaemon } from '../control/client.js';
import { Daemon, type DaemonStatus } from '../daemon.js';
import { cleanupDatapath } from '../datapath/actuator.js';
import { nodeFacts, systemAllows } from '../firewall/manager.js';
import { PROTOCOLS, type TraceQuery, type TraceResult } from '../firewall/trace.js';
import { formatL2Status } from '../l2/format.js';
import { syncLocalRoutes } from '../l2/local-routes.js';
import type { L2Status } from '../l2/manager.js';
import { createLogger } from '../log.js';
import { controlSocketPath } from '../paths.js';
import { formatServicesStatus } from '../services/format.js';
import { removeLocalRoutes } from '../services/local-routes.js';
import { VERSION } from '../version.js';
import { COMMON_HELP, type CommonFlags, EXIT_FAILED, EXIT_OK, UsageError } from './args.js';

export interface Command {
  summary: string;
  usage: string;
  /** Flags of this command beyond the common ones. */
  extraOptions?: ParseArgsConfig['options'];
  run(flags: CommonFlags, positionals: string[], values?: Record<string, unknown>): Promise<number>;
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
    `firewall: generation ${s.firewall.generation}, policies: ${s.firewall.policies.join(', ') || '(none)'}`,
    `  default ingress ${s.firewall.defaults.ingress}, egress ${s.firewall.defaults.egress}; ${s.firewall.rules} rules, ${s.firewall.identities} identities, ${s.firewall.entries} policy entries`,
    ...(s.firewall.lastApply
      ? [`  last apply ${s.firewall.lastApply.at} in ${s.firewall.lastApply.durationMs.toFixed(1)} ms`]
      : []),
    ...s.firewall.systemAllows.map((a) => `  always allowed: ${a}`),
    ...s.firewall.warnings.map((w) => `  warning: ${w}`),
    ...(s.firewall.endpoints ?? []).map(
      (e) => `  endpoints ${e.selector || '{}'}: ${e.addresses} pod address(es)`,
    ),
    ...(s.firewall.lastError
      ? [`  REJECTED (the policy in force stays): ${s.firewall.lastError.message}`]
      : []),
    ...formatServicesStatus(s),
    'packet counters:',
    ...Object.entries(s.packetCounters).map(
      ([slot, c]) => `  ${slot.padEnd(10)} ${c.packets} packets, ${c.bytes} bytes`,
    ),
    ...(s.l2 ? ['l2 announcements:', ...formatL2Status(s.l2, '  ')] : []),
    ...(s.bgp ? formatBgpStatus(s.bgp) : []),
    ...(s.kubernetes ? formatKubernetesStatus(s.kubernetes) : []),
  ];
  return lines.join('\n');
}

function formatKubernetesStatus(k: NonNullable<DaemonStatus['kubernetes']>): string[] {
  const hb = k.heartbeat;
  return [
    `kubernetes: ${k.server} ${k.synced ? 'synced' : 'NOT SYNCED'}; live nodes: ${k.liveNodes.join(', ') || '(none)'}`,
    `  heartbeat ${hb.lease}: ${hb.holding ? 'held' : 'NOT HELD (announcing nothing)'}, ${hb.renewals} renewals, ${hb.conflicts} conflicts, ${hb.failures} failures${hb.lastError ? ` (last: ${hb.lastError})` : ''}`,
    ...k.resources.map(
      (r) =>
        `  ${r.name.padEnd(34)} ${r.missing ? 'not served (CRD missing?)' : `${r.objects} objects`}${r.invalid ? `, ${r.invalid} invalid` : ''}, ${r.lists} lists, ${r.watches} watches, ${r.relists} relists`,
    ),
    ...(k.ipam
      ? [
          `  ipam: ${k.ipam.leader ? 'this node allocates' : 'standby'}, ${k.ipam.assigned} Services assigned, ${k.ipam.writes} writes`,
          ...k.ipam.problems.map((p) => `  ipam problem: ${p}`),
        ]
      : []),
    ...(k.podSelectors ?? []).map(
      (p) =>
        `  pods ${p.selector || '{}'}: ${p.synced ? `${p.pods} pods, ${p.addresses} addresses` : 'NOT LISTED YET'}${p.lastError ? ` (last error: ${p.lastError})` : ''}`,
    ),
    ...k.problems.map((p) => `  invalid (last good version kept): ${p}`),
    ...(k.lastError ? [`  last error: ${k.lastError}`] : []),
  ];
}

function listInterfaces(): string[] {
  try {
    return readdirSync('/sys/class/net');
  } catch {
    return [];
  }
}

const POLICY_OPTIONS = {
  'confirm-within': { type: 'string', default: '120s' },
  from: { type: 'string' },
  to: { type: 'string' },
  port: { type: 'string' },
  ingress: { type: 'boolean', default: false },
  egress: { type: 'boolean', default: false },
} as const;

/** "22/tcp", "53/udp", "8/icmp" (ICMP type), "vrrp" or "112" (a bare protocol). */
export function parsePortSpec(spec: string): { protocol: number; port: number } {
  const [left, right] = spec.toLowerCase().split('/');
  if (right === undefined) {
    const bare = PROTOCOLS[left ?? ''] ?? BARE_PROTOCOL_NUMBERS[(left ?? '').toUpperCase()] ?? Number(left);
    if (Number.isInteger(bare) && bare >= 0 && bare <= 255) return { protocol: bare, port: 0 };
    throw new UsageError(`--port ${spec}: expected PORT/PROTOCOL, such as 22/tcp, 53/udp or 8/icmp`);
  }
  const protocol = PROTOCOLS[right];
  const port = Number(left);
  if (protocol === undefined)
    throw new UsageError(`--port ${spec}: unknown protocol ${right} (tcp, udp, sctp, icmp, icmpv6)`);
  const max = protocol === 1 || protocol === 58 ? 255 : 65535;
  if (!Number.isInteger(port) || port < 0 || port > max)
    throw new UsageError(`--port ${spec}: port must be 0-${max}`);
  return { protocol, port };
}

async function policyCheck(flags: CommonFlags, files: string[]): Promise<number> {
  if (files.length === 0) throw new UsageError('policy check needs one or more files');
  const config = loadConfig(flags.config);
  const policies = parsePolicyFiles(files, {
    mode: config.source === 'kubernetes' ? 'kubernetes' : 'standalone',
  });
  const compiled = compilePolicies(policies, nodeFacts(config), systemAllows(config));
  const result = {
    ok: true,
    policies: policies.map((p) => p.name),
    selectingThisNode: compiled.selected,
    rules: compiled.rules.length - 3,
    policyEntries: compiled.entries.length,
    warnings: policies.flatMap((p) => p.warnings.map((w) => `${p.name}: ${w}`)),
  };
  print(flags, result, () =>
    [
      `ok: ${result.policies.length} policies in ${files.length} file(s): ${result.policies.join(', ')}`,
      `    ${result.selectingThisNode.length} select this node (${config.nodeName}); ${result.rules} rules compile to ${result.policyEntries} policy entries`,
      ...result.warnings.map((w) => `warning: ${w}`),
    ].join('\n'),
  );
  return EXIT_OK;
}

async function policyTrace(flags: CommonFlags, values: Record<string, unknown>): Promise<number> {
  const from = values.from as string | undefined;
  const to = values.to as string | undefined;
  const port = values.port as string | undefined;
  if (!from || !to || !port) throw new UsageError('policy trace needs --from IP --to IP --port N/PROTO');
  for (const [flag, ip] of [
    ['--from', from],
    ['--to', to],
  ] as const) {
    if (isIP(ip) === 0) throw new UsageError(`${flag} ${ip}: not an IP address`);
  }
  if (values.ingress && values.egress) throw new UsageError('give --ingress or --egress, not both');
  const query: TraceQuery = {
    direction: values.egress ? 'egress' : 'ingress',
    from,
    to,
    ...parsePortSpec(port),
  };
  const result = (await callDaemon(controlSocketPath(flags.runDir), 'policy.trace', {
    ...query,
  })) as TraceResult;
  print(flags, { query, ...result }, () =>
    [
      `${query.direction} ${from} -> ${to} ${port}: ${result.verdict.toUpperCase()}`,
      `  decided by: ${result.decidedBy}`,
      `  policy generation ${result.generation}${result.set !== undefined ? `, peer selector set ${result.set}` : ''}`,
      ...(result.endpoints ?? []).map(
        (e) =>
          `  endpoints ${e.selector || '{}'}: ${e.addresses} address(es)${e.includesPeer ? `, including ${result.peer}` : ''}`,
      ),
    ].join('\n'),
  );
  return EXIT_OK;
}

/** "120s", "2m", "90" (seconds), "0" (no rollback) → ms. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`--confirm-within ${text}: expected a duration such as 120s, 2m or 0`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
}

async function policyApply(
  flags: CommonFlags,
  files: string[],
  values: Record<string, unknown>,
): Promise<number> {
  if (files.length === 0) throw new UsageError('policy apply needs one or more files');
  const confirmWithinMs = parseDuration(String(values['confirm-within']));
  const payload = files.map((file) => {
    try {
      return { name: basename(file), content: readFileSync(file, 'utf8') };
    } catch (error) {
      throw new InputError([
        { file, path: [], message: `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}` },
      ]);
    }
  });
  const result = (await callDaemon(controlSocketPath(flags.runDir), 'policy.apply', {
    files: payload,
    confirmWithinMs,
  })) as {
    deadline?: string;
    generation: number;
  };
  print(flags, result, () =>
    result.deadline
      ? `applied as generation ${result.generation}; run \`nodewarden policy confirm\` before ${result.deadline} or it rolls back`
      : `applied as generation ${result.generation}`,
  );
  return EXIT_OK;
}

async function policyConfirm(flags: CommonFlags): Promise<number> {
  const result = (await callDaemon(controlSocketPath(flags.runDir), 'policy.confirm')) as {
    confirmed: boolean;
  };
  print(flags, result, () =>
    result.confirmed ? 'confirmed: the applied policy stays' : 'nothing to confirm',
  );
  return result.confirmed ? EXIT_OK : EXIT_FAILED;
}

async function monitor(flags: CommonFlags, values: Record<string, unknown>): Promise<number> {
  const count = values.count === undefined ? Number.POSITIVE_INFINITY : Number(values.count);
  if (!(count > 0)) throw new UsageError(`--count ${String(values.count)}: must be a positive number`);
  let seen = 0;
  const stream = streamFromDaemon(controlSocketPath(flags.runDir), 'monitor', (event) => {
    process.stdout.write(`${JSON.stringify(event)}\n`);
    seen++;
    return seen < count;
  });
  process.once('SIGINT', () => stream.stop());
  process.once('SIGTERM', () => stream.stop());
  await stream.done;
  return EXIT_OK;
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
      const removed = [...cleanupDatapath(flags.pinDir, listInterfaces()), ...removeLocalRoutes()];
      // Only routes tagged with nodewarden's L2 protocol number.
      for (const ip of (await syncLocalRoutes([])).removed) removed.push(`local route ${ip}`);
      print(flags, { removed }, () =>
        removed.length > 0 ? removed.map((r) => `removed ${r}`).join('\n') : 'nothing to remove',
      );
      return EXIT_OK;
    },
  },
  policy: {
    summary: 'host policies: check, trace, apply (rolls back unless confirmed), confirm',
    usage: [
      'nodewarden policy check FILE...',
      '       nodewarden policy trace --from IP --to IP --port N/PROTO [--ingress|--egress]',
      '       nodewarden policy apply [--confirm-within 120s] FILE...',
      '       nodewarden policy confirm',
    ].join('\n'),
    extraOptions: POLICY_OPTIONS,
    async run(flags, positionals, values) {
      const [sub, ...rest] = positionals;
      if (sub === 'check') return policyCheck(flags, rest);
      if (sub === 'trace') return policyTrace(flags, values ?? {});
      if (sub === 'apply') return policyApply(flags, rest, values ?? {});
      if (sub === 'confirm') return policyConfirm(flags);
      throw new UsageError(`policy ${sub ?? ''}: expected check, trace, apply or confirm`.replace('  ', ' '));
    },
  },
  monitor: {
    summary: 'stream firewall drop and audit events as JSON lines',
    usage: 'nodewarden monitor [--count N] [--run-dir DIR]',
    extraOptions: { count: { type: 'string' } },
    run: (flags, _positionals, values) => monitor(flags, values ?? {}),
  },
  l2: {
    summary: 'L2 announcements: the IPs this node announces, their interfaces and replies',
    usage: 'nodewarden l2 status [--run-dir DIR] [-o json]',
    async run(flags, positionals) {
      const [sub, ...rest] = positionals;
      if (sub !== 'status' || rest.length > 0)
        throw new UsageError(`l2 ${positionals.join(' ')}: expected status`);
      const status = (await callDaemon(controlSocketPath(flags.runDir), 'l2.status')) as L2Status;
      print(flags, status, () => formatL2Status(status).join('\n'));
      return EXIT_OK;
    },
  },
  bgp: {
    summary:
      'BGP: peers (state, uptime, prefixes sent and received, last error), routes received from a peer',
    usage:
      'nodewarden bgp peers [--run-dir DIR] [-o json]\n       nodewarden bgp received PEER [--run-dir DIR] [-o json]',
    async run(flags, positionals) {
      const [sub, ...rest] = positionals;
      const socket = controlSocketPath(flags.runDir);
      if (sub === 'peers' && rest.length === 0) {
        const rows = (await callDaemon(socket, 'bgp.peers')) as BgpPeerRow[];
        print(flags, rows, () => formatBgpPeers(rows));
        return EXIT_OK;
      }
      if (sub === 'received' && rest.length === 1) {
        const routes = (await callDaemon(socket, 'bgp.received', { peer: rest[0] })) as ReceivedRoute[];
        print(flags, routes, () => formatReceivedRoutes(routes));
        return EXIT_OK;
      }
      throw new UsageError('bgp: expected "bgp peers" or "bgp received PEER"');
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
