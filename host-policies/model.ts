/**
 * The validated, typed form of a host policy: what the parser produces from
 * CiliumClusterwideNetworkPolicy YAML (files or the Kubernetes API) and what the
 * compiler consumes. Nothing here knows YAML, Kubernetes or BPF.
 */

export type Direction = 'ingress' | 'egress';

/** Cilium entities with a meaning on a host. */
export type Entity = 'world' | 'cluster' | 'host' | 'remote-node' | 'kube-apiserver' | 'all';

/** Cilium entities that mean nothing here: accepted in allow rules (match nothing), rejected in deny rules. */
export const INERT_ENTITIES = ['health', 'init', 'ingress', 'unmanaged'] as const;

export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values: string[];
  }[];
}

/** A set of peers. `cidr` is canonical (host bits zero), IPv4 or IPv6. */
export type Peer =
  | { kind: 'cidr'; cidr: string; except: string[] }
  | { kind: 'entity'; entity: Entity }
  /** fromEndpoints/toEndpoints: resolved to pod IPs by the Kubernetes source. */
  | { kind: 'endpoints'; selector: LabelSelector };

/** L4 protocols that carry ports. */
export type PortProtocol = 'TCP' | 'UDP' | 'SCTP';

export type L4Match =
  /** A port range on one protocol; a single port has endPort === port; "any port" is 0–65535. */
  | { kind: 'ports'; protocol: PortProtocol; port: number; endPort: number }
  /** A bare IP protocol without ports (e.g. VRRP = 112), by IANA number. */
  | { kind: 'protocol'; protocol: number }
  /** An ICMP or ICMPv6 type. */
  | { kind: 'icmp'; family: 'IPv4' | 'IPv6'; type: number };

export interface Rule {
  /** Position in its list (`ingress[2]` → 2), for messages, counters and trace. */
  index: number;
  /** Who the rule matches; `'any'` when the rule names no peer (L4-only rule). */
  peers: Peer[] | 'any';
  /** What the rule matches; `'any'` when the rule names no port, protocol or ICMP type (L3-only rule). */
  l4: L4Match[] | 'any';
}

export interface HostPolicy {
  /** metadata.name */
  name: string;
  /** Where it came from, for messages: a file path or `kubernetes`. */
  source: string;
  /** Packets this policy would drop are reported, not dropped. From the annotation `nodewarden.io/audit: "true"`. */
  audit: boolean;
  nodeSelector: LabelSelector;
  ingress: Rule[];
  ingressDeny: Rule[];
  egress: Rule[];
  egressDeny: Rule[];
  /**
   * Whether selecting a node makes the direction default-deny. Cilium: true when
   * the policy has any rule list for that direction, unless
   * spec.enableDefaultDeny says otherwise.
   */
  defaultDeny: { ingress: boolean; egress: boolean };
  /** Warnings that do not reject the policy (e.g. an inert entity in an allow rule). */
  warnings: string[];
}
