/**
 * The BGP planner: the `bgp` section of config.yaml (plus node facts) to the
 * speaker's configuration and the routes it announces. Pure: secrets are read
 * through the function the caller passes. It lives under daemon/ rather than
 * announcers/bgp/ because it reads the daemon's config types, and announcers/
 * may not import daemon/.
 *
 * Advertisements are MetalLB's: a prefix is aggregated to the advertisement's
 * aggregationLength(V6), and each peer gets, per prefix, the union of the
 * communities of every advertisement that sends it that prefix. Two
 * advertisements that send the same prefix to the same peer with different
 * local preferences are an error, as in MetalLB.
 */
import { isIPv4 } from 'node:net';
import type { Family, PeerConfig, Route, SpeakerConfig } from '../../announcers/bgp/index.js';
import type { SystemAllow } from '../../host-policies/compile.js';
import { formatPrefix, parsePrefix } from '../../host-policies/prefix.js';
import { InputError, type InputProblem, type PathSegment } from '../../model/input-errors.js';
import type { BgpConfig, BgpPeerConfig } from '../config/schema.js';

export const DEFAULT_BGP_PORT = 179;

export interface BgpFacts {
  /** The config file, for error messages. */
  file: string;
  /** This node's addresses; the router ID defaults to the first global IPv4 one. */
  hostAddresses: readonly string[];
  /** Reads a passwordFile; throws with a message on failure. */
  readSecret: (path: string) => string;
}

export interface BgpPlan {
  speaker: SpeakerConfig;
  routes: Route[];
  /** Peer address → the name advertisements and `bgp peers` use. */
  peerNames: Map<string, string>;
}

/** The node's default router ID: a global IPv4 address (not loopback, not link-local). */
function defaultRouterId(bgp: BgpConfig, facts: BgpFacts): string | undefined {
  const source = bgp.peers.map((p) => p.sourceAddress).find((a) => a !== undefined && isIPv4(a));
  if (source) return source;
  return facts.hostAddresses.find((a) => isIPv4(a) && !a.startsWith('127.') && !a.startsWith('169.254.'));
}

function peerConfig(peer: BgpPeerConfig, password: string | undefined): PeerConfig {
  const families: Family[] = peer.families ?? [isIPv4(peer.peerAddress) ? 'ipv4-unicast' : 'ipv6-unicast'];
  const config: PeerConfig = {
    address: peer.peerAddress,
    asn: peer.peerASN,
    port: peer.peerPort,
    holdTime: peer.holdTime,
    connectRetryTime: peer.connectTime,
    passive: peer.passive,
    families,
  };
  if (peer.sourceAddress !== undefined) config.localAddress = peer.sourceAddress;
  if (password !== undefined) config.password = password;
  if (peer.keepaliveTime !== undefined) config.keepaliveTime = peer.keepaliveTime;
  if (peer.ebgpMultiHop !== false) config.ebgpMultihop = peer.ebgpMultiHop === true ? 255 : peer.ebgpMultiHop;
  if (peer.enableGracefulRestart) config.gracefulRestart = { restartTime: peer.gracefulRestartTime };
  if (peer.nextHop) {
    config.nextHop = {};
    if (peer.nextHop.ipv4 !== undefined) config.nextHop.ipv4 = peer.nextHop.ipv4;
    if (peer.nextHop.ipv6 !== undefined) config.nextHop.ipv6 = peer.nextHop.ipv6;
  }
  return config;
}

/** The attributes one peer gets for one prefix, with where they came from for messages. */
interface PeerAttributes {
  communities: Set<string>;
  largeCommunities: Set<string>;
  localPref?: { value: number; from: number };
}

function aggregate(prefix: string, v4Length: number, v6Length: number): string {
  const [address = '', length] = prefix.split('/');
  const v4 = isIPv4(address);
  const own = length === undefined ? (v4 ? 32 : 128) : Number(length);
  return formatPrefix(parsePrefix(`${address}/${Math.min(own, v4 ? v4Length : v6Length)}`));
}

function attributesKey(a: PeerAttributes): string {
  return JSON.stringify([[...a.communities].sort(), [...a.largeCommunities].sort(), a.localPref?.value]);
}

/** Throws an InputError naming each problem's field path under `bgp`. */
export function planBgp(bgp: BgpConfig, facts: BgpFacts): BgpPlan {
  const problems: InputProblem[] = [];
  const problem = (path: PathSegment[], message: string) =>
    problems.push({ file: facts.file, path: ['bgp', ...path], message });

  const routerId = bgp.routerID ?? bgp.peers.find((p) => p.routerID)?.routerID ?? defaultRouterId(bgp, facts);
  if (routerId === undefined)
    problem(['routerID'], 'required: this node has no IPv4 address to take it from');

  const peerNames = new Map<string, string>();
  const byName = new Map<string, string>();
  const peers = bgp.peers.map((peer, i) => {
    let password = peer.password;
    if (peer.passwordFile !== undefined) {
      try {
        password = facts.readSecret(peer.passwordFile).replace(/\r?\n$/, '');
        if (password.length === 0 || Buffer.byteLength(password) > 80) {
          problem(['peers', i, 'passwordFile'], `${peer.passwordFile}: the password must be 1–80 bytes`);
        }
      } catch (error) {
        problem(
          ['peers', i, 'passwordFile'],
          `cannot read ${peer.passwordFile}: ${(error as Error).message}`,
        );
      }
    }
    const name = peer.name ?? peer.peerAddress;
    peerNames.set(peer.peerAddress, name);
    byName.set(name, peer.peerAddress);
    byName.set(peer.peerAddress, peer.peerAddress);
    return peerConfig(peer, password);
  });

  // prefix → peer address → attributes
  const table = new Map<string, Map<string, PeerAttributes>>();
  bgp.advertisements.forEach((ad, i) => {
    const targets = ad.peers.length
      ? ad.peers.map((p) => byName.get(p) ?? p)
      : bgp.peers.map((p) => p.peerAddress);
    const communities = ad.communities.filter((c) => !c.startsWith('large:'));
    const large = [
      ...ad.largeCommunities,
      ...ad.communities.filter((c) => c.startsWith('large:')).map((c) => c.slice(6)),
    ];
    for (const prefix of ad.prefixes) {
      const aggregated = aggregate(prefix, ad.aggregationLength, ad.aggregationLengthV6);
      const perPeer = table.get(aggregated) ?? new Map<string, PeerAttributes>();
      table.set(aggregated, perPeer);
      for (const peer of targets) {
        const attributes = perPeer.get(peer) ?? { communities: new Set(), largeCommunities: new Set() };
        perPeer.set(peer, attributes);
        for (const c of communities) attributes.communities.add(c);
        for (const c of large) attributes.largeCommunities.add(c);
        if (ad.localPref !== undefined) {
          if (attributes.localPref && attributes.localPref.value !== ad.localPref) {
            problem(
              ['advertisements', i, 'localPref'],
              `${aggregated} to peer ${peerNames.get(peer) ?? peer}: localPref ${ad.localPref} conflicts with ${attributes.localPref.value} from advertisements[${attributes.localPref.from}]`,
            );
          }
          attributes.localPref = { value: ad.localPref, from: i };
        }
      }
    }
  });
  if (problems.length > 0) throw new InputError(problems);

  const routes: Route[] = [];
  const allPeers = bgp.peers.length;
  for (const [prefix, perPeer] of table) {
    // Peers that get the same attributes share one route.
    const groups = new Map<string, { attributes: PeerAttributes; peers: string[] }>();
    for (const [peer, attributes] of perPeer) {
      const key = attributesKey(attributes);
      const group = groups.get(key) ?? { attributes, peers: [] };
      group.peers.push(peer);
      groups.set(key, group);
    }
    for (const { attributes, peers: targets } of groups.values()) {
      const route: Route = { prefix };
      if (attributes.communities.size) route.communities = [...attributes.communities].sort();
      if (attributes.largeCommunities.size) route.largeCommunities = [...attributes.largeCommunities].sort();
      if (attributes.localPref) route.localPref = attributes.localPref.value;
      if (targets.length !== allPeers) route.peers = targets.sort();
      routes.push(route);
    }
  }
  routes.sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));

  const speaker: SpeakerConfig = { asn: bgp.asn, routerId: routerId as string, peers };
  const listen =
    bgp.listen ?? (bgp.peers.some((p) => p.passive) ? { address: '::', port: DEFAULT_BGP_PORT } : undefined);
  if (listen) speaker.listen = listen;
  return { speaker, routes, peerNames };
}

/** The firewall's always-allowed flows for BGP: our sessions to and from every configured peer. */
export function bgpSystemAllows(bgp: BgpConfig | undefined): SystemAllow[] {
  if (!bgp) return [];
  const listenPort = bgp.listen ? bgp.listen.port : DEFAULT_BGP_PORT;
  return bgp.peers.flatMap((peer) => {
    const address = peer.peerAddress.split('%')[0] ?? peer.peerAddress;
    const name = peer.name ?? peer.peerAddress;
    return [
      {
        reason: `BGP session to peer ${name}`,
        direction: 'egress' as const,
        peers: [address],
        l4: [
          { kind: 'ports' as const, protocol: 'TCP' as const, port: peer.peerPort, endPort: peer.peerPort },
        ],
      },
      {
        reason: `BGP session from peer ${name}`,
        direction: 'ingress' as const,
        peers: [address],
        l4: [{ kind: 'ports' as const, protocol: 'TCP' as const, port: listenPort, endPort: listenPort }],
      },
    ];
  });
}
