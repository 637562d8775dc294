/**
 * MetalLB's BGPPeer and BGPAdvertisement → the BGP planner's input. A BGPPeer
 * takes the config file's peer schema (which mirrors MetalLB's fields), so
 * both validate the same way; fields nodewarden cannot honour (passwordSecret,
 * bfdProfile, vrf, ...) are rejected by name, as every unknown key is.
 */
import { z } from 'zod';
import type { LabelSelector } from '../../../host-policies/model.js';
import type { BgpAdvertisementPolicy } from '../../../model/cluster.js';
import { type BgpPeerConfig, bgpPeerSchema } from '../../config/schema.js';
import type { KubeObject } from './client.js';
import { labelSelector, objectName, parseSpec, toSelector } from './projections.js';
import type { Projection } from './reflector.js';

export interface ClusterBgpPeer {
  peer: BgpPeerConfig;
  /** The peer applies on nodes matching one of them; none: every node. */
  nodeSelectors: LabelSelector[];
}

const metallbPeerSpec = bgpPeerSchema
  .omit({ name: true, passwordFile: true, families: true, nextHop: true, passive: true })
  .extend({ nodeSelectors: z.array(labelSelector).optional() });

export function projectBgpPeer(o: KubeObject): Projection<ClusterBgpPeer> {
  const r = parseSpec(o, metallbPeerSpec);
  if (!r.ok) return r;
  const { nodeSelectors, ...peer } = r.spec;
  return {
    ok: true,
    value: {
      peer: { ...peer, passive: false, name: o.metadata.name },
      nodeSelectors: (nodeSelectors ?? []).map(toSelector),
    },
  };
}

const metallbAdvertisementSpec = z.strictObject({
  aggregationLength: z.number().int().min(0).max(32).optional(),
  aggregationLengthV6: z.number().int().min(0).max(128).optional(),
  localPref: z.number().int().min(0).max(4_294_967_295).optional(),
  communities: z.array(z.string().min(1)).optional(),
  ipAddressPools: z.array(z.string().min(1)).optional(),
  ipAddressPoolSelectors: z.array(labelSelector).optional(),
  nodeSelectors: z.array(labelSelector).optional(),
  peers: z.array(z.string().min(1)).optional(),
});

export function projectBgpAdvertisement(o: KubeObject): Projection<BgpAdvertisementPolicy> {
  const r = parseSpec(o, metallbAdvertisementSpec);
  if (!r.ok) return r;
  const s = r.spec;
  return {
    ok: true,
    value: {
      id: objectName(o),
      pools: s.ipAddressPools ?? [],
      poolSelectors: (s.ipAddressPoolSelectors ?? []).map(toSelector),
      nodeSelectors: (s.nodeSelectors ?? []).map(toSelector),
      peers: s.peers ?? [],
      communities: s.communities ?? [],
      ...(s.localPref !== undefined ? { localPref: s.localPref } : {}),
      aggregationLength: s.aggregationLength ?? 32,
      aggregationLengthV6: s.aggregationLengthV6 ?? 128,
    },
  };
}
