/**
 * Typed access to a BPF map: every key and value goes through a codec, and every
 * failure becomes a BpfError naming the map and the operation.
 */

import { readFileSync } from 'node:fs';
import type { Codec } from './codec.js';
import { BpfError, checkLibbpf } from './native/errors.js';
import { bpf, c, sizeOf } from './native/ffi.js';
import type { BpfMapInfo } from './object.js';

const ENOENT = 2;

/** bpf_map_update_elem flags. */
export const UpdateFlags = { any: 0n, noExist: 1n, exist: 2n } as const;

const PERCPU_TYPES = new Set([5, 6, 10]); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH

export class BpfMap<K, V> {
  readonly name: string;
  readonly fd: number;
  /** Per-CPU maps hold one value per possible CPU; read them with lookupPerCpu. */
  readonly perCpu: boolean;

  constructor(
    info: Pick<BpfMapInfo, 'name' | 'fd' | 'keySize' | 'valueSize'> & { type?: number },
    readonly keyCodec: Codec<K>,
    readonly valueCodec: Codec<V>,
  ) {
    this.name = info.name;
    this.fd = info.fd;
    this.perCpu = PERCPU_TYPES.has(info.type ?? -1);
    if (info.keySize !== keyCodec.size || info.valueSize !== valueCodec.size) {
      throw new BpfError(
        'open map',
        info.name,
        22,
        `codec sizes key=${keyCodec.size} value=${valueCodec.size} but map has key=${info.keySize} value=${info.valueSize}`,
      );
    }
  }

  lookup(key: K): V | undefined {
    // The kernel would write one value per CPU into a one-value buffer.
    if (this.perCpu) throw new BpfError('lookup in map', this.name, 22, 'per-CPU map: use lookupPerCpu');
    const value = Buffer.alloc(this.valueCodec.size);
    const result = bpf.mapLookupElem(this.fd, this.encodeKey(key), value);
    if (result === -ENOENT) return undefined;
    checkLibbpf(result, 'lookup in map', this.name);
    return this.valueCodec.decode(value, 0);
  }

  /** One value per possible CPU. */
  lookupPerCpu(key: K): V[] | undefined {
    const cpus = possibleCpus();
    const stride = Math.ceil(this.valueCodec.size / 8) * 8;
    const values = Buffer.alloc(stride * cpus);
    const result = bpf.mapLookupElem(this.fd, this.encodeKey(key), values);
    if (result === -ENOENT) return undefined;
    checkLibbpf(result, 'lookup in map', this.name);
    return Array.from({ length: cpus }, (_, cpu) => this.valueCodec.decode(values, cpu * stride));
  }

  update(key: K, value: V, flags: bigint = UpdateFlags.any): void {
    if (this.perCpu) throw new BpfError('update map', this.name, 22, 'per-CPU map: not supported yet');
    const valueBuf = Buffer.alloc(this.valueCodec.size);
    this.valueCodec.encode(value, valueBuf, 0);
    checkLibbpf(bpf.mapUpdateElem(this.fd, this.encodeKey(key), valueBuf, flags), 'update map', this.name);
  }

  /** Returns false when the key was not there. */
  delete(key: K): boolean {
    const result = bpf.mapDeleteElem(this.fd, this.encodeKey(key));
    if (result === -ENOENT) return false;
    checkLibbpf(result, 'delete from map', this.name);
    return true;
  }

  /** Every key, walked with get_next_key. Keys deleted during the walk may restart it (kernel semantics). */
  *keys(): Generator<K> {
    let previous: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keyCodec.size);
      const result = bpf.mapGetNextKey(this.fd, previous, next);
      if (result === -ENOENT) return;
      checkLibbpf(result, 'iterate map', this.name);
      yield this.keyCodec.decode(next, 0);
      previous = next;
    }
  }

  *entries(): Generator<[K, V]> {
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value !== undefined) yield [key, value];
    }
  }

  /**
   * update() for a key and value already in the map's byte layout (as the codecs encode
   * them): for callers that build many entries straight into buffers.
   */
  updateRaw(key: Buffer, value: Buffer, flags: bigint = UpdateFlags.any): void {
    if (this.perCpu) throw new BpfError('update map', this.name, 22, 'per-CPU map: not supported yet');
    if (key.length !== this.keyCodec.size || value.length !== this.valueCodec.size) {
      throw new BpfError(
        'update map',
        this.name,
        22,
        `raw entry of key=${key.length} value=${value.length} bytes, map has key=${this.keyCodec.size} value=${this.valueCodec.size}`,
      );
    }
    checkLibbpf(bpf.mapUpdateElem(this.fd, key, value, flags), 'update map', this.name);
  }

  /** Writes many entries in one syscall per chunk. */
  updateBatch(entries: readonly (readonly [K, V])[], flags: bigint = UpdateFlags.any): void {
    if (entries.length === 0) return;
    if (this.perCpu) throw new BpfError('batch update map', this.name, 22, 'per-CPU map: not supported yet');
    const keySize = this.keyCodec.size;
    const valueSize = this.valueCodec.size;
    const keys = Buffer.alloc(entries.length * keySize);
    const values = Buffer.alloc(entries.length * valueSize);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      this.keyCodec.encode(entry[0], keys, i * keySize);
      this.valueCodec.encode(entry[1], values, i * valueSize);
    }
    this.writeBatch(keys, values, entries.length, flags);
  }

  /**
   * updateBatch() for `count` entries already encoded back to back in `keys` and `values`
   * (the map's key and value layout, padding zeroed), in one syscall.
   */
  updateBatchRaw(keys: Buffer, values: Buffer, count: number, flags: bigint = UpdateFlags.any): void {
    if (count === 0) return;
    if (this.perCpu) throw new BpfError('batch update map', this.name, 22, 'per-CPU map: not supported yet');
    if (
      !Number.isInteger(count) ||
      count < 0 ||
      keys.length < count * this.keyCodec.size ||
      values.length < count * this.valueCodec.size
    ) {
      throw new BpfError(
        'batch update map',
        this.name,
        22,
        `${count} raw entries need ${count * this.keyCodec.size} key and ${count * this.valueCodec.size} value bytes, got ${keys.length} and ${values.length}`,
      );
    }
    this.writeBatch(keys, values, count, flags);
  }

  private writeBatch(keys: Buffer, values: Buffer, n: number, flags: bigint): void {
    const count: [number] = [n];
    const result = bpf.mapUpdateBatch(this.fd, keys, values, count, this.batchOpts(flags));
    checkLibbpf(result, 'batch update map', this.name);
    if (count[0] !== n) {
      throw new BpfError('batch update map', this.name, 5, `wrote ${count[0]} of ${n} entries`);
    }
  }

  deleteBatch(keys: readonly K[]): void {
    if (keys.length === 0) return;
    const keyBuf = Buffer.alloc(keys.length * this.keyCodec.size);
    keys.forEach((key, i) => {
      this.keyCodec.encode(key, keyBuf, i * this.keyCodec.size);
    });
    const count: [number] = [keys.length];
    checkLibbpf(
      bpf.mapDeleteBatch(this.fd, keyBuf, count, this.batchOpts(0n)),
      'batch delete from map',
      this.name,
    );
  }

  /** Reads the whole map in chunks of `chunk` entries. Hash-like maps only (arrays: use entries()). */
  lookupBatch(chunk = 4096): [K, V][] {
    if (this.perCpu)
      throw new BpfError('batch lookup in map', this.name, 22, 'per-CPU map: use lookupPerCpu');
    const out: [K, V][] = [];
    const keys = Buffer.alloc(chunk * this.keyCodec.size);
    const values = Buffer.alloc(chunk * this.valueCodec.size);
    // The batch cursor is opaque to us; the kernel documents it as at least key-sized.
    let inBatch: Buffer | null = null;
    const outBatch = Buffer.alloc(Math.max(8, this.keyCodec.size));
    for (;;) {
      const count: [number] = [chunk];
      const result = bpf.mapLookupBatch(this.fd, inBatch, outBatch, keys, values, count, this.batchOpts(0n));
      if (result < 0 && result !== -ENOENT) checkLibbpf(result, 'batch lookup in map', this.name);
      for (let i = 0; i < count[0]; i++) {
        out.push([
          this.keyCodec.decode(keys, i * this.keyCodec.size),
          this.valueCodec.decode(values, i * this.valueCodec.size),
        ]);
      }
      if (result === -ENOENT) return out;
      inBatch = Buffer.from(outBatch);
    }
  }

  private encodeKey(key: K): Buffer {
    const buf = Buffer.alloc(this.keyCodec.size);
    this.keyCodec.encode(key, buf, 0);
    return buf;
  }

  private batchOpts(elemFlags: bigint) {
    return { sz: sizeOf.mapBatchOpts, elem_flags: elemFlags, flags: 0n };
  }
}

/** enum bpf_map_type values the daemon creates itself. */
export const MapType = { hash: 1, array: 2, percpuArray: 6, lpmTrie: 11 } as const;
export const BPF_F_NO_PREALLOC = 1;
/** On an inner-map template: instances may differ in max_entries. */
export const BPF_F_INNER_MAP = 1 << 12;

export interface OwnedMap extends BpfMapInfo {
  readonly id: number;
  close(): void;
}

export interface CreateMapOptions {
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
}

/**
 * Creates a map that no object owns, such as a fresh inner map for a new policy
 * generation. It lives while an fd or an outer map holds it.
 */
export function createMap(options: CreateMapOptions): OwnedMap {
  const fd = bpf.mapCreate(
    options.type,
    options.name,
    options.keySize,
    options.valueSize,
    options.maxEntries,
    {
      sz: sizeOf.mapCreateOpts,
      btf_fd: 0,
      btf_key_type_id: 0,
      btf_value_type_id: 0,
      btf_vmlinux_value_type_id: 0,
      inner_map_fd: 0,
      map_flags: options.flags ?? 0,
      map_extra: 0n,
      numa_node: 0,
      map_ifindex: 0,
    },
  );
  checkLibbpf(fd, 'create map', options.name);
  return describeMapFd(fd, options.name);
}

/** Opens a map by its kernel id, e.g. the inner map an outer map currently holds. */
export function openMapById(id: number): OwnedMap {
  const fd = bpf.mapGetFdById(id);
  checkLibbpf(fd, 'open map by id', String(id));
  return describeMapFd(fd, `map id ${id}`);
}

/** Number of possible CPUs: per-CPU map values hold one slot for each. */
export function possibleCpus(): number {
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  return text.split(',').reduce((n, range) => {
    const [lo, hi] = range.split('-').map(Number);
    return n + (hi === undefined ? 1 : hi - lo! + 1);
  }, 0);
}

export interface PinnedMap extends BpfMapInfo {
  /** The kernel's id of the map: the same id after a restart means the map was adopted, not recreated. */
  readonly id: number;
  close(): void;
}

/** Opens a map pinned by a (possibly other) process, such as the daemon's, by its path. */
export function openPinnedMap(path: string): PinnedMap {
  const fd = bpf.objGet(path);
  if (fd < 0) throw new BpfError('open pinned map', path, -fd);
  return describeMapFd(fd, path);
}

function describeMapFd(fd: number, path: string): PinnedMap {
  // struct bpf_map_info: type, id, key_size, value_size, max_entries, map_flags, name[16].
  const info = Buffer.alloc(128);
  const len: [number] = [info.length];
  const result = bpf.objGetInfoByFd(fd, info, len);
  if (result < 0) {
    c.close(fd);
    throw new BpfError('read map info', path, -result);
  }
  const nameBytes = info.subarray(24, 40);
  const nul = nameBytes.indexOf(0);
  return {
    name: nameBytes.subarray(0, nul < 0 ? 16 : nul).toString('utf8'),
    fd,
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    close: () => c.close(fd),
  };
}
