/**
 * BGP with `source: kubernetes`: the cluster's Services, MetalLB BGPPeers and
 * BGPAdvertisements merged with config.yaml's `bgp` section (asn, routerID,
 * listen, static peers and prefixes) into one BgpConfig, which planBgp turns
 * into the speaker's config and routes. Pure.
 *
 * What is advertised: every LoadBalancer IP (status.loadBalancer.ingress) and
 * externalIP of a Service, as a /32 or /128, by each advertisement that
 * selects it. A Service with externalTrafficPolicy Local is advertised only
 * while this node has a ready endpoint of it.
 */
import { choosesAddress, type SelectablePool } from '../../announcers/ipam/pool-selection.js';
import { matchesLabels } from '../../host-policies/selector.js';
import type { BgpAdvertisementPolicy } from '../../model/cluster.js';
import type { Service } from '../../services/model.js';
import type { BgpAdvertisementConfig, BgpConfig, BgpPeerConfig } from '../config/schema.js';

/** An address pool as advertisements select it (MetalLB IPAddressPool, Cilium pool, our LoadBalancerPool). */
export type ClusterBgpPool = SelectablePool;

export type ClusterBgpAdvertisement = BgpAdvertisementPolicy;

export interface ClusterBgpInput {
  services: readonly Service[];
  pools: readonly ClusterBgpPool[];
  advertisements: readonly ClusterBgpAdvertisement[];
  /** BGPPeers in the config file's peer form (name: metadata.name). */
  peers: readonly BgpPeerConfig[];
  /** This node's labels, for nodeSelectors. */
  nodeLabels: Readonly<Record<string, string>>;
}

/** The addresses this node may advertise: ETP Local needs a ready local endpoint. */
export function advertisableAddresses(services: readonly Service[]): string[] {
  const addresses = services
    .filter((s) => s.type === 'LoadBalancer')
    .filter((s) => s.externalTrafficPolicy !== 'Local' || s.localReadyEndpoints > 0)
    .flatMap((s) => [...s.loadBalancerIPs, ...s.externalIPs]);
  return [...new Set(addresses)].sort();
}

export function clusterBgpConfig(base: BgpConfig, input: ClusterBgpInput): BgpConfig {
  const addresses = advertisableAddresses(input.services);
  const known = new Set(base.peers.map((p) => p.peerAddress));
  // The config file's peers win over a BGPPeer with the same address.
  const peers = [...base.peers, ...input.peers.filter((p) => !known.has(p.peerAddress))];
  const peerNames = new Set(peers.flatMap((p) => (p.name ? [p.name] : [])));
  const advertisements = input.advertisements.flatMap((ad): BgpAdvertisementConfig[] => {
    const onThisNode =
      ad.nodeSelectors.length === 0 || ad.nodeSelectors.some((s) => matchesLabels(s, input.nodeLabels));
    const prefixes = addresses.filter((a) => choosesAddress(ad, input.pools, a));
    // Names of peers that do not exist select nothing (MetalLB ignores them too).
    const targets = ad.peers.filter((name) => peerNames.has(name));
    if (!onThisNode || prefixes.length === 0 || (ad.peers.length > 0 && targets.length === 0)) return [];
    return [
      {
        name: ad.id,
        prefixes,
        aggregationLength: ad.aggregationLength,
        aggregationLengthV6: ad.aggregationLengthV6,
        ...(ad.localPref !== undefined ? { localPref: ad.localPref } : {}),
        communities: [...ad.communities],
        largeCommunities: [],
        peers: targets,
      },
    ];
  });
  return { ...base, peers, advertisements: [...base.advertisements, ...advertisements] };
}
