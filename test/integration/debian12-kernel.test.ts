/**
 * nodewarden's BPF on the kernel of the supported nodes: Debian 12's 6.1,
 * booted in a qemu guest (bench/vm: debootstrap image cached under
 * /var/cache/nodewarden-bench, built on the first run), because the CI host's
 * newer kernel accepts programs the 6.1 verifier rejects. In the guest
 * (test/integration/debian12-kernel-guest.ts): every program of every object
 * of bpf/out through the verifier, alone and as the whole object, then the
 * firewall's tc programs and the L2 responder's XDP program attached to a veth
 * in a namespace, and an ARP request answered through BPF_PROG_TEST_RUN.
 *
 * Costly by design: the first run builds the image (~4 min), each run boots
 * the guest, under TCG emulation on a host without hardware KVM. It fails (never
 * skips) when the image cannot be built or the guest does not boot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accelerator, type GuestRun, guestImage, REPO, runInGuest } from '../../bench/vm/guest.js';
import type { ObjectVerdict } from '../support/bpf-objects.js';
import type { AttachReport } from './debian12-kernel-guest.js';

const GUEST_TIMEOUT_MS = 12 * 60_000;
const XDP_TX = 3;
const ARP_REPLY = 2;

interface GuestResult {
  kernel: string;
  objects: ObjectVerdict[];
  attach?: AttachReport;
}

const abort = new AbortController();
let run: GuestRun;
let result: GuestResult;

beforeAll(
  async () => {
    const image = guestImage();
    run = await runInGuest({
      image,
      accel: accelerator(),
      script: `cd ${REPO} && exec node node_modules/.bin/tsx test/integration/debian12-kernel-guest.ts /mnt/out/result.json\n`,
      outputs: ['result.json'],
      timeoutMs: GUEST_TIMEOUT_MS,
      signal: abort.signal,
    });
    console.log(`debian12 guest: ${run.seconds} s boot and run, qemu exit ${run.qemuExit}`);
    const json = run.outputs['result.json'];
    if (run.rc !== 0 || !json)
      throw new Error(
        `the Debian 12 guest left no result (qemu exit ${run.qemuExit}, run.sh rc ${run.rc ?? 'none'})\n` +
          `run.sh output:\n${run.log.slice(-6000)}\nconsole:\n${run.console.slice(-3000)}`,
      );
    result = JSON.parse(json) as GuestResult;
    for (const o of result.objects)
      console.log(
        `${result.kernel} ${o.object}: ${Object.keys(o.programs).join(', ')}: ${o.whole.split('\n')[0]}`,
      );
  },
  GUEST_TIMEOUT_MS + 10 * 60_000,
);

// Kills the qemu this file started if the run is still going (a timed-out beforeAll).
afterAll(() => abort.abort());

describe("Debian 12's kernel", () => {
  it('runs the 6.1 kernel', () => {
    expect(result.kernel).toMatch(/^6\.1\./);
  });

  it('has all four objects of bpf/out', () => {
    expect(result.objects.map((o) => o.object)).toEqual([
      'counters.o',
      'dsr.o',
      'firewall.o',
      'l2_responder.o',
    ]);
  });

  it('passes every program of every object through the verifier', () => {
    const rejected = result.objects.flatMap((o) => [
      ...Object.entries(o.programs)
        .filter(([, v]) => v !== 'loaded')
        .map(([p, v]) => `${o.object} ${p}: ${v}`),
      ...(o.whole === 'loaded' ? [] : [`${o.object} (whole object): ${o.whole}`]),
    ]);
    expect(rejected.join('\n\n')).toBe('');
    for (const o of result.objects) expect(Object.keys(o.programs).length).toBeGreaterThan(0);
  });

  it("attaches the firewall's tc programs and the L2 responder to a veth; an ARP request gets XDP_TX", () => {
    const attach = result.attach;
    expect(attach, 'not attempted: an object failed to load').toBeDefined();
    // 6.1 has no tcx: auto mode falls back to a clsact filter.
    expect(attach!.attachments.map((a) => [a.program, a.kind])).toEqual([
      ['nw_fw_ingress', 'tc'],
      ['nw_fw_egress', 'tc'],
      ['nw_l2_respond', 'xdp'],
    ]);
    expect(attach!.arpRetval).toBe(XDP_TX);
    expect(attach!.arpOutOpcode).toBe(ARP_REPLY);
  });
});
