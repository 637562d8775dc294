/**
 * The guest's half of test/integration/debian12-kernel.test.ts, run with tsx
 * on Debian 12's 6.1 kernel: every BPF object through the verifier, then the
 * firewall's tc programs and the L2 responder's XDP program attached to a veth
 * in a lab namespace, and an ARP request for an owned address run through
 * nw_l2_respond. Writes its JSON to the path given as the only argument; the
 * host side asserts on it.
 */
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { L2_MAPS, l2Entry, l2Key } from '../../bpf/codecs/l2.js';
import {
  type Attachment,
  attachTc,
  attachXdp,
  BpfMap,
  BpfObject,
  detachPinnedLink,
  inNetns,
  testRun,
} from '../../bpf/index.js';
import { withLab } from '../lab/index.js';
import { loadEveryObject } from '../support/bpf-objects.js';
import { mountTempBpffs } from '../support/bpffs.js';
import { arpFrame, mappedAddress } from '../support/packets.js';
import { BPF_OBJECT } from '../support/paths.js';

const LO = 1;
const OWNED_V4 = '192.0.2.10';
const OUR_MAC = Buffer.from([0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01]);

export interface AttachReport {
  attachments: Pick<Attachment, 'kind' | 'program' | 'direction' | 'fallbackReason'>[];
  /** nw_l2_respond's verdict for an ARP request asking for an owned address. */
  arpRetval: number;
  /** The ARP opcode of the frame it left behind (2: reply). */
  arpOutOpcode: number;
}

async function attachOnVeth(): Promise<AttachReport> {
  const bpffs = mountTempBpffs();
  try {
    return await withLab(async (lab) => {
      const [node, peer] = [await lab.host('node'), await lab.host('peer')];
      const link = await lab.link(node, peer);
      const dev = link.a.dev;
      const firewall = BpfObject.load(BPF_OBJECT('firewall'), { pinDir: `${bpffs.dir}/firewall` });
      const l2 = BpfObject.load(BPF_OBJECT('l2_responder'), { pinDir: `${bpffs.dir}/l2` });
      try {
        const pin = (name: string) => `${bpffs.dir}/links-${name}`;
        const attachments = inNetns(node.netns, () => [
          attachTc({
            program: firewall.program('nw_fw_ingress'),
            ifname: dev,
            direction: 'ingress',
            mode: 'auto',
            pinPath: pin('fw-in'),
          }),
          attachTc({
            program: firewall.program('nw_fw_egress'),
            ifname: dev,
            direction: 'egress',
            mode: 'auto',
            pinPath: pin('fw-out'),
          }),
          attachXdp({
            program: l2.program('nw_l2_respond'),
            ifname: dev,
            mode: 'native',
            pinPath: pin('l2'),
          }),
        ]);
        // Without ctx_in the test run receives on the loopback device.
        new BpfMap(l2.map(L2_MAPS.owned), l2Key, l2Entry).update(
          { ifindex: LO, addr: mappedAddress(OWNED_V4) },
          { mac: OUR_MAC, flags: 0, expires_ns: 0n },
        );
        const run = testRun(l2.program('nw_l2_respond'), {
          packet: arpFrame({ senderIp: '192.0.2.1', targetIp: OWNED_V4 }),
        });
        for (const a of attachments) if (a.kind !== 'tc') detachPinnedLink(a.pinPath!);
        return {
          attachments: attachments.map(({ kind, program, direction, fallbackReason }) => ({
            kind,
            program,
            direction,
            fallbackReason,
          })),
          arpRetval: run.retval,
          arpOutOpcode: run.output.length >= 22 ? run.output.readUInt16BE(20) : -1,
        };
      } finally {
        firewall.close();
        l2.close();
      }
    });
  } finally {
    bpffs.destroy();
  }
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: debian12-kernel-guest.ts RESULT.json');
  const objects = loadEveryObject();
  // Attaching needs loaded programs: only tried when every object passed the verifier.
  const attach = objects.every((o) => o.whole === 'loaded') ? await attachOnVeth() : undefined;
  writeFileSync(out, `${JSON.stringify({ kernel: release(), objects, attach }, null, 2)}\n`);
}

await main();
