/**
 * Slim, typed projections of cluster objects: what the Kubernetes source keeps
 * of Nodes, Services, EndpointSlices, Leases and the announcement CRDs, and
 * what the planners read. Nothing here knows HTTP or the API's JSON.
 */
import type { LabelSelector } from '../host-policies/model.js';

export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  /** InternalIP and ExternalIP addresses. */
  addresses: { type: 'InternalIP' | 'ExternalIP'; address: string }[];
}

export interface ServicePort {
  name?: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  nodePort?: number;
}

/** A `type: LoadBalancer` Service (other types are not kept). */
export interface ServiceInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Only the annotations that request pools or addresses (MetalLB, Cilium LB-IPAM) and nodewarden.io/dsr. */
  annotations: Record<string, string>;
  clusterIPs: string[];
  /** spec.loadBalancerIP (deprecated upstream, still used). */
  requestedIP?: string;
  /** status.loadBalancer.ingress[].ip */
  ingressIPs: string[];
  /** spec.externalIPs (absent in projections made before they were kept). */
  externalIPs?: string[];
  ports: ServicePort[];
  externalTrafficPolicy: 'Cluster' | 'Local';
  healthCheckNodePort?: number;
  loadBalancerClass?: string;
}

/** One EndpointSlice reduced to ready endpoints per node. */
export interface EndpointCounts {
  namespace: string;
  service: string;
  /**
   * The slice's address family. A dual-stack Service has a slice per family that name
   * the same pods, so counts add up per family only (absent in older projections).
   */
  addressType?: string;
  /** node name → ready endpoints on it ('' for endpoints without a node). */
  readyByNode: Record<string, number>;
  /** Only for default/kubernetes: the API servers' ready addresses and port (entity kube-apiserver). */
  apiServers?: { addresses: string[]; port: number };
}

/** A node's heartbeat Lease as an observer sees it. */
export interface HeartbeatLease {
  node: string;
  holder: string;
  /** spec.renewTime in ms since the epoch (the renewing node's clock). */
  renewTimeMs: number;
  durationSeconds: number;
  resourceVersion: string;
  /** Interfaces up on the node, published with each renewal (eligibility for announcements). */
  interfacesUp: string[];
}

export interface LoadBalancerPool {
  /** `CiliumLoadBalancerIPPool/name` or `IPAddressPool/namespace/name`. */
  id: string;
  /** metadata.labels, which advertisements' pool selectors match. */
  labels: Record<string, string>;
  /** CIDRs (`192.0.2.0/28`) and ranges (`192.0.2.10-192.0.2.20`), IPv4 and IPv6. */
  ranges: string[];
  serviceSelector?: LabelSelector;
  autoAssign: boolean;
  /** Skip addresses ending in .0 and .255. */
  avoidBuggyIPs: boolean;
  disabled: boolean;
}

export interface L2AnnouncementPolicy {
  /** `CiliumL2AnnouncementPolicy/name` or `L2Advertisement/namespace/name`. */
  id: string;
  serviceSelector?: LabelSelector;
  /** A node must match one of them (none: every node). */
  nodeSelectors: LabelSelector[];
  /** Interface names or regular expressions (Cilium) / names (MetalLB); empty: all. */
  interfaces: string[];
  /** MetalLB: only IPs from these pools (by name) or pools matching these selectors; both empty: all. */
  pools: string[];
  poolSelectors: LabelSelector[];
  /** Announce the Services' status.loadBalancer.ingress IPs. */
  loadBalancerIPs: boolean;
  /** Announce the Services' spec.externalIPs. */
  externalIPs: boolean;
}

/** A MetalLB BGPAdvertisement, projected (daemon/bgp/from-cluster.ts plans with it). */
export interface BgpAdvertisementPolicy {
  /** `BGPAdvertisement/namespace/name`. */
  id: string;
  /** ipAddressPools and ipAddressPoolSelectors; both empty: every address. */
  pools: string[];
  poolSelectors: LabelSelector[];
  /** This node must match one of them; none: every node. */
  nodeSelectors: LabelSelector[];
  /** BGPPeer names; empty: every peer. */
  peers: string[];
  communities: string[];
  localPref?: number;
  aggregationLength: number;
  aggregationLengthV6: number;
}
