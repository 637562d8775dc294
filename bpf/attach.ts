/**
 * Attaching programs to interfaces. Links are pinned, so the program keeps
 * running after the daemon exits, and a restarted daemon adopts the pinned link
 * and swaps its program in place (bpf_link_update) instead of detaching.
 *
 * - XDP: a bpf_link in native (driver) mode; generic (skb) mode only when asked.
 * - tc: a tcx link on kernels with tcx (6.6+); otherwise a tc clsact filter,
 *   which is not a link but survives the process just the same.
 */
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { BpfError, checkLibbpf } from './native/errors.js';
import { bpf, c, sizeOf } from './native/ffi.js';
import type { BpfProgram } from './object.js';

// enum bpf_attach_type (uapi/linux/bpf.h); Debian 12's headers predate tcx.
const BPF_XDP = 37;
const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;
// enum bpf_link_type
const BPF_LINK_TYPE_XDP = 6;
const BPF_LINK_TYPE_TCX = 11;
const XDP_FLAGS_SKB_MODE = 1 << 1;
const XDP_FLAGS_DRV_MODE = 1 << 2;
// libbpf's bpf_tc_attach_point and flags
const BPF_TC_INGRESS = 1 << 0;
const BPF_TC_EGRESS = 1 << 1;
const BPF_TC_F_REPLACE = 1 << 0;

const EEXIST = 17;
const EINVAL = 22;
const ENOENT = 2;
const ENODEV = 19;
const EOPNOTSUPP = 95;

export type Direction = 'ingress' | 'egress';
export type XdpMode = 'native' | 'generic';
/** `auto` uses tcx where the kernel has it and tc clsact where it does not. */
export type TcMode = 'auto' | 'tcx' | 'tc';

export interface Attachment {
  readonly kind: 'xdp' | 'tcx' | 'tc';
  readonly ifname: string;
  readonly ifindex: number;
  readonly program: string;
  readonly direction: Direction;
  /** xdp only: the mode in effect. */
  readonly xdpMode?: XdpMode;
  /** The pinned link; tc filters have none. */
  readonly pinPath?: string;
  /** True when an existing pinned link or filter was taken over rather than created. */
  readonly adopted: boolean;
  /** Why tc was used instead of tcx, when auto fell back. */
  readonly fallbackReason?: string;
}

export function interfaceIndex(ifname: string): number {
  const ifindex = c.ifNameToIndex(ifname);
  if (ifindex === 0)
    throw new BpfError('resolve interface', ifname, ENODEV, 'no such interface in this network namespace');
  return ifindex;
}

interface LinkInfo {
  type: number;
  id: number;
  progId: number;
  ifindex: number;
}

export function linkInfo(fd: number, object: string): LinkInfo {
  // struct bpf_link_info: type, id, prog_id, then an 8-aligned union whose xdp
  // and tcx members both start with ifindex.
  const info = Buffer.alloc(128);
  const len: [number] = [info.length];
  checkLibbpf(bpf.objGetInfoByFd(fd, info, len), 'read link info', object);
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    progId: info.readUInt32LE(8),
    ifindex: info.readUInt32LE(16),
  };
}

/**
 * Takes over a pinned link if it still belongs to this interface, replacing its
 * program atomically. Returns false (after removing a stale pin) when there is
 * nothing to adopt.
 */
function adoptPinnedLink(pinPath: string, linkType: number, ifindex: number, program: BpfProgram): boolean {
  if (!existsSync(pinPath)) return false;
  const fd = bpf.objGet(pinPath);
  if (fd < 0) throw new BpfError('open pinned link', pinPath, -fd);
  try {
    const info = linkInfo(fd, pinPath);
    if (info.type === linkType && info.ifindex === ifindex) {
      checkLibbpf(bpf.linkUpdate(fd, program.fd, null), 'replace program of link', pinPath);
      return true;
    }
    // The interface went away (ifindex 0) or the pin is for another link kind:
    // the link is dead weight; drop the pin and attach afresh.
    unlinkSync(pinPath);
    return false;
  } finally {
    c.close(fd);
  }
}

function createPinnedLink(
  program: BpfProgram,
  ifindex: number,
  attachType: number,
  flags: number,
  pinPath: string,
  object: string,
): void {
  const fd = bpf.linkCreate(program.fd, ifindex, attachType, {
    sz: sizeOf.linkCreateOpts,
    flags,
    union_words: [0n, 0n, 0n, 0n],
  });
  checkLibbpf(fd, `attach ${program.name} to`, object);
  try {
    mkdirSync(dirname(pinPath), { recursive: true, mode: 0o700 });
    checkLibbpf(bpf.objPin(fd, pinPath), 'pin link', pinPath);
  } catch (error) {
    bpf.linkDetach(fd);
    throw error;
  } finally {
    c.close(fd);
  }
}

export interface XdpAttachOptions {
  program: BpfProgram;
  ifname: string;
  mode: XdpMode;
  pinPath: string;
}

export function attachXdp(options: XdpAttachOptions): Attachment {
  const { program, ifname, mode, pinPath } = options;
  const ifindex = interfaceIndex(ifname);
  const base = {
    kind: 'xdp',
    ifname,
    ifindex,
    program: program.name,
    direction: 'ingress',
    xdpMode: mode,
    pinPath,
  } as const;
  if (adoptPinnedLink(pinPath, BPF_LINK_TYPE_XDP, ifindex, program)) return { ...base, adopted: true };
  const flags = mode === 'native' ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  createPinnedLink(program, ifindex, BPF_XDP, flags, pinPath, `${ifname} (xdp ${mode})`);
  return { ...base, adopted: false };
}

export interface TcAttachOptions {
  program: BpfProgram;
  ifname: string;
  direction: Direction;
  mode: TcMode;
  /** Where the tcx link is pinned. */
  pinPath: string;
  /** tc clsact only: filter handle and priority, unique per program on a hook. */
  handle?: number;
  priority?: number;
}

export function attachTc(options: TcAttachOptions): Attachment {
  const { program, ifname, direction, mode, pinPath } = options;
  const ifindex = interfaceIndex(ifname);
  if (mode === 'tc') return attachTcFilter(options, ifindex);
  const base = { kind: 'tcx', ifname, ifindex, program: program.name, direction, pinPath } as const;
  if (adoptPinnedLink(pinPath, BPF_LINK_TYPE_TCX, ifindex, program)) return { ...base, adopted: true };
  try {
    createPinnedLink(
      program,
      ifindex,
      direction === 'ingress' ? BPF_TCX_INGRESS : BPF_TCX_EGRESS,
      0,
      pinPath,
      `${ifname} (tcx ${direction})`,
    );
    return { ...base, adopted: false };
  } catch (error) {
    // Kernels before 6.6 reject the tcx attach types with EINVAL.
    const unsupported = error instanceof BpfError && (error.errno === EINVAL || error.errno === EOPNOTSUPP);
    if (mode === 'tcx' || !unsupported) throw error;
    return {
      ...attachTcFilter(options, ifindex),
      fallbackReason: `tcx unavailable: ${(error as BpfError).code}`,
    };
  }
}

function tcHook(ifindex: number, direction: Direction) {
  return {
    sz: sizeOf.tcHook,
    ifindex,
    attach_point: direction === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS,
    parent: 0,
  };
}

function attachTcFilter(options: TcAttachOptions, ifindex: number): Attachment {
  const { program, ifname, direction } = options;
  const hook = tcHook(ifindex, direction);
  const created = bpf.tcHookCreate(hook);
  if (created < 0 && created !== -EEXIST) checkLibbpf(created, 'create clsact qdisc on', ifname);
  const handle = options.handle ?? 1;
  const priority = options.priority ?? 1;
  const existing = { sz: sizeOf.tcOpts, prog_fd: 0, flags: 0, prog_id: 0, handle, priority };
  const adopted = bpf.tcQuery(hook, existing) === 0;
  checkLibbpf(
    bpf.tcAttach(hook, {
      sz: sizeOf.tcOpts,
      prog_fd: program.fd,
      flags: BPF_TC_F_REPLACE,
      prog_id: 0,
      handle,
      priority,
    }),
    `attach ${program.name} to`,
    `${ifname} (tc ${direction})`,
  );
  return { kind: 'tc', ifname, ifindex, program: program.name, direction, adopted };
}

/** Removes a pinned XDP or tcx link: the program stops running on that interface. */
export function detachPinnedLink(pinPath: string): boolean {
  if (!existsSync(pinPath)) return false;
  const fd = bpf.objGet(pinPath);
  if (fd < 0) throw new BpfError('open pinned link', pinPath, -fd);
  try {
    const result = bpf.linkDetach(fd);
    // A link whose interface is gone is already detached.
    if (result < 0 && result !== -ENOENT && result !== -EINVAL) checkLibbpf(result, 'detach link', pinPath);
  } finally {
    c.close(fd);
  }
  unlinkSync(pinPath);
  return true;
}

/** Removes a tc clsact filter that attachTc(mode 'tc') created. */
export function detachTcFilter(ifname: string, direction: Direction, handle = 1, priority = 1): boolean {
  const hook = tcHook(interfaceIndex(ifname), direction);
  const result = bpf.tcDetach(hook, {
    sz: sizeOf.tcOpts,
    prog_fd: 0,
    flags: 0,
    prog_id: 0,
    handle,
    priority,
  });
  if (result === -ENOENT) return false;
  checkLibbpf(result, 'detach tc filter from', `${ifname} (tc ${direction})`);
  return true;
}

/** The id of the tc clsact filter at handle/priority, or undefined. */
export function queryTcFilter(
  ifname: string,
  direction: Direction,
  handle = 1,
  priority = 1,
): number | undefined {
  const opts = { sz: sizeOf.tcOpts, prog_fd: 0, flags: 0, prog_id: 0, handle, priority };
  const result = bpf.tcQuery(tcHook(interfaceIndex(ifname), direction), opts);
  if (result === -ENOENT || result === -EINVAL) return undefined;
  checkLibbpf(result, 'query tc filter on', `${ifname} (tc ${direction})`);
  return opts.prog_id;
}

/** Identity of a pinned link: the same id after a restart means it was adopted, not recreated. */
export function pinnedLinkInfo(pinPath: string): LinkInfo {
  const fd = bpf.objGet(pinPath);
  if (fd < 0) throw new BpfError('open pinned link', pinPath, -fd);
  try {
    return linkInfo(fd, pinPath);
  } finally {
    c.close(fd);
  }
}
