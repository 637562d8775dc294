/**
 * Every lab namespace is named `nwl-<pid>-<lab>-<host>`: the pid of the process that owns the
 * lab lets a later run tell abandoned namespaces from those of a lab that is still running.
 */
export const NETNS_PREFIX = 'nwl-';

const LAB_NETNS_RE = /^nwl-(\d+)-(\d+)-(.+)$/;
const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
// The kernel limit is IFNAMSIZ (16) including the NUL; '/' ':' and whitespace are rejected or
// mean something else (':' is an alias), so allow only the characters a test needs.
const IF_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

export interface LabNetns {
  pid: number;
  lab: number;
  host: string;
}

export function labNetnsName(pid: number, lab: number, host: string): string {
  return `${NETNS_PREFIX}${pid}-${lab}-${host}`;
}

export function parseLabNetns(netns: string): LabNetns | undefined {
  const m = LAB_NETNS_RE.exec(netns);
  if (!m) return undefined;
  return { pid: Number(m[1]), lab: Number(m[2]), host: m[3]! };
}

export function assertHostName(name: string): void {
  if (!HOST_NAME_RE.test(name)) {
    throw new Error(`invalid lab host name ${JSON.stringify(name)}: use 1-32 of [A-Za-z0-9_-]`);
  }
}

export function assertIfName(name: string): void {
  if (!IF_NAME_RE.test(name)) {
    throw new Error(`invalid interface name ${JSON.stringify(name)}: use 1-15 of [A-Za-z0-9_.-]`);
  }
}
