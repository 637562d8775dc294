/**
 * The names Cilium accepts in a CiliumClusterwideNetworkPolicy, with what they
 * mean here. Spellings follow Cilium's policy API (pkg/policy/api): ICMP type
 * names from icmp.go, protocols from the toPorts validation, entities from
 * entity.go. Nothing here knows YAML or zod.
 */
import { type Entity, INERT_ENTITIES } from './model.js';

/** ICMPv4 type names (Cilium's `ICMPField.type`, family IPv4). */
export const ICMPV4_TYPES: Readonly<Record<string, number>> = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  Echo: 8,
  EchoRequest: 8,
  RouterAdvertisement: 9,
  RouterSelection: 10,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
  Photuris: 40,
  ExtendedEchoRequest: 42,
  ExtendedEchoReply: 43,
};

/** ICMPv6 type names (Cilium's `ICMPField.type`, family IPv6). */
export const ICMPV6_TYPES: Readonly<Record<string, number>> = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  MulticastListenerQuery: 130,
  MulticastListenerReport: 131,
  MulticastListenerDone: 132,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  RedirectMessage: 137,
  RouterRenumbering: 138,
  ICMPNodeInformationQuery: 139,
  ICMPNodeInformationResponse: 140,
  InverseNeighborDiscoverySolicitation: 141,
  InverseNeighborDiscoveryAdvertisement: 142,
  HomeAgentAddressDiscoveryRequest: 144,
  HomeAgentAddressDiscoveryReply: 145,
  MobilePrefixSolicitation: 146,
  MobilePrefixAdvertisement: 147,
  DuplicateAddressRequestCodeSuffix: 157,
  DuplicateAddressConfirmationCodeSuffix: 158,
  ExtendedEchoRequest: 160,
  ExtendedEchoReply: 161,
};

export type IcmpFamily = 'IPv4' | 'IPv6';

/** The ICMP type for a number, a numeric string or a Cilium type name; undefined if unknown. */
export function icmpType(family: IcmpFamily, type: number | string): number | undefined {
  if (typeof type === 'number') return Number.isInteger(type) && type >= 0 && type <= 255 ? type : undefined;
  if (/^(0|[1-9][0-9]{0,2})$/.test(type)) {
    const n = Number(type);
    return n <= 255 ? n : undefined;
  }
  const names = family === 'IPv6' ? ICMPV6_TYPES : ICMPV4_TYPES;
  return Object.hasOwn(names, type) ? names[type] : undefined;
}

/** `toPorts.ports.protocol` values that carry ports, by IANA number. `ANY` means all three. */
export const PORT_PROTOCOLS = { TCP: 6, UDP: 17, SCTP: 132 } as const;

/**
 * `toPorts.ports.protocol` values without ports (Cilium's "extended IP
 * protocols": VRRP and IGMP from cilium/cilium#39872, the tunnel protocols from
 * #44459), by IANA number. Cilium requires their port to be empty or 0.
 */
export const BARE_PROTOCOLS: Readonly<Record<string, number>> = {
  VRRP: 112,
  IGMP: 2,
  GRE: 47,
  IPIP: 4,
  IPV6: 41,
  ESP: 50,
  AH: 51,
};

/** Every protocol spelling Cilium accepts in `toPorts.ports.protocol`, in message order. */
export const PROTOCOL_NAMES = ['TCP', 'UDP', 'SCTP', 'ANY', ...Object.keys(BARE_PROTOCOLS)];

/** Entities with a meaning on a host (the model's `Entity`). */
export const HOST_ENTITIES: readonly Entity[] = [
  'all',
  'world',
  'cluster',
  'host',
  'remote-node',
  'kube-apiserver',
];

/** Cilium's entity that can be selected but never exists: it matches nothing, by definition. */
export const NONE_ENTITY = 'none';

/** Every entity name Cilium's CRD accepts, in message order. */
export const ENTITY_NAMES = [...HOST_ENTITIES, ...INERT_ENTITIES, NONE_ENTITY];

export function isHostEntity(name: string): name is Entity {
  return (HOST_ENTITIES as readonly string[]).includes(name);
}

export function isInertEntity(name: string): name is (typeof INERT_ENTITIES)[number] {
  return (INERT_ENTITIES as readonly string[]).includes(name);
}
