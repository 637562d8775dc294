/**
 * The speaker against BIRD 2, FRR (bgpd) and GoBGP, each in its own lab
 * namespace: eBGP over IPv4 and over IPv6 and iBGP over IPv4 establish; the
 * peer's own CLI shows our prefixes with the right next hop, AS path, MED,
 * communities, large communities and (iBGP) local preference; a removed prefix
 * is withdrawn.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BgpSpeaker } from '../../announcers/bgp/index.js';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { BirdPeer } from '../peers/bird.js';
import { FrrPeer } from '../peers/frr.js';
import { GobgpPeer } from '../peers/gobgp.js';
import { type PeerSpec, type RealPeer, waitEstablished, waitFor } from '../peers/types.js';
import { RecordingLogger, speakerIn } from '../support/bgp.js';

const IMPLEMENTATIONS = {
  bird: (host: Host, spec: PeerSpec) => BirdPeer.start(host, spec),
  frr: (host: Host, spec: PeerSpec) => FrrPeer.start(host, spec),
  gobgp: (host: Host, spec: PeerSpec) => GobgpPeer.start(host, spec),
} as const;

const EBGP_ASN = 65001;
const PEER_ASN = 65002;

describe.each(Object.entries(IMPLEMENTATIONS).map(([name, start], i) => ({ name, start, net: 110 + i })))(
  'with $name',
  ({ start, net }) => {
    const addr = {
      node4: `10.${net}.0.1`,
      nodeIbgp4: `10.${net}.0.11`,
      peer4: `10.${net}.0.2`,
      node6: `fd00:${net}::1`,
      peer6: `fd00:${net}::2`,
    };
    let lab: Lab;
    let node: Host;
    let peer: RealPeer;
    let ebgp: BgpSpeaker;
    let ibgp: BgpSpeaker;
    const logs = new RecordingLogger();

    const ebgpRoutes = [
      {
        prefix: '198.51.100.1/32',
        communities: ['65001:100', 'no-export'],
        largeCommunities: ['65001:1:1'],
        med: 10,
      },
      { prefix: '198.51.100.3/32' },
      { prefix: '2001:db8:1::1/128', communities: ['65001:600'], largeCommunities: ['65001:6:6'] },
    ];

    beforeAll(async () => {
      lab = await createLab();
      node = await lab.host('node');
      const peerHost = await lab.host('peer');
      await lab.link(node, peerHost, {
        aDev: 'eth0',
        bDev: 'eth0',
        aAddrs: [`${addr.node4}/24`, `${addr.nodeIbgp4}/24`, `${addr.node6}/64`],
        bAddrs: [`${addr.peer4}/24`, `${addr.peer6}/64`],
      });
      peer = await start(peerHost, {
        asn: PEER_ASN,
        routerId: addr.peer4,
        neighbors: [
          { address: addr.node4, asn: EBGP_ASN, holdTime: 9, families: ['ipv4'] },
          { address: addr.node6, asn: EBGP_ASN, holdTime: 9, families: ['ipv6'] },
          { address: addr.nodeIbgp4, asn: PEER_ASN, holdTime: 9, families: ['ipv4'] },
        ],
      });
      const common = { port: 179, holdTime: 9, connectRetryTime: 1, passive: false };
      ebgp = speakerIn(
        node,
        {
          asn: EBGP_ASN,
          routerId: addr.node4,
          peers: [
            { ...common, address: addr.peer4, asn: PEER_ASN, families: ['ipv4-unicast'] },
            { ...common, address: addr.peer6, asn: PEER_ASN, families: ['ipv6-unicast'] },
          ],
        },
        { log: logs },
      );
      ibgp = speakerIn(
        node,
        {
          asn: PEER_ASN,
          routerId: addr.nodeIbgp4,
          peers: [
            {
              ...common,
              address: addr.peer4,
              asn: PEER_ASN,
              localAddress: addr.nodeIbgp4,
              families: ['ipv4-unicast'],
            },
          ],
        },
        { log: logs },
      );
      ebgp.setRoutes(ebgpRoutes);
      ibgp.setRoutes([{ prefix: '198.51.100.2/32', localPref: 250, communities: ['65002:200'], med: 20 }]);
      await ebgp.start();
      await ibgp.start();
    });

    afterAll(async () => {
      await ebgp?.stop();
      await ibgp?.stop();
      await peer?.stop();
      await lab?.destroy();
    });

    it('establishes eBGP over IPv4 and IPv6 and iBGP over IPv4', async () => {
      await waitEstablished(peer, addr.node4);
      await waitEstablished(peer, addr.node6);
      await waitEstablished(peer, addr.nodeIbgp4);
      expect(ebgp.peers().map((p) => p.state)).toEqual(['Established', 'Established']);
      expect(ibgp.peers().map((p) => p.state)).toEqual(['Established']);
    });

    it("shows our eBGP prefixes in the peer's CLI with next hop, AS path, MED and communities", async () => {
      const v4 = await waitFor(
        'IPv4 eBGP routes',
        () => peer.routes('ipv4', addr.node4),
        (r) => r.length === 2,
      );
      expect(v4).toEqual([
        expect.objectContaining({
          prefix: '198.51.100.1/32',
          nextHop: addr.node4,
          asPath: [EBGP_ASN],
          med: 10,
          communities: ['65001:100', '65535:65281'],
          largeCommunities: ['65001:1:1'],
        }),
        expect.objectContaining({
          prefix: '198.51.100.3/32',
          nextHop: addr.node4,
          asPath: [EBGP_ASN],
          communities: [],
        }),
      ]);
      const v6 = await waitFor(
        'IPv6 eBGP routes',
        () => peer.routes('ipv6', addr.node6),
        (r) => r.length === 1,
      );
      expect(v6).toEqual([
        expect.objectContaining({
          prefix: '2001:db8:1::1/128',
          nextHop: addr.node6,
          asPath: [EBGP_ASN],
          communities: ['65001:600'],
          largeCommunities: ['65001:6:6'],
        }),
      ]);
    });

    it('shows our iBGP prefix with local preference and an empty AS path', async () => {
      const routes = await waitFor(
        'iBGP route',
        () => peer.routes('ipv4', addr.nodeIbgp4),
        (r) => r.length === 1,
      );
      expect(routes).toEqual([
        expect.objectContaining({
          prefix: '198.51.100.2/32',
          nextHop: addr.nodeIbgp4,
          asPath: [],
          localPref: 250,
          med: 20,
          communities: ['65002:200'],
        }),
      ]);
    });

    it('withdraws a removed prefix and keeps the others', async () => {
      ebgp.setRoutes(ebgpRoutes.filter((r) => r.prefix !== '198.51.100.1/32'));
      const v4 = await waitFor(
        'withdrawal',
        () => peer.routes('ipv4', addr.node4),
        (r) => r.length === 1,
      );
      expect(v4.map((r) => r.prefix)).toEqual(['198.51.100.3/32']);
      expect((await peer.routes('ipv6', addr.node6)).map((r) => r.prefix)).toEqual(['2001:db8:1::1/128']);
      ebgp.setRoutes([]);
      await waitFor(
        'all withdrawn',
        () => peer.routes('ipv6', addr.node6),
        (r) => r.length === 0,
      );
      expect(await peer.routes('ipv4', addr.node4)).toEqual([]);
      expect(ebgp.peers().map((p) => p.state)).toEqual(['Established', 'Established']);
    });
  },
);
