/**
 * Upgrades across a pinned map's layout change, on the real kernel: a reload of
 * the same objects replaces nothing (conntrack and the responder survive a
 * restart), and an `nw_l2_owned` pinned with the earlier 8-byte entry is set
 * aside and its entries carried into the new 16-byte map with no deadline.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L2_MAPS, l2Entry, l2Key } from '../../bpf/codecs/l2.js';
import {
  BpfMap,
  BpfObject,
  createMap,
  openPinnedMap,
  restore,
  setAsideIfIncompatible,
} from '../../bpf/index.js';
import { bpf } from '../../bpf/native/ffi.js';
import { Datapath, RETIRED_PINS } from '../../daemon/datapath/actuator.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { BPF_OBJECT } from '../support/paths.js';

const BPF_MAP_TYPE_HASH = 1;
const BPF_F_NO_PREALLOC = 1;

/** `nw_l2_owned` as a daemon of the earlier release created it: value = mac[6] + flags. */
const earlierResponderMap = () =>
  createMap({
    type: BPF_MAP_TYPE_HASH,
    name: L2_MAPS.owned,
    keySize: l2Key.size,
    valueSize: 8,
    maxEntries: 65536,
    flags: BPF_F_NO_PREALLOC,
  });

let bpffs: TempBpffs;
beforeAll(() => {
  bpffs = mountTempBpffs();
});
afterAll(() => bpffs?.destroy());

describe('pinned maps across restarts and upgrades', () => {
  it('a second load of every object adopts every pin and replaces none', () => {
    const pinDir = join(bpffs.dir, 'restart');
    const names = ['counters', 'firewall', 'l2_responder', 'dsr'];
    const first = names.map((n) => BpfObject.load(BPF_OBJECT(n), { pinDir }));
    for (const o of first) o.close();
    const second = names.map((n) => BpfObject.load(BPF_OBJECT(n), { pinDir }));
    try {
      expect(second.flatMap((o) => o.replacedPins)).toEqual([]);
      expect(second.flatMap((o) => o.mapNames()).length).toBeGreaterThan(10);
    } finally {
      for (const o of second) o.close();
    }
  });

  it('carries the responder entries of the earlier 8-byte layout into the new map', () => {
    const pinDir = join(bpffs.dir, 'upgrade');
    const first = BpfObject.load(BPF_OBJECT('counters'), { pinDir });
    first.close();
    const old = earlierResponderMap();
    const key = Buffer.alloc(l2Key.size);
    l2Key.encode({ ifindex: 7, addr: Uint8Array.from([192, 0, 2, 10, ...new Array(12).fill(0)]) }, key, 0);
    const value = Buffer.from([0x02, 0, 0, 0, 0, 0x0a, 0, 0]);
    expect(bpf.mapUpdateElem(old.fd, key, value, 0n)).toBe(0);
    const pinPath = join(pinDir, L2_MAPS.owned);
    expect(bpf.objPin(old.fd, pinPath)).toBe(0);
    old.close();

    const datapath = Datapath.open({ pinDir, tcMode: 'auto', xdpMode: 'native' });
    try {
      expect(datapath.replacedPins()).toEqual([
        {
          name: L2_MAPS.owned,
          pinPath,
          previous: { type: BPF_MAP_TYPE_HASH, keySize: l2Key.size, valueSize: 8, maxEntries: 65536 },
          carried: 1,
        },
      ]);
      const pinned = openPinnedMap(pinPath);
      expect(pinned.valueSize).toBe(l2Entry.size);
      pinned.close();
      expect(existsSync(`${pinPath}_replaced`)).toBe(false);
      const owned = new BpfMap(datapath.objects.l2_responder.map(L2_MAPS.owned), l2Key, l2Entry);
      const entries = [...owned.entries()];
      expect(entries).toHaveLength(1);
      expect(entries[0]![0].ifindex).toBe(7);
      expect([...entries[0]![1].mac]).toEqual([0x02, 0, 0, 0, 0, 0x0a]);
      expect(entries[0]![1].expires_ns).toBe(0n);
    } finally {
      datapath.close();
    }
  });

  it('puts the old pin back when the load fails', () => {
    const pinDir = join(bpffs.dir, 'failed');
    BpfObject.load(BPF_OBJECT('counters'), { pinDir }).close();
    const old = earlierResponderMap();
    const pinPath = join(pinDir, L2_MAPS.owned);
    expect(bpf.objPin(old.fd, pinPath)).toBe(0);
    old.close();
    const wanted = {
      type: BPF_MAP_TYPE_HASH,
      keySize: l2Key.size,
      valueSize: l2Entry.size,
      maxEntries: 65536,
    };
    const replaced = setAsideIfIncompatible(L2_MAPS.owned, pinPath, wanted);
    expect(replaced?.previous.valueSize).toBe(8);
    expect(existsSync(pinPath)).toBe(false);
    restore(replaced!);
    const pinned = openPinnedMap(pinPath);
    expect(pinned.valueSize).toBe(8);
    pinned.close();
    // The same layout is left where it is.
    expect(setAsideIfIncompatible(L2_MAPS.owned, pinPath, { ...wanted, valueSize: 8 })).toBeUndefined();
  });

  it('removes the pins of maps this release retired when the datapath opens', () => {
    const pinDir = join(bpffs.dir, 'retired');
    BpfObject.load(BPF_OBJECT('counters'), { pinDir }).close();
    for (const name of RETIRED_PINS) {
      const old = createMap({ type: BPF_MAP_TYPE_HASH, name, keySize: 4, valueSize: 4, maxEntries: 1 });
      expect(bpf.objPin(old.fd, join(pinDir, name))).toBe(0);
      old.close();
    }
    const datapath = Datapath.open({ pinDir, tcMode: 'auto', xdpMode: 'native' });
    try {
      for (const name of RETIRED_PINS) expect(existsSync(join(pinDir, name))).toBe(false);
    } finally {
      datapath.close();
    }
  });
});
