/**
 * Host policies from CiliumClusterwideNetworkPolicy YAML: validation (schema.ts)
 * and conversion to the model (model.ts), with Cilium's semantics. Every problem
 * in every document and file is reported at once, each naming file, line,
 * object and field path.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { formatProblem, InputError, type InputProblem, type PathSegment } from '../model/input-errors.js';
import { parseYamlDocuments, type SourceDocument } from '../model/yaml.js';
import { formatCidr, parseCidr } from './cidr.js';
import { BARE_PROTOCOLS, icmpType, isHostEntity, isInertEntity } from './cilium-names.js';
import type { Direction, HostPolicy, L4Match, LabelSelector, Peer, PortProtocol, Rule } from './model.js';
import {
  AUDIT_ANNOTATION,
  type CidrRuleInput,
  type IcmpRuleInput,
  KIND,
  type LabelSelectorInput,
  type PolicyDocument,
  type PolicyMode,
  type PolicySpec,
  type PortRuleInput,
  policyDocumentSchema,
  portNumber,
} from './schema.js';

export type { PolicyMode } from './schema.js';

export interface PolicyParseOptions {
  /** `standalone`: policies from files, no pods. `kubernetes`: from or alongside the Kubernetes API. */
  mode: PolicyMode;
}

/**
 * Parses the CiliumClusterwideNetworkPolicy documents in `text` (one policy per
 * document; empty documents are skipped). Returns one HostPolicy per spec.
 * Throws an InputError listing every problem.
 */
export function parsePolicyText(file: string, text: string, options: PolicyParseOptions): HostPolicy[] {
  const result = parseText(file, text, options);
  const problems = [...result.problems, ...duplicateProblems(result.names)];
  if (problems.length > 0) throw new InputError(problems);
  return result.policies;
}

/**
 * Parses already-split YAML documents (for a source that has its own
 * documents, such as the Kubernetes watcher). Throws an InputError listing
 * every problem.
 */
export function parsePolicyDocuments(
  docs: readonly SourceDocument[],
  options: PolicyParseOptions,
): HostPolicy[] {
  const result = parseDocuments(docs, options);
  const problems = [...result.problems, ...duplicateProblems(result.names)];
  if (problems.length > 0) throw new InputError(problems);
  return result.policies;
}

/**
 * Every `*.yaml` and `*.yml` file in `dir` (not dot files, not directories),
 * in name order. A missing directory holds no policies. Problems in all files
 * are reported together; a policy name used twice is an error naming both places.
 */
export function loadPolicyDirectory(dir: string, options: PolicyParseOptions): HostPolicy[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw new InputError([{ file: dir, path: [], message: `cannot read: ${code ?? String(error)}` }]);
  }
  const files = names
    .filter((name) => !name.startsWith('.') && /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(dir, name))
    .filter((file) => {
      try {
        return !statSync(file).isDirectory();
      } catch {
        return true; // reading it reports why
      }
    });
  return parsePolicyFiles(files, options);
}

/** The named files, in the given order (`nodewarden policy check FILE...`). */
export function parsePolicyFiles(paths: readonly string[], options: PolicyParseOptions): HostPolicy[] {
  const sources: { file: string; text: string }[] = [];
  const unreadable: InputProblem[] = [];
  for (const file of paths) {
    try {
      sources.push({ file, text: readFileSync(file, 'utf8') });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      unreadable.push({ file, path: [], message: `cannot read: ${code ?? String(error)}` });
    }
  }
  return parsePolicySources(sources, options, unreadable);
}

/**
 * Texts that are not (yet) files, such as the set `nodewarden policy apply`
 * is about to install; `file` names where each would live, for messages.
 */
export function parsePolicySources(
  sources: readonly { file: string; text: string }[],
  options: PolicyParseOptions,
  earlierProblems: readonly InputProblem[] = [],
): HostPolicy[] {
  const policies: HostPolicy[] = [];
  const problems: InputProblem[] = [...earlierProblems];
  const names: NameSite[] = [];
  for (const { file, text } of sources) {
    const result = parseText(file, text, options);
    policies.push(...result.policies);
    problems.push(...result.problems);
    names.push(...result.names);
  }
  problems.push(...duplicateProblems(names));
  if (problems.length > 0) throw new InputError(problems);
  return policies;
}

// ---------------------------------------------------------------------------

interface NameSite {
  name: string;
  file: string;
  object: string;
  line?: number;
}

interface ParseResult {
  policies: HostPolicy[];
  problems: InputProblem[];
  names: NameSite[];
}

function parseText(file: string, text: string, options: PolicyParseOptions): ParseResult {
  let docs: SourceDocument[];
  try {
    docs = parseYamlDocuments(file, text);
  } catch (error) {
    if (error instanceof InputError) return { policies: [], problems: [...error.problems], names: [] };
    throw error;
  }
  return parseDocuments(docs, options);
}

const schemas = new Map<PolicyMode, ReturnType<typeof policyDocumentSchema>>();

function schemaFor(mode: PolicyMode) {
  let schema = schemas.get(mode);
  if (!schema) {
    schema = policyDocumentSchema(mode);
    schemas.set(mode, schema);
  }
  return schema;
}

function parseDocuments(docs: readonly SourceDocument[], options: PolicyParseOptions): ParseResult {
  const out: ParseResult = { policies: [], problems: [], names: [] };
  for (const doc of docs) {
    const name = rawName(doc.value);
    const object = name !== undefined ? `${KIND}/${name}` : `document ${doc.index + 1}`;
    if (name !== undefined)
      out.names.push({ name, file: doc.file, object, line: doc.lineOf(['metadata', 'name']) });
    const result = schemaFor(options.mode).safeParse(doc.value);
    if (!result.success) {
      const problems = result.error.issues.flatMap((issue) => issueProblems(doc, object, issue));
      // Stable: problems on one line keep zod's order.
      problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
      out.problems.push(...problems);
      continue;
    }
    out.policies.push(...convertDocument(doc, object, result.data));
  }
  return out;
}

function rawName(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const metadata = (value as { metadata?: unknown }).metadata;
  if (typeof metadata !== 'object' || metadata === null) return undefined;
  const name = (metadata as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** The line of the field, or of its nearest ancestor that is in the document (for a missing field). */
function lineNear(doc: SourceDocument, path: readonly PathSegment[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const line = doc.lineOf(path.slice(0, n));
    if (line !== undefined) return line;
  }
  return undefined;
}

function issueProblems(doc: SourceDocument, object: string, issue: z.core.$ZodIssue): InputProblem[] {
  const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
  const problem = (at: PathSegment[], message: string): InputProblem => ({
    file: doc.file,
    object,
    line: lineNear(doc, at),
    path: at,
    message,
  });
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => problem([...path, key], 'unknown field; nodewarden does not support it'));
  }
  if (issue.code === 'invalid_key') {
    // A record key failed its own checks: report those, on the key.
    return issue.issues.map((inner) => problem(path, inner.message));
  }
  return [problem(path, issue.message)];
}

function duplicateProblems(sites: readonly NameSite[]): InputProblem[] {
  const first = new Map<string, NameSite>();
  const problems: InputProblem[] = [];
  for (const site of sites) {
    const seen = first.get(site.name);
    if (!seen) {
      first.set(site.name, site);
      continue;
    }
    const where = seen.line ? `${seen.file}:${seen.line}` : seen.file;
    problems.push({
      file: site.file,
      object: site.object,
      line: site.line,
      path: ['metadata', 'name'],
      message: `duplicate policy name "${site.name}": also defined in ${where}`,
    });
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Conversion of a validated document to the model

function convertDocument(doc: SourceDocument, object: string, data: PolicyDocument): HostPolicy[] {
  const name = data.metadata.name;
  const audit = data.metadata.annotations?.[AUDIT_ANNOTATION] === 'true';
  const policies: HostPolicy[] = [];
  if (data.spec) policies.push(new SpecConverter(doc, object).convert(data.spec, ['spec'], name, audit));
  (data.specs ?? []).forEach((spec, i) => {
    policies.push(new SpecConverter(doc, object).convert(spec, ['specs', i], `${name}/specs[${i}]`, audit));
  });
  return policies;
}

const PEER_FIELDS = {
  ingress: { endpoints: 'fromEndpoints', cidr: 'fromCIDR', cidrSet: 'fromCIDRSet', entities: 'fromEntities' },
  egress: { endpoints: 'toEndpoints', cidr: 'toCIDR', cidrSet: 'toCIDRSet', entities: 'toEntities' },
} as const;

/** A rule as validated; the peer field names depend on the direction. */
interface RuleInput {
  toPorts?: PortRuleInput[];
  icmps?: IcmpRuleInput[];
  [field: string]: unknown;
}

class SpecConverter {
  private readonly warnings: string[] = [];

  constructor(
    private readonly doc: SourceDocument,
    private readonly object: string,
  ) {}

  private warn(path: readonly PathSegment[], message: string): void {
    this.warnings.push(
      formatProblem({
        file: this.doc.file,
        object: this.object,
        line: lineNear(this.doc, path),
        path,
        message,
      }),
    );
  }

  convert(spec: PolicySpec, at: PathSegment[], name: string, audit: boolean): HostPolicy {
    const rules = (direction: Direction, deny: boolean): Rule[] => {
      const field = deny ? `${direction}Deny` : direction;
      const list = (spec[field as keyof PolicySpec] as RuleInput[] | undefined) ?? [];
      return list.map((rule, index) => this.rule(rule, [...at, field, index], index, direction));
    };
    const ingress = rules('ingress', false);
    const ingressDeny = rules('ingress', true);
    const egress = rules('egress', false);
    const egressDeny = rules('egress', true);
    return {
      name,
      source: this.doc.file,
      audit,
      nodeSelector: selector(spec.nodeSelector!),
      ingress,
      ingressDeny,
      egress,
      egressDeny,
      defaultDeny: {
        ingress: this.defaultDeny(spec, at, 'ingress'),
        egress: this.defaultDeny(spec, at, 'egress'),
      },
      warnings: this.warnings,
    };
  }

  /**
   * Cilium: a direction is default-deny when the spec has at least one rule
   * for it (allow or deny) and enableDefaultDeny does not turn it off. An
   * empty list is no rule, and enableDefaultDeny alone enables nothing.
   */
  private defaultDeny(spec: PolicySpec, at: PathSegment[], direction: Direction): boolean {
    const allow = spec[direction];
    const deny = spec[`${direction}Deny`];
    const hasRules = (allow?.length ?? 0) > 0 || (deny?.length ?? 0) > 0;
    const explicit = spec.enableDefaultDeny?.[direction] ?? undefined;
    if (!hasRules) {
      for (const [field, rules] of [
        [direction, allow],
        [`${direction}Deny`, deny],
      ] as const) {
        if (rules !== undefined) {
          this.warn(
            [...at, field],
            `an empty list: as in Cilium, it does not make ${direction} default-deny; write \`${field}: [{}]\` to deny all ${direction}`,
          );
        }
      }
      if (explicit === true) {
        this.warn(
          [...at, 'enableDefaultDeny', direction],
          `has no effect without ${direction} or ${direction}Deny rules (as in Cilium); add \`${direction}: [{}]\` to deny all ${direction}`,
        );
      }
    }
    return hasRules && (explicit ?? true);
  }

  private rule(rule: RuleInput, at: PathSegment[], index: number, direction: Direction): Rule {
    const fields = PEER_FIELDS[direction];
    const peers: Peer[] = [];
    let namesPeers = false;

    const cidrs = (rule[fields.cidr] as string[] | undefined) ?? [];
    cidrs.forEach((text, i) => {
      namesPeers = true;
      peers.push({ kind: 'cidr', cidr: this.cidr(text, [...at, fields.cidr, i]), except: [] });
    });

    const cidrSets = (rule[fields.cidrSet] as CidrRuleInput[] | undefined) ?? [];
    cidrSets.forEach((set, i) => {
      namesPeers = true;
      const setAt = [...at, fields.cidrSet, i];
      const except = (set.except ?? []).map((text, j) => this.cidr(text, [...setAt, 'except', j]));
      peers.push({ kind: 'cidr', cidr: this.cidr(set.cidr!, [...setAt, 'cidr']), except: unique(except) });
    });

    const inert: number[] = [];
    const entities = (rule[fields.entities] as string[] | undefined) ?? [];
    entities.forEach((name, i) => {
      namesPeers = true;
      if (isHostEntity(name)) peers.push({ kind: 'entity', entity: name });
      else if (isInertEntity(name)) inert.push(i); // deny rules reject them in the schema
      // `none` is Cilium's entity that never exists: it matches nothing, as asked.
    });

    const endpoints = (rule[fields.endpoints] as LabelSelectorInput[] | undefined) ?? [];
    for (const s of endpoints) {
      namesPeers = true;
      peers.push({ kind: 'endpoints', selector: selector(s) });
    }

    const uniquePeers = uniqueBy(peers);
    for (const i of inert) {
      const tail =
        uniquePeers.length === 0
          ? '; with no other peer, this rule matches nothing'
          : '; the rule keeps its other peers';
      this.warn(
        [...at, fields.entities, i],
        `entity ${entities[i]} has no meaning on a host and matches nothing here${tail}`,
      );
    }

    const l4 = this.l4(rule);
    // No peer field: the rule is L4-only and matches every peer, unless it has
    // no L4 either: Cilium's empty rule `{}` selects nothing (it still turns on
    // default deny).
    const rulePeers: Peer[] | 'any' = namesPeers ? uniquePeers : l4 === 'any' ? [] : 'any';
    return { index, peers: rulePeers, l4 };
  }

  private l4(rule: RuleInput): L4Match[] | 'any' {
    const toPorts = rule.toPorts ?? [];
    const icmps = rule.icmps ?? [];
    if (toPorts.length === 0 && icmps.length === 0) return 'any';
    const out: L4Match[] = [];
    for (const portRule of toPorts) {
      for (const pp of portRule.ports ?? []) {
        const protocol = pp.protocol ?? 'ANY';
        const bare = BARE_PROTOCOLS[protocol];
        if (bare !== undefined) {
          out.push({ kind: 'protocol', protocol: bare });
          continue;
        }
        const port = portNumber(pp.port) ?? 0;
        const [low, high] = port === 0 ? [0, 65535] : [port, pp.endPort ? pp.endPort : port];
        const protocols: PortProtocol[] =
          protocol === 'ANY' ? ['TCP', 'UDP', 'SCTP'] : [protocol as PortProtocol];
        for (const p of protocols) out.push({ kind: 'ports', protocol: p, port: low, endPort: high });
      }
    }
    for (const icmpRule of icmps) {
      for (const field of icmpRule.fields ?? []) {
        out.push({ kind: 'icmp', family: field.family, type: icmpType(field.family, field.type)! });
      }
    }
    return uniqueBy(out);
  }

  /** Canonical text of a validated CIDR or address; warns where Cilium's reading differs from the text. */
  private cidr(text: string, at: PathSegment[]): string {
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new Error(`unvalidated CIDR ${text}`); // the schema checked it
    const canonical = formatCidr(parsed.cidr);
    if (parsed.mapped)
      this.warn(at, `${text} is an IPv4-mapped IPv6 address; it is matched as the IPv4 ${canonical}`);
    if (parsed.hostBits) this.warn(at, `${text} has host bits set; it means ${canonical} (as in Cilium)`);
    return canonical;
  }
}

function selector(input: LabelSelectorInput): LabelSelector {
  return {
    matchLabels: { ...input.matchLabels },
    matchExpressions: (input.matchExpressions ?? []).map((e) => ({
      key: e.key,
      operator: e.operator,
      values: [...(e.values ?? [])],
    })),
  };
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function uniqueBy<T>(values: readonly T[]): T[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const key = JSON.stringify(v);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
