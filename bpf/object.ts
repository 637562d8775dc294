/**
 * Opening and loading BPF objects. Maps that the C side marks as pinned by name
 * live under the pin directory: the first load creates and pins them, every
 * later load (a restarted or upgraded daemon) reuses them with their contents.
 */
import { mkdirSync } from 'node:fs';
import { BpfError, checkLibbpf } from './native/errors.js';
import { addressOf, bpf, lastErrno, type Ptr, sizeOf } from './native/ffi.js';
import {
  carryOver,
  type EntryConverter,
  type MapLayout,
  type ReplacedPin,
  restore,
  setAsideIfIncompatible,
} from './pin-migration.js';

export interface LoadOptions {
  /** Directory on a bpffs where pinned maps live; created if missing. */
  pinDir?: string;
  /** Load only these programs (the rest are not offered to the verifier). Default: all. */
  programs?: readonly string[];
  /** Bytes kept for the verifier log of a failed load. */
  verifierLogSize?: number;
  /**
   * How to carry the entries of a pinned map whose layout changed (by map name,
   * given the new layout). A changed map without one starts empty: its contents
   * are rebuilt by the daemon (policies) or are soft state.
   */
  migrations?: Readonly<Record<string, (layout: MapLayout) => EntryConverter>>;
}

export interface BpfProgram {
  readonly name: string;
  readonly fd: number;
}

export interface BpfMapInfo {
  readonly name: string;
  readonly fd: number;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

function* walk(obj: Ptr, next: (obj: Ptr, prev: Ptr | null) => Ptr | null): Generator<Ptr> {
  for (let item = next(obj, null); item; item = next(obj, item)) yield item;
}

export class BpfObject {
  private closed = false;
  /** Pinned maps this load replaced because their layout changed (an upgrade). */
  replacedPins: readonly ReplacedPin[] = [];

  private constructor(
    readonly path: string,
    private readonly handle: Ptr,
  ) {}

  static load(path: string, options: LoadOptions = {}): BpfObject {
    if (options.pinDir) mkdirSync(options.pinDir, { recursive: true, mode: 0o700 });
    const log = Buffer.alloc(options.verifierLogSize ?? 1 << 20);
    const handle = bpf.objectOpenFile(path, {
      sz: sizeOf.objectOpenOpts,
      object_name: null,
      relaxed_maps: false,
      pin_root_path: options.pinDir ?? null,
      removed_attach_prog_fd: 0,
      kconfig: null,
      btf_custom_path: null,
      // Level 0: no log on success; on failure libbpf retries with level 1 into
      // this buffer, which stays referenced until loadWithLog returns.
      kernel_log_buf: addressOf(log),
      kernel_log_size: log.length,
      kernel_log_level: 0,
    });
    if (!handle) throw new BpfError('open BPF object', path, lastErrno() || 22);
    const object = new BpfObject(path, handle);
    let replaced: ReplacedPin[] = [];
    try {
      if (!options.pinDir) object.unpinAll();
      object.restrictPrograms(options.programs);
      replaced = object.setAsideChangedPins();
      object.loadWithLog(log);
      object.replacedPins = replaced.map((r) => {
        const map = object.map(r.name);
        return carryOver(r, map, options.migrations?.[r.name]?.(map));
      });
    } catch (error) {
      for (const r of replaced) restore(r);
      object.close();
      throw error;
    }
    return object;
  }

  /** Pins whose layout differs from this object's maps are moved aside (see pin-migration.ts). */
  private setAsideChangedPins(): ReplacedPin[] {
    const replaced: ReplacedPin[] = [];
    for (const map of walk(this.handle, bpf.objectNextMap)) {
      const pinPath = bpf.mapPinPath(map);
      if (!pinPath) continue;
      const wanted = {
        type: bpf.mapType(map),
        keySize: bpf.mapKeySize(map),
        valueSize: bpf.mapValueSize(map),
        maxEntries: bpf.mapMaxEntries(map),
      };
      const r = setAsideIfIncompatible(bpf.mapName(map), pinPath, wanted);
      if (r) replaced.push(r);
    }
    return replaced;
  }

  /** Without a pin directory nothing is pinned: the maps live as long as this object. */
  private unpinAll(): void {
    for (const map of walk(this.handle, bpf.objectNextMap)) {
      checkLibbpf(bpf.mapSetPinPath(map, null), 'unpin map', `${bpf.mapName(map)} in ${this.path}`);
    }
  }

  private restrictPrograms(wanted: readonly string[] | undefined): void {
    if (!wanted) return;
    const available = this.programNames();
    for (const name of wanted) {
      if (!available.includes(name)) this.throwMissing('program', name, available);
    }
    for (const prog of walk(this.handle, bpf.objectNextProgram)) {
      checkLibbpf(
        bpf.programSetAutoload(prog, wanted.includes(bpf.programName(prog))),
        'select program',
        `${bpf.programName(prog)} in ${this.path}`,
      );
    }
  }

  private loadWithLog(log: Buffer): void {
    const result = bpf.objectLoad(this.handle);
    if (result < 0) {
      throw new BpfError('load BPF object', this.path, -result, undefined, readVerifierLog(log) || undefined);
    }
  }

  programNames(): string[] {
    return [...walk(this.handle, bpf.objectNextProgram)].map((p) => bpf.programName(p));
  }

  mapNames(): string[] {
    return [...walk(this.handle, bpf.objectNextMap)].map((m) => bpf.mapName(m));
  }

  program(name: string): BpfProgram {
    this.assertOpen();
    const prog = bpf.objectFindProgram(this.handle, name);
    if (!prog) this.throwMissing('program', name, this.programNames());
    const fd = bpf.programFd(prog);
    if (fd < 0)
      throw new BpfError('get program fd', `${name} in ${this.path}`, -fd, 'program was not loaded');
    return { name, fd };
  }

  map(name: string): BpfMapInfo {
    this.assertOpen();
    const map = bpf.objectFindMap(this.handle, name);
    if (!map) this.throwMissing('map', name, this.mapNames());
    return {
      name,
      fd: checkLibbpf(bpf.mapFd(map), 'get map fd', `${name} in ${this.path}`),
      type: bpf.mapType(map),
      keySize: bpf.mapKeySize(map),
      valueSize: bpf.mapValueSize(map),
      maxEntries: bpf.mapMaxEntries(map),
    };
  }

  /** Closes our fds. Pinned maps and links stay in the kernel. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    bpf.objectClose(this.handle);
  }

  private assertOpen(): void {
    if (this.closed) throw new BpfError('use BPF object', this.path, 9, 'object is closed');
  }

  private throwMissing(kind: string, name: string, available: string[]): never {
    throw new BpfError(
      `find ${kind}`,
      `${name} in ${this.path}`,
      2,
      `${kind}s in object: ${available.join(', ')}`,
    );
  }
}

function readVerifierLog(log: Buffer): string {
  const end = log.indexOf(0);
  return log
    .subarray(0, end < 0 ? log.length : end)
    .toString('utf8')
    .trim();
}
