/**
 * The schema of a host policy in Cilium's `cilium.io/v2`
 * CiliumClusterwideNetworkPolicy form. Objects are strict: every field Cilium
 * defines is either accepted with its Cilium meaning or rejected with a message
 * that names it; a field Cilium does not define is an unknown field. Nothing is
 * dropped in silence.
 *
 * The schema validates (every check that can fail is here, so one pass reports
 * every problem); parse.ts turns the validated document into the model.
 */
import { z } from 'zod';
import { cidrContains, parseCidr } from './cidr.js';
import {
  BARE_PROTOCOLS,
  ENTITY_NAMES,
  type IcmpFamily,
  icmpType,
  isHostEntity,
  isInertEntity,
  NONE_ENTITY,
  PROTOCOL_NAMES,
} from './cilium-names.js';

export type PolicyMode = 'standalone' | 'kubernetes';

export const API_VERSION = 'cilium.io/v2';
export const KIND = 'CiliumClusterwideNetworkPolicy';
export const AUDIT_ANNOTATION = 'nodewarden.io/audit';

// ---------------------------------------------------------------------------
// Building blocks

type ErrorFn = (issue: { code: string; input?: unknown }) => string | undefined;

/** `required` for a missing field, `must be <expected>` for a wrong type. */
const typeError =
  (expected: string): ErrorFn =>
  (issue) =>
    issue.code === 'invalid_type'
      ? issue.input === undefined
        ? 'required'
        : `must be ${expected}`
      : undefined;

const string = () => z.string({ error: typeError('a string') });
const boolean = () => z.boolean({ error: typeError('true or false') });
const strict = <S extends z.core.$ZodLooseShape>(shape: S) =>
  z.strictObject(shape, { error: typeError('a mapping') });

/** A list; `null` (a key with no value) is an empty list, as Kubernetes reads it. */
const list = <T extends z.ZodType>(item: T) =>
  z
    .array(item, { error: typeError('a list') })
    .nullish()
    .transform((v) => (v === null ? [] : v));

/** A field Cilium defines but nodewarden cannot enforce: present at all (any value) is an error naming it. */
const rejected = (message: string) =>
  z
    .unknown()
    .superRefine((_, ctx) => {
      ctx.addIssue({ code: 'custom', message });
    })
    .optional();

/** A field Cilium has on allow rules only. */
const notInDeny = (field: string, list: string) =>
  rejected(`${field} is not a field of Cilium's ${list} rules`);

// ---------------------------------------------------------------------------
// Label selectors (nodeSelector, fromEndpoints, toEndpoints)

/** Kubernetes label values, as Cilium's CRD checks them. */
const labelValue = () =>
  string().superRefine((v, ctx) => {
    if (v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) {
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" is not a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`,
      });
    }
  });

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

/**
 * A Kubernetes label selector. For endpoint selectors (`endpoints: true`),
 * keys with Cilium's `reserved:` source select Cilium's own identities, not
 * pods, and are rejected with a pointer to the entity that says the same.
 */
const labelSelector = (options: { endpoints: boolean }) => {
  const key = () =>
    string()
      .min(1, 'must not be empty')
      .superRefine((k, ctx) => {
        if (options.endpoints && k.startsWith('reserved:')) {
          ctx.addIssue({
            code: 'custom',
            message: `"${k}" selects a Cilium reserved identity, not pods; use fromEntities/toEntities for it`,
          });
        }
        // Other sources and Cilium's derived pseudo-labels are not pod labels: they would match
        // nothing, and a deny rule that matches nothing silently opens traffic.
        else if (options.endpoints && /^[^/]*:/.test(k) && !/^(k8s|any):/.test(k)) {
          ctx.addIssue({
            code: 'custom',
            message: `"${k}": only the k8s: and any: label sources select pods here`,
          });
        } else if (options.endpoints && /^((k8s|any):)?io\.cilium\.k8s\./.test(k)) {
          ctx.addIssue({
            code: 'custom',
            message: `"${k}" is a label Cilium derives (namespace labels, service account); it is not supported here: select pods by their own labels and io.kubernetes.pod.namespace`,
          });
        }
      });
  const expression = strict({
    key: key(),
    operator: z.enum(OPERATORS, { error: () => `must be one of ${OPERATORS.join(', ')}` }),
    values: list(labelValue()),
  }).superRefine((e, ctx) => {
    const n = e.values?.length ?? 0;
    if ((e.operator === 'In' || e.operator === 'NotIn') && n === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['values'],
        message: `must list at least one value for operator ${e.operator}`,
      });
    }
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && n > 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `must be empty for operator ${e.operator}` });
    }
  });
  return strict({
    matchLabels: z
      .record(key(), labelValue(), { error: typeError('a mapping') })
      .nullish()
      .transform((v) => v ?? {}),
    matchExpressions: list(expression),
  });
};

/** A plain Kubernetes label selector (node, service and pool selectors of the announcement kinds too). */
export const kubeLabelSelector = labelSelector({ endpoints: false });

// ---------------------------------------------------------------------------
// Peers

const cidrString = () =>
  string().superRefine((v, ctx) => {
    const parsed = parseCidr(v);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.error });
  });

const cidrRule = strict({
  cidr: cidrString().optional(),
  except: list(cidrString()),
  cidrGroupRef: rejected('cidrGroupRef (CiliumCIDRGroup) is not supported; list the CIDRs in cidr'),
  cidrGroupSelector: rejected('cidrGroupSelector (CiliumCIDRGroup) is not supported; list the CIDRs in cidr'),
}).superRefine((rule, ctx) => {
  if (rule.cidr === undefined) {
    // With a group reference, its own rejection says enough.
    if (rule.cidrGroupRef === undefined && rule.cidrGroupSelector === undefined) {
      ctx.addIssue({ code: 'custom', path: ['cidr'], message: 'required' });
    }
    return;
  }
  const outer = parseCidr(rule.cidr);
  if (!outer.ok) return; // reported on cidr
  (rule.except ?? []).forEach((text, i) => {
    const inner = parseCidr(text);
    if (!inner.ok) return; // reported on the entry
    const o = outer.cidr;
    const n = inner.cidr;
    if (o.family !== n.family) {
      ctx.addIssue({
        code: 'custom',
        path: ['except', i],
        message: `${text} is IPv${n.family} but cidr ${rule.cidr} is IPv${o.family}`,
      });
    } else if (!cidrContains(o, n)) {
      ctx.addIssue({
        code: 'custom',
        path: ['except', i],
        message: `${text} is not inside cidr ${rule.cidr}`,
      });
    }
  });
});

/**
 * An entity name. Inert entities (nothing on a host has them) may stand in
 * allow rules, where they match nothing; in a deny rule, matching nothing would
 * silently not deny what the operator asked to deny, so they are rejected.
 */
const entity = (deny: boolean) =>
  string().superRefine((name, ctx) => {
    if (isHostEntity(name) || name === NONE_ENTITY) return;
    if (isInertEntity(name)) {
      if (deny) {
        ctx.addIssue({
          code: 'custom',
          message: `entity ${name} has no meaning on a host, so this deny cannot be enforced (dropping a deny would silently open traffic)`,
        });
      }
      return;
    }
    if (name === 'world-ipv4' || name === 'world-ipv6') {
      ctx.addIssue({
        code: 'custom',
        message: `entity ${name} is not supported (Cilium's CRD rejects it too); use world, which covers IPv4 and IPv6`,
      });
      return;
    }
    ctx.addIssue({
      code: 'custom',
      message: `unknown entity "${name}"; Cilium's entities are ${ENTITY_NAMES.join(', ')}`,
    });
  });

// ---------------------------------------------------------------------------
// L4: toPorts and icmps

const PORT_TEXT = /^(0|[1-9][0-9]{0,4})$/;

/** A port as written: a number or a numeric string; names are not ports on a host. */
const portValue = z
  .union([z.number(), z.string()], { error: () => 'must be a port number 0–65535' })
  .superRefine((v, ctx) => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0 || v > 65535)
        ctx.addIssue({ code: 'custom', message: 'must be a port number 0–65535' });
      return;
    }
    if (PORT_TEXT.test(v)) {
      if (Number(v) > 65535) ctx.addIssue({ code: 'custom', message: 'must be a port number 0–65535' });
      return;
    }
    if (/[A-Za-z]/.test(v)) {
      ctx.addIssue({
        code: 'custom',
        message: `named port "${v}" is not supported: a host has no container ports to name; use the port number`,
      });
      return;
    }
    ctx.addIssue({ code: 'custom', message: 'must be a port number 0–65535' });
  });

export function portNumber(v: number | string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

const protocolName = string().superRefine((p, ctx) => {
  if (PROTOCOL_NAMES.includes(p)) return;
  if (p === 'ICMP' || p === 'ICMPV6' || p === 'ICMPv6') {
    ctx.addIssue({ code: 'custom', message: `ICMP is matched with icmps, not toPorts` });
    return;
  }
  const hint = PROTOCOL_NAMES.includes(p.toUpperCase()) ? ` (write ${p.toUpperCase()})` : '';
  ctx.addIssue({
    code: 'custom',
    message: `unknown protocol "${p}"${hint}; Cilium's protocols are ${PROTOCOL_NAMES.join(', ')}`,
  });
});

const portProtocol = strict({
  port: portValue.optional(),
  endPort: z
    .number({ error: typeError('a port number 0–65535') })
    .int('must be a port number 0–65535')
    .min(0, 'must be a port number 0–65535')
    .max(65535, 'must be a port number 0–65535')
    .optional(),
  protocol: protocolName.optional(),
}).superRefine((pp, ctx) => {
  const port = portNumber(pp.port);
  const endPort = pp.endPort === 0 ? undefined : pp.endPort; // Cilium: 0 is "not set"
  if (pp.protocol !== undefined && Object.hasOwn(BARE_PROTOCOLS, pp.protocol)) {
    if (port !== undefined && port !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['port'],
        message: `${pp.protocol} has no ports: port must be empty or 0`,
      });
    }
    if (endPort !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['endPort'],
        message: `${pp.protocol} has no ports: remove endPort`,
      });
    }
    return;
  }
  if (pp.port === undefined && pp.protocol === undefined) {
    ctx.addIssue({ code: 'custom', message: 'needs a port or a protocol' });
    return;
  }
  if (endPort !== undefined && port !== undefined && Number.isInteger(port)) {
    if (port === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['endPort'],
        message: 'needs a non-zero port (port 0 already means every port)',
      });
    } else if (endPort < port) {
      ctx.addIssue({ code: 'custom', path: ['endPort'], message: `must not be below port ${port}` });
    }
  } else if (endPort !== undefined && pp.port === undefined) {
    ctx.addIssue({ code: 'custom', path: ['endPort'], message: 'needs a port' });
  }
});

const portRule = (deny: boolean) => {
  const l7 = deny
    ? {
        rules: notInDeny('rules', 'deny'),
        listener: notInDeny('listener', 'deny'),
        originatingTLS: notInDeny('originatingTLS', 'deny'),
        terminatingTLS: notInDeny('terminatingTLS', 'deny'),
        serverNames: notInDeny('serverNames', 'deny'),
      }
    : {
        rules: rejected('L7 rules (toPorts.rules) are not supported: nodewarden enforces L3/L4 only'),
        listener: rejected('listener (an Envoy redirect) is not supported: nodewarden enforces L3/L4 only'),
        originatingTLS: rejected(
          'originatingTLS (TLS interception) is not supported: nodewarden enforces L3/L4 only',
        ),
        terminatingTLS: rejected(
          'terminatingTLS (TLS interception) is not supported: nodewarden enforces L3/L4 only',
        ),
        serverNames: rejected(
          'serverNames (TLS SNI matching) is not supported: nodewarden enforces L3/L4 only',
        ),
      };
  return strict({ ports: list(portProtocol), ...l7 }).superRefine((pr, ctx) => {
    if ((pr.ports?.length ?? 0) === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['ports'],
        message: 'must list at least one port (an entry without ports would match nothing)',
      });
    }
  });
};

const icmpField = strict({
  family: z
    .enum(['IPv4', 'IPv6'], { error: () => 'must be IPv4 or IPv6' })
    .nullish()
    .transform((f): IcmpFamily => f ?? 'IPv4'),
  type: z.union([z.number(), z.string()], {
    error: (issue) =>
      issue.input === undefined ? 'required' : 'must be an ICMP type 0–255 or a Cilium type name',
  }),
}).superRefine((f, ctx) => {
  if (icmpType(f.family, f.type) !== undefined) return;
  const isName = typeof f.type === 'string' && /^[A-Za-z]/.test(f.type);
  ctx.addIssue({
    code: 'custom',
    path: ['type'],
    message: isName
      ? `unknown ICMP type "${f.type}" for ${f.family}`
      : 'must be an ICMP type 0–255 or a Cilium type name',
  });
});

const icmpRule = strict({ fields: list(icmpField) }).superRefine((r, ctx) => {
  if ((r.fields?.length ?? 0) === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['fields'],
      message: 'must list at least one ICMP type (an entry without fields would match nothing)',
    });
  }
});

// ---------------------------------------------------------------------------
// Rules

const INGRESS_PEERS = ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities'] as const;
const EGRESS_PEERS = ['toEndpoints', 'toCIDR', 'toCIDRSet', 'toEntities'] as const;

/** Cross-field checks Cilium makes on every rule. */
function ruleChecks(peerFields: readonly string[]) {
  return (rule: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const present = peerFields.filter((f) => Array.isArray(rule[f]) && (rule[f] as unknown[]).length > 0);
    if (present.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: [present[1]!],
        message: `${present[0]} and ${present[1]} cannot be combined in one rule (Cilium rejects it too); use two rules`,
      });
    }
    const icmps = rule.icmps as unknown[] | undefined;
    const toPorts = rule.toPorts as unknown[] | undefined;
    if ((icmps?.length ?? 0) > 0 && (toPorts?.length ?? 0) > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['icmps'],
        message: 'icmps and toPorts cannot be combined in one rule (Cilium rejects it too); use two rules',
      });
    }
  };
}

const endpointsField = (field: string, mode: PolicyMode) =>
  mode === 'kubernetes'
    ? list(labelSelector({ endpoints: true }))
    : rejected(`${field} needs the Kubernetes source; standalone nodes have no pods`);

const ingressRule = (mode: PolicyMode, deny: boolean) =>
  strict({
    fromEndpoints: endpointsField('fromEndpoints', mode),
    fromCIDR: list(cidrString()),
    fromCIDRSet: list(cidrRule),
    fromEntities: list(entity(deny)),
    fromRequires: rejected(
      'fromRequires is not supported: it constrains pod identities, which a host firewall does not have',
    ),
    fromGroups: rejected('fromGroups (cloud provider groups) is not supported; list the CIDRs in fromCIDR'),
    fromNodes: rejected("fromNodes is not supported; use fromEntities [remote-node] or the nodes' CIDRs"),
    toPorts: list(portRule(deny)),
    icmps: list(icmpRule),
    authentication: deny
      ? notInDeny('authentication', 'ingressDeny')
      : rejected('authentication (mutual authentication) is not supported'),
  }).superRefine(ruleChecks(INGRESS_PEERS));

const egressRule = (mode: PolicyMode, deny: boolean) =>
  strict({
    toEndpoints: endpointsField('toEndpoints', mode),
    toCIDR: list(cidrString()),
    toCIDRSet: list(cidrRule),
    toEntities: list(entity(deny)),
    toRequires: rejected(
      'toRequires is not supported: it constrains pod identities, which a host firewall does not have',
    ),
    toGroups: rejected('toGroups (cloud provider groups) is not supported; list the CIDRs in toCIDR'),
    toNodes: rejected("toNodes is not supported; use toEntities [remote-node] or the nodes' CIDRs"),
    toServices: rejected('toServices is not supported; use toCIDR or toEndpoints'),
    toPorts: list(portRule(deny)),
    icmps: list(icmpRule),
    toFQDNs: deny
      ? notInDeny('toFQDNs', 'egressDeny')
      : rejected('toFQDNs is not supported: nodewarden has no DNS proxy; use toCIDR'),
    authentication: deny
      ? notInDeny('authentication', 'egressDeny')
      : rejected('authentication (mutual authentication) is not supported'),
  }).superRefine(ruleChecks(EGRESS_PEERS));

// ---------------------------------------------------------------------------
// Spec and document

const ruleLabel = strict({ key: string(), value: string().optional(), source: string().optional() });

const specSchema = (mode: PolicyMode) =>
  strict({
    description: string().nullish(),
    nodeSelector: labelSelector({ endpoints: false }).optional(),
    endpointSelector: rejected('endpointSelector selects pods; host policies use nodeSelector'),
    ingress: list(ingressRule(mode, false)),
    ingressDeny: list(ingressRule(mode, true)),
    egress: list(egressRule(mode, false)),
    egressDeny: list(egressRule(mode, true)),
    enableDefaultDeny: strict({ ingress: boolean().nullish(), egress: boolean().nullish() }).nullish(),
    labels: list(ruleLabel),
    log: rejected('log (policy verdict logging) is not supported'),
  }).superRefine((spec, ctx) => {
    if (spec.nodeSelector === undefined && spec.endpointSelector === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['nodeSelector'],
        message: 'required: host policies select nodes with nodeSelector',
      });
    }
    const rules = [spec.ingress, spec.ingressDeny, spec.egress, spec.egressDeny];
    if (rules.every((r) => (r?.length ?? 0) === 0)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'needs at least one rule in ingress, ingressDeny, egress or egressDeny (Cilium rejects it too)',
      });
    }
  });

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const metadataSchema = z
  .object(
    {
      name: string().superRefine((name, ctx) => {
        if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
          ctx.addIssue({
            code: 'custom',
            message: `"${name}" is not a Kubernetes object name (lower-case letters, digits, '-' and '.')`,
          });
        }
      }),
      namespace: rejected('a CiliumClusterwideNetworkPolicy is cluster-scoped and has no namespace'),
      annotations: z
        .record(string(), z.string({ error: typeError('a string (quote it)') }), {
          error: typeError('a mapping'),
        })
        .nullish(),
      labels: z
        .record(string(), z.string({ error: typeError('a string (quote it)') }), {
          error: typeError('a mapping'),
        })
        .nullish(),
    },
    { error: typeError('a mapping') },
  )
  .superRefine((meta, ctx) => {
    const audit = meta.annotations?.[AUDIT_ANNOTATION];
    if (audit !== undefined && audit !== 'true' && audit !== 'false') {
      ctx.addIssue({
        code: 'custom',
        path: ['annotations', AUDIT_ANNOTATION],
        message: `must be "true" or "false"`,
      });
    }
  });

/** One YAML document: one CiliumClusterwideNetworkPolicy. */
export const policyDocumentSchema = (mode: PolicyMode) =>
  z
    .strictObject(
      {
        apiVersion: string().superRefine((v, ctx) => {
          if (v !== API_VERSION) ctx.addIssue({ code: 'custom', message: `must be ${API_VERSION}` });
        }),
        kind: string().superRefine((v, ctx) => {
          if (v === KIND) return;
          ctx.addIssue({
            code: 'custom',
            message:
              v === 'CiliumNetworkPolicy'
                ? `host policies must be cluster-wide: use kind ${KIND} (a CiliumNetworkPolicy is namespaced and cannot select nodes)`
                : `must be ${KIND}`,
          });
        }),
        metadata: metadataSchema,
        spec: specSchema(mode).optional(),
        specs: list(specSchema(mode)),
        // Written by the cluster (kubectl get -o yaml); it is no input.
        status: z.unknown().optional(),
      },
      {
        error: (issue) => (issue.code === 'invalid_type' ? `a policy document must be a mapping` : undefined),
      },
    )
    .superRefine((doc, ctx) => {
      if (doc.spec === undefined && (doc.specs?.length ?? 0) === 0) {
        ctx.addIssue({ code: 'custom', message: `needs spec or specs` });
      }
    });

export type PolicyDocument = z.infer<ReturnType<typeof policyDocumentSchema>>;
export type PolicySpec = z.infer<ReturnType<typeof specSchema>>;
export type IngressRuleInput = z.infer<ReturnType<typeof ingressRule>>;
export type EgressRuleInput = z.infer<ReturnType<typeof egressRule>>;
export type PortRuleInput = z.infer<ReturnType<typeof portRule>>;
export type IcmpRuleInput = z.infer<typeof icmpRule>;
export type CidrRuleInput = z.infer<typeof cidrRule>;
export type LabelSelectorInput = z.infer<ReturnType<typeof labelSelector>>;
