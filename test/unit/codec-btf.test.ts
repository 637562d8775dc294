/** The TypeScript codecs and the C map layouts must agree field for field. */
import { describe, expect, it } from 'vitest';
import { struct, u32, u64 } from '../../bpf/codec.js';
import { MAP_LAYOUTS, STRUCT_LAYOUTS } from '../../bpf/codecs/index.js';
import { Btf, layoutMismatches } from '../support/btf.js';
import { BPF_OBJECT } from '../support/paths.js';

describe.each(MAP_LAYOUTS.map((l) => [`${l.object}/${l.map}`, l] as const))(
  'map layout %s',
  (_name, layout) => {
    const btf = new Btf(BPF_OBJECT(layout.object));
    for (const side of ['key', 'value'] as const) {
      it(`${side} matches the C type`, () => {
        expect(layoutMismatches(btf, btf.mapType(layout.map, side), layout[side])).toEqual([]);
      });
    }
  },
);

describe.each(STRUCT_LAYOUTS.map((l) => [l.codec.cType, l] as const))('%s', (cType, layout) => {
  it('matches the C struct', () => {
    const btf = new Btf(BPF_OBJECT(layout.object));
    expect(layoutMismatches(btf, btf.struct(cType.replace(/^struct /, '')), layout.codec)).toEqual([]);
  });
});

describe('the layout check', () => {
  const btf = new Btf(BPF_OBJECT('counters'));
  const cType = btf.struct('nw_packet_counter');

  it('reports swapped fields of the same size', () => {
    const swapped = struct('nw_packet_counter', { bytes: u64, packets: u64 });
    expect(layoutMismatches(btf, cType, swapped)).toEqual([
      'field 0: C packets@0+8, codec bytes@0+8',
      'field 1: C bytes@8+8, codec packets@8+8',
    ]);
  });

  it('reports a narrower field, the shifted offsets and the size', () => {
    const narrow = struct('nw_packet_counter', { packets: u32, bytes: u64 });
    expect(layoutMismatches(btf, cType, narrow)).toEqual(['field 0: C packets@0+8, codec packets@0+4']);
    const short = struct('nw_packet_counter', { packets: u64 });
    expect(layoutMismatches(btf, cType, short)).toEqual([
      'size: C 16, codec 8',
      'field 1: C bytes@8+8, codec (none)',
    ]);
  });
});
