/**
 * Facts about this node's interfaces for the L2 planner, read from sysfs
 * (which shows the daemon's own network namespace).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import type { InterfaceFacts } from '../../announcers/l2/model.js';

const IFF_UP = 0x1;
const IFF_NOARP = 0x80;
const IFF_SLAVE = 0x800;
const ARPHRD_ETHER = 1;

export interface SysfsInterface {
  name: string;
  ifindex: string;
  flags: string;
  operstate: string;
  type: string;
  addrLen: string;
  address: string;
}

export function interfaceFacts(raw: SysfsInterface): InterfaceFacts {
  const flags = Number.parseInt(raw.flags, 16);
  const ethernet = Number(raw.type) === ARPHRD_ETHER && Number(raw.addrLen) === 6;
  return {
    name: raw.name,
    ifindex: Number(raw.ifindex),
    mac: ethernet ? raw.address.trim().toLowerCase() : '',
    // "unknown": drivers that do not report carrier (dummy, some virtual NICs).
    up: (flags & IFF_UP) !== 0 && ['up', 'unknown'].includes(raw.operstate.trim()),
    noarp: (flags & IFF_NOARP) !== 0,
    bondSlave: (flags & IFF_SLAVE) !== 0,
    ethernet,
  };
}

function read(dir: string, file: string): string {
  try {
    return readFileSync(`${dir}/${file}`, 'utf8').trim();
  } catch {
    return '';
  }
}

export function readInterfaceFacts(root = '/sys/class/net'): InterfaceFacts[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const facts = names
    .map((name) => {
      const dir = `${root}/${name}`;
      return interfaceFacts({
        name,
        ifindex: read(dir, 'ifindex'),
        flags: read(dir, 'flags') || '0',
        operstate: read(dir, 'operstate'),
        type: read(dir, 'type'),
        addrLen: read(dir, 'addr_len'),
        address: read(dir, 'address'),
      });
    })
    .filter((f) => f.ifindex > 0);
  return withBondMembers(facts, (name) => {
    try {
      return basename(readlinkSync(`${root}/${name}/master`));
    } catch {
      return undefined;
    }
  });
}

/** Adds to each bond the ifindexes of its members (IFF_SLAVE interfaces whose master it is). */
export function withBondMembers(
  facts: readonly InterfaceFacts[],
  masterOf: (name: string) => string | undefined,
): InterfaceFacts[] {
  const members = new Map<string, number[]>();
  for (const f of facts.filter((x) => x.bondSlave)) {
    const master = masterOf(f.name);
    if (master) members.set(master, [...(members.get(master) ?? []), f.ifindex]);
  }
  return facts.map((f) =>
    members.has(f.name) ? { ...f, members: members.get(f.name)!.sort((a, b) => a - b) } : f,
  );
}
