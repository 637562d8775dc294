/**
 * The libbpf bridge against the real kernel: attach and detach on a veth inside
 * a lab namespace with ping traffic counted by the program, the tc clsact
 * fallback, map operations, the ring buffer, BPF_PROG_TEST_RUN, and every
 * failure path with its typed error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CounterSlot, packetCounter, packetCounterKey } from '../../bpf/codecs/packet-counters.js';
import {
  attachTc,
  attachXdp,
  BpfError,
  BpfMap,
  BpfObject,
  bytes,
  detachPinnedLink,
  detachTcFilter,
  inNetns,
  openPinnedMap,
  pinnedLinkInfo,
  queryTcFilter,
  RingBufferReader,
  struct,
  testRun,
  u8,
  u16,
  u32,
  u64,
} from '../../bpf/index.js';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { BPF_OBJECT, FIXTURE_BPF } from '../support/paths.js';

let lab: Lab;
let node: Host;
let peer: Host;
let bpffs: TempBpffs;
let counters: BpfObject;
let counterMap: BpfMap<number, { packets: bigint; bytes: bigint }>;

const NODE_IP = '10.77.0.1';

async function ping(count: number): Promise<void> {
  await peer.exec(['ping', '-c', String(count), '-i', '0.05', '-W', '1', NODE_IP]);
}

function packets(slot: number): bigint {
  return counterMap.lookup(slot)?.packets ?? 0n;
}

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  node = await lab.host('node');
  peer = await lab.host('peer');
  await lab.link(node, peer, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: [`${NODE_IP}/24`],
    bAddrs: ['10.77.0.2/24'],
  });
  counters = BpfObject.load(BPF_OBJECT('counters'), { pinDir: `${bpffs.dir}/bridge` });
  counterMap = new BpfMap(counters.map('nw_pkt_counters'), packetCounterKey, packetCounter);
});

afterAll(async () => {
  counters?.close();
  await lab?.destroy();
  bpffs?.destroy();
});

describe('XDP', () => {
  it('attaches in native mode, counts ping, and stops counting once detached', async () => {
    const pinPath = `${bpffs.dir}/links/xdp-eth0`;
    const attachment = inNetns(node.netns, () =>
      attachXdp({ program: counters.program('nw_xdp_count'), ifname: 'eth0', mode: 'native', pinPath }),
    );
    expect(attachment).toMatchObject({ kind: 'xdp', xdpMode: 'native', adopted: false, ifname: 'eth0' });
    const before = packets(CounterSlot.xdp);
    await ping(3);
    // Echo requests plus whatever ARP the exchange needed.
    expect(packets(CounterSlot.xdp) - before).toBeGreaterThanOrEqual(3n);

    expect(detachPinnedLink(pinPath)).toBe(true);
    const afterDetach = packets(CounterSlot.xdp);
    await ping(2);
    expect(packets(CounterSlot.xdp)).toBe(afterDetach);
  });

  it('attaches in generic mode when asked to', async () => {
    const pinPath = `${bpffs.dir}/links/xdp-generic-eth0`;
    const attachment = inNetns(node.netns, () =>
      attachXdp({ program: counters.program('nw_xdp_count'), ifname: 'eth0', mode: 'generic', pinPath }),
    );
    expect(attachment.xdpMode).toBe('generic');
    const before = packets(CounterSlot.xdp);
    await ping(2);
    expect(packets(CounterSlot.xdp) - before).toBeGreaterThanOrEqual(2n);
    detachPinnedLink(pinPath);
  });
});

describe('tc', () => {
  it('attaches tcx ingress and egress links that count both directions, then detaches', async () => {
    const pins = { ingress: `${bpffs.dir}/links/tcx-in`, egress: `${bpffs.dir}/links/tcx-out` };
    const [ingress, egress] = inNetns(node.netns, () => [
      attachTc({
        program: counters.program('nw_tc_count_ingress'),
        ifname: 'eth0',
        direction: 'ingress',
        mode: 'tcx',
        pinPath: pins.ingress,
      }),
      attachTc({
        program: counters.program('nw_tc_count_egress'),
        ifname: 'eth0',
        direction: 'egress',
        mode: 'tcx',
        pinPath: pins.egress,
      }),
    ]);
    expect(ingress!.kind).toBe('tcx');
    expect(egress!.kind).toBe('tcx');
    const inBefore = packets(CounterSlot.tcIngress);
    const outBefore = packets(CounterSlot.tcEgress);
    await ping(3);
    expect(packets(CounterSlot.tcIngress) - inBefore).toBeGreaterThanOrEqual(3n);
    expect(packets(CounterSlot.tcEgress) - outBefore).toBeGreaterThanOrEqual(3n);

    detachPinnedLink(pins.ingress);
    detachPinnedLink(pins.egress);
    const inAfter = packets(CounterSlot.tcIngress);
    await ping(2);
    expect(packets(CounterSlot.tcIngress)).toBe(inAfter);
  });

  it('auto mode uses tcx on this kernel (6.6+)', () => {
    const pinPath = `${bpffs.dir}/links/tcx-auto`;
    const attachment = inNetns(node.netns, () =>
      attachTc({
        program: counters.program('nw_tc_count_ingress'),
        ifname: 'eth0',
        direction: 'ingress',
        mode: 'auto',
        pinPath,
      }),
    );
    expect(attachment.kind).toBe('tcx');
    expect(attachment.fallbackReason).toBeUndefined();
    detachPinnedLink(pinPath);
  });

  it('falls back to a tc clsact filter that counts traffic, is replaced in place, and detaches', async () => {
    const program = counters.program('nw_tc_count_ingress');
    const attach = () =>
      inNetns(node.netns, () =>
        attachTc({
          program,
          ifname: 'eth0',
          direction: 'ingress',
          mode: 'tc',
          pinPath: `${bpffs.dir}/unused`,
          handle: 7,
          priority: 3,
        }),
      );
    const first = attach();
    expect(first).toMatchObject({ kind: 'tc', adopted: false });
    expect(inNetns(node.netns, () => queryTcFilter('eth0', 'ingress', 7, 3))).toBeGreaterThan(0);
    const tcShow = await node.exec(['tc', 'filter', 'show', 'dev', 'eth0', 'ingress']);
    // The kernel keeps the first 15 characters of a program name.
    expect(tcShow.stdout).toContain('name nw_tc_count_ing');

    const before = packets(CounterSlot.tcIngress);
    await ping(3);
    expect(packets(CounterSlot.tcIngress) - before).toBeGreaterThanOrEqual(3n);

    // A second attach (a restarted daemon) replaces the filter rather than stacking another.
    expect(attach().adopted).toBe(true);
    const filters = (await node.exec(['tc', 'filter', 'show', 'dev', 'eth0', 'ingress'])).stdout;
    expect(filters.match(/name nw_tc_count_ing/g)).toHaveLength(1);

    expect(inNetns(node.netns, () => detachTcFilter('eth0', 'ingress', 7, 3))).toBe(true);
    expect(inNetns(node.netns, () => queryTcFilter('eth0', 'ingress', 7, 3))).toBeUndefined();
    const after = packets(CounterSlot.tcIngress);
    await ping(2);
    expect(packets(CounterSlot.tcIngress)).toBe(after);
  });
});

describe('pinning and adoption inside one process', () => {
  it('a second load of the object reuses the pinned map and its values', () => {
    counterMap.update(CounterSlot.xdp, { packets: 41n, bytes: 4100n });
    const again = BpfObject.load(BPF_OBJECT('counters'), { pinDir: `${bpffs.dir}/bridge` });
    try {
      const map = new BpfMap(again.map('nw_pkt_counters'), packetCounterKey, packetCounter);
      expect(map.lookup(CounterSlot.xdp)).toEqual({ packets: 41n, bytes: 4100n });
    } finally {
      again.close();
    }
    const pinned = openPinnedMap(`${bpffs.dir}/bridge/nw_pkt_counters`);
    try {
      expect(pinned).toMatchObject({ name: 'nw_pkt_counters', keySize: 4, valueSize: 16, maxEntries: 3 });
    } finally {
      pinned.close();
    }
  });

  it('re-attaching over a pinned link adopts it: same link id, program swapped in place', () => {
    const pinPath = `${bpffs.dir}/links/adopt`;
    const attach = (name: string) =>
      inNetns(node.netns, () =>
        attachTc({
          program: counters.program(name),
          ifname: 'eth0',
          direction: 'ingress',
          mode: 'tcx',
          pinPath,
        }),
      );
    expect(attach('nw_tc_count_ingress').adopted).toBe(false);
    const first = pinnedLinkInfo(pinPath);
    expect(attach('nw_tc_count_egress').adopted).toBe(true);
    const second = pinnedLinkInfo(pinPath);
    expect(second.id).toBe(first.id);
    expect(second.progId).not.toBe(first.progId);
    detachPinnedLink(pinPath);
  });
});

describe('maps', () => {
  interface Key {
    id: number;
    port: number;
    proto: number;
  }
  const keyCodec = struct<Key>('nw_fixture_key', { id: u32, port: u16, proto: u8 });
  const valueCodec = struct<{ hits: bigint; flags: number }>('nw_fixture_value', { hits: u64, flags: u32 });

  it('updates, looks up, iterates and deletes, one by one and in batches', () => {
    const obj = BpfObject.load(FIXTURE_BPF('bridge_fixture'));
    try {
      const map = new BpfMap(obj.map('nw_fixture_hash'), keyCodec, valueCodec);
      map.update({ id: 1, port: 22, proto: 6 }, { hits: 5n, flags: 1 });
      expect(map.lookup({ id: 1, port: 22, proto: 6 })).toEqual({ hits: 5n, flags: 1 });
      expect(map.lookup({ id: 1, port: 22, proto: 17 })).toBeUndefined();
      expect(map.delete({ id: 1, port: 22, proto: 6 })).toBe(true);
      expect(map.delete({ id: 1, port: 22, proto: 6 })).toBe(false);

      const entries = Array.from(
        { length: 10_000 },
        (_, i) =>
          [
            { id: i, port: i % 65536, proto: 6 },
            { hits: BigInt(i), flags: i % 7 },
          ] as const,
      );
      map.updateBatch(entries);
      const all = map.lookupBatch(1024);
      expect(all).toHaveLength(10_000);
      const byId = new Map(all.map(([k, v]) => [k.id, v]));
      expect(byId.get(9_999)).toEqual({ hits: 9_999n, flags: 9_999 % 7 });
      expect([...map.keys()]).toHaveLength(10_000);

      map.deleteBatch(entries.slice(0, 5_000).map(([k]) => k));
      expect(map.lookupBatch()).toHaveLength(5_000);
      expect(map.lookup({ id: 10, port: 10, proto: 6 })).toBeUndefined();
      expect(map.lookup({ id: 6000, port: 6000, proto: 6 })).toEqual({ hits: 6000n, flags: 6000 % 7 });
    } finally {
      obj.close();
    }
  });

  it('refuses a codec whose size does not match the map', () => {
    const obj = BpfObject.load(FIXTURE_BPF('bridge_fixture'));
    try {
      expect(() => new BpfMap(obj.map('nw_fixture_hash'), u32, valueCodec)).toThrowError(
        /open map nw_fixture_hash: EINVAL \(codec sizes key=4 value=16 but map has key=8 value=16\)/,
      );
    } finally {
      obj.close();
    }
  });
});

describe('ring buffer and BPF_PROG_TEST_RUN', () => {
  it('delivers every event the program emits, without blocking the event loop', async () => {
    const obj = BpfObject.load(FIXTURE_BPF('bridge_fixture'));
    const events: { len: number; seq: number; head: Uint8Array }[] = [];
    const eventCodec = struct('nw_fixture_event', { len: u32, seq: u32, head: bytes(8) });
    const reader = new RingBufferReader(
      obj.map('nw_fixture_events'),
      (data) => events.push(eventCodec.decode(data, 0)),
      {
        intervalMs: 5,
      },
    );
    try {
      reader.start();
      const program = obj.program('nw_fixture_emit');
      const packet = Buffer.alloc(60);
      packet.write('nodewarden', 0, 'ascii');
      for (let i = 0; i < 100; i++) expect(testRun(program, { packet }).retval).toBe(2 /* XDP_PASS */);
      // The timer drains the ring; meanwhile this loop keeps getting turns.
      let ticks = 0;
      while (events.length < 100 && ticks < 200) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        ticks++;
      }
      expect(events).toHaveLength(100);
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(events[0]!.len).toBe(60);
      expect(Buffer.from(events[0]!.head).toString('ascii')).toBe('nodeward');
    } finally {
      reader.close();
      obj.close();
    }
  });

  it('runs a program a million times in the kernel and reports ns per run', () => {
    const result = testRun(counters.program('nw_xdp_count'), { packet: Buffer.alloc(64), repeat: 1_000_000 });
    expect(result.retval).toBe(2);
    expect(result.durationNs).toBeGreaterThan(0);
    expect(result.output).toHaveLength(64);
  });
});

describe('failures are typed errors with readable messages', () => {
  it('a missing object file', () => {
    const error = catchError(() => BpfObject.load('/nonexistent/nodewarden.o'));
    expect(error).toBeInstanceOf(BpfError);
    expect(error).toMatchObject({
      op: 'open BPF object',
      object: '/nonexistent/nodewarden.o',
      code: 'ENOENT',
    });
    expect(error.message).toBe('open BPF object /nonexistent/nodewarden.o: ENOENT');
  });

  it('a program name that does not exist', () => {
    const error = catchError(() => counters.program('nw_no_such_program'));
    expect(error.message).toBe(
      `find program nw_no_such_program in ${BPF_OBJECT('counters')}: ENOENT (programs in object: nw_xdp_count, nw_tc_count_ingress, nw_tc_count_egress)`,
    );
    const selected = catchError(() => BpfObject.load(BPF_OBJECT('counters'), { programs: ['nw_nope'] }));
    expect(selected.message).toContain('find program nw_nope in');
  });

  it('an interface that does not exist', () => {
    const error = catchError(() =>
      inNetns(node.netns, () =>
        attachXdp({
          program: counters.program('nw_xdp_count'),
          ifname: 'nw-missing0',
          mode: 'native',
          pinPath: `${bpffs.dir}/x`,
        }),
      ),
    );
    expect(error).toMatchObject({ code: 'ENODEV' });
    expect(error.message).toBe(
      'resolve interface nw-missing0: ENODEV (no such interface in this network namespace)',
    );
  });

  it('a verifier rejection carries the verifier log', () => {
    const error = catchError(() => BpfObject.load(FIXTURE_BPF('verifier_reject')));
    expect(error).toMatchObject({ op: 'load BPF object', code: 'EACCES' });
    expect(error.verifierLog).toContain('invalid access to packet');
    expect(error.message).toContain('verifier log:\n');
    expect(error.message).toContain('R1 offset is outside of the packet');
  });

  it('an unknown pinned path', () => {
    expect(catchError(() => openPinnedMap(`${bpffs.dir}/nope`)).message).toBe(
      `open pinned map ${bpffs.dir}/nope: ENOENT`,
    );
  });
});

function catchError(fn: () => unknown): BpfError {
  try {
    fn();
  } catch (error) {
    return error as BpfError;
  }
  throw new Error('expected an error');
}
