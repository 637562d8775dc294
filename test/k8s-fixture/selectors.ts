/**
 * Label and field selectors in their query-string form, as the API server
 * parses them: `a=b,c!=d,e in (x,y),f notin (z),g,!h` and `metadata.name=n`.
 */

type LabelRequirement =
  | { key: string; op: 'eq' | 'ne'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'absent' };

export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

/** Splits on commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms.map((t) => t.trim()).filter((t) => t !== '');
}

const LABEL_KEY = /^([a-z0-9A-Z][-a-zA-Z0-9_.]*\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;

function checkKey(key: string, term: string): string {
  if (!LABEL_KEY.test(key)) throw new SelectorError(`invalid label key "${key}" in "${term}"`);
  return key;
}

export function parseLabelSelector(text: string): LabelRequirement[] {
  return splitTerms(text).map((term): LabelRequirement => {
    const set = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (set) {
      const values = set[3]!
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      return { key: checkKey(set[1]!, term), op: set[2] as 'in' | 'notin', values };
    }
    const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (cmp) return { key: checkKey(cmp[1]!, term), op: cmp[2] === '!=' ? 'ne' : 'eq', value: cmp[3]! };
    if (term.startsWith('!')) return { key: checkKey(term.slice(1).trim(), term), op: 'absent' };
    return { key: checkKey(term, term), op: 'exists' };
  });
}

export function matchesLabelSelector(
  requirements: readonly LabelRequirement[],
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case 'eq':
        return has && l[r.key] === r.value;
      case 'ne':
        return !has || l[r.key] !== r.value;
      case 'in':
        return has && r.values.includes(l[r.key]!);
      case 'notin':
        return !has || !r.values.includes(l[r.key]!);
      case 'exists':
        return has;
      case 'absent':
        return !has;
    }
    return false;
  });
}

export interface FieldRequirement {
  path: string;
  op: 'eq' | 'ne';
  value: string;
}

export function parseFieldSelector(text: string, supported: readonly string[]): FieldRequirement[] {
  return splitTerms(text).map((term) => {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (!m) throw new SelectorError(`invalid field selector "${term}"`);
    // The real server answers 400 for fields that a type does not index; so does the fixture.
    if (!supported.includes(m[1]!)) throw new SelectorError(`field label not supported: ${m[1]}`);
    return { path: m[1]!, op: m[2] === '!=' ? 'ne' : 'eq', value: m[3]! };
  });
}

function fieldValue(object: unknown, path: string): string {
  let at: unknown = object;
  for (const part of path.split('.')) {
    if (at === null || typeof at !== 'object') return '';
    at = (at as Record<string, unknown>)[part];
  }
  return at === undefined || at === null ? '' : String(at);
}

export function matchesFieldSelector(requirements: readonly FieldRequirement[], object: unknown): boolean {
  return requirements.every((r) => (fieldValue(object, r.path) === r.value) === (r.op === 'eq'));
}
