/** Reads struct layouts out of a BPF object's BTF with bpftool. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
}

const BPFTOOL = ['/usr/sbin/bpftool', '/sbin/bpftool', 'bpftool'].find(
  (p) => p === 'bpftool' || existsSync(p),
)!;

export class Btf {
  private readonly byId = new Map<number, BtfType>();

  constructor(objectPath: string) {
    const json = JSON.parse(
      execFileSync(BPFTOOL, ['btf', 'dump', 'file', objectPath, '-j'], { encoding: 'utf8' }),
    );
    for (const t of json.types as BtfType[]) this.byId.set(t.id, t);
  }

  type(id: number): BtfType {
    const t = this.byId.get(id);
    if (!t) throw new Error(`no BTF type ${id}`);
    return t;
  }

  /** Follows typedefs and qualifiers to the underlying type. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    while (['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT'].includes(t.kind)) t = this.type(t.type_id!);
    return t;
  }

  sizeOf(id: number): number {
    const t = this.resolve(id);
    if (t.kind === 'ARRAY') return t.nr_elems! * this.sizeOf(t.type_id!);
    if (t.size === undefined) throw new Error(`BTF type ${t.id} (${t.kind}) has no size`);
    return t.size;
  }

  struct(name: string): BtfType {
    const t = [...this.byId.values()].find((x) => x.kind === 'STRUCT' && x.name === name);
    if (!t) throw new Error(`struct ${name} not in BTF`);
    return t;
  }

  /** The key or value type of a map defined with __type(key, ...) in a .maps section. */
  mapType(mapName: string, member: 'key' | 'value'): BtfType {
    const variable = [...this.byId.values()].find((x) => x.kind === 'VAR' && x.name === mapName);
    if (!variable) throw new Error(`map ${mapName} not in BTF`);
    const def = this.resolve(variable.type_id!);
    const field = def.members?.find((m) => m.name === member);
    if (!field) throw new Error(`map ${mapName} has no __type(${member})`);
    const pointer = this.type(field.type_id);
    return this.resolve(pointer.type_id!);
  }
}

export interface CodecShape {
  size: number;
  cType: string;
  fields?: readonly { name: string; offset: number; size: number }[];
}

/** Every difference between a BTF type and a codec, as readable lines; empty when they agree. */
export function layoutMismatches(btf: Btf, cType: BtfType, codec: CodecShape): string[] {
  const problems: string[] = [];
  const size = btf.sizeOf(cType.id);
  if (size !== codec.size) problems.push(`size: C ${size}, codec ${codec.size}`);
  if (!codec.fields) return problems;
  if (`struct ${cType.name}` !== codec.cType)
    problems.push(`type: C struct ${cType.name}, codec ${codec.cType}`);
  const members = cType.members ?? [];
  const count = Math.max(members.length, codec.fields.length);
  for (let i = 0; i < count; i++) {
    const m = members[i];
    const f = codec.fields[i];
    const c = m ? `${m.name}@${m.bits_offset / 8}+${btf.sizeOf(m.type_id)}` : '(none)';
    // TypeScript fields are the C names in camelCase.
    const t = f ? `${snakeCase(f.name)}@${f.offset}+${f.size}` : '(none)';
    if (c !== t) problems.push(`field ${i}: C ${c}, codec ${t}`);
  }
  return problems;
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
