/** Text forms of BGP status for `nodewarden bgp peers` and `nodewarden status`. */
import type { ReceivedRoute } from '../../announcers/bgp/index.js';
import type { BgpPeerRow, BgpStatus } from './manager.js';

export function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', `${s % 60}s`];
  return parts.filter(Boolean).slice(0, 3).join('');
}

/** "received NOTIFICATION 6/2 Cease/Administrative Shutdown: maintenance (at ...)". */
export function formatPeerError(row: BgpPeerRow): string | undefined {
  const e = row.lastError;
  if (!e) return undefined;
  const code = e.code !== undefined ? ` ${e.code}/${e.subcode ?? 0}` : '';
  const kind =
    e.code !== undefined
      ? `${e.direction} NOTIFICATION${code} `
      : `${e.direction === 'local' ? '' : `${e.direction} `}`;
  const text = `${kind}${e.name}${e.message ? `: ${e.message}` : ''} (at ${e.at})`;
  return text;
}

export function formatBgpPeers(rows: readonly BgpPeerRow[]): string {
  if (rows.length === 0) return 'no BGP peers configured';
  const header = ['PEER', 'ADDRESS', 'ASN', 'STATE', 'UPTIME', 'SENT', 'RECEIVED', 'MSGS OUT/IN'];
  const table = rows.map((r) => [
    r.name,
    r.address,
    String(r.asn),
    r.state,
    r.state === 'Established' && r.uptimeSeconds !== undefined ? formatDuration(r.uptimeSeconds) : '-',
    String(r.prefixesSent),
    String(r.prefixesReceived),
    `${r.messagesSent}/${r.messagesReceived}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...table.map(line)];
  for (const r of rows) {
    const error = formatPeerError(r);
    if (error) out.push(`${r.name}: last error: ${error}`);
    if (r.negotiated) {
      const n = r.negotiated;
      const caps = [
        n.fourOctetAs && '4-octet AS',
        n.routeRefresh && 'route refresh',
        n.gracefulRestart && 'graceful restart',
      ];
      out.push(
        `${r.name}: hold ${n.holdTime}s, keepalive ${n.keepaliveTime}s, ${n.families.join(' ')}; ${caps.filter(Boolean).join(', ')}`,
      );
    }
  }
  return out.join('\n');
}

/** Lines of the bgp block in `nodewarden status`. */
export function formatBgpStatus(s: BgpStatus): string[] {
  const up = s.peers.filter((p) => p.state === 'Established').length;
  return [
    `bgp:      AS ${s.asn}, router ID ${s.routerId}${s.restarting ? ' (started as a restarting speaker)' : ''}; ${s.routes} routes; ${up}/${s.peers.length} peers established`,
    ...(s.listen ? [`  listening on [${s.listen.address}]:${s.listen.port}`] : []),
    ...(s.lastError ? [`  FAILED: ${s.lastError.message} (at ${s.lastError.at})`] : []),
    ...s.peers.map((p) => {
      const uptime =
        p.state === 'Established' && p.uptimeSeconds !== undefined
          ? ` for ${formatDuration(p.uptimeSeconds)}`
          : '';
      const error = p.state === 'Established' ? undefined : formatPeerError(p);
      return `  ${p.name} (${p.address}, AS ${p.asn}): ${p.state}${uptime}, ${p.prefixesSent} sent, ${p.prefixesReceived} received${error ? `; last error: ${error}` : ''}`;
    }),
  ];
}

/** Routes a peer sent us; nodewarden counts and shows them, never installs them. */
export function formatReceivedRoutes(routes: readonly ReceivedRoute[]): string {
  if (routes.length === 0) return 'no routes received from this peer';
  return routes
    .map((r) => `${r.prefix.padEnd(20)} via ${r.nextHop}  AS path ${r.asPath.join(' ') || '(empty)'}`)
    .join('\n');
}
