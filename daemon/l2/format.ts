/** Text form of the L2 status, for `nodewarden l2 status` and the l2 block of `nodewarden status`. */
import type { L2Status } from './manager.js';

export function formatL2Status(s: L2Status, indent = ''): string[] {
  const lines: string[] = [];
  if (s.ips.length === 0) lines.push(`${indent}no L2 announcements configured`);
  for (const ip of s.ips) {
    const owner = ip.owner ?? 'another node';
    lines.push(
      `${indent}${ip.ip.padEnd(20)} ${ip.state.padEnd(16)} owner ${owner}${ip.localRoute ? ', local route' : ''}${ip.reason ? `  (${ip.reason})` : ''}`,
    );
    for (const i of ip.interfaces)
      lines.push(
        `${indent}  ${i.name.padEnd(12)} ${i.mac}  ${i.replies} replies${i.lastReplyAt ? ` (last ${i.lastReplyAt})` : ''}; last announced ${i.lastAnnouncedAt ?? 'before this daemon started'}`,
      );
  }
  for (const i of s.interfaces.filter((x) => !x.announcing))
    lines.push(`${indent}interface ${i.name} skipped: ${i.skipped}`);
  for (const w of s.warnings) lines.push(`${indent}WARNING: ${w}`);
  for (const e of s.errors.slice(-5)) lines.push(`${indent}error at ${e.at}: ${e.what}: ${e.error}`);
  return lines;
}
