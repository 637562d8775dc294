/** BPF_PROG_TEST_RUN: runs a loaded program on a packet without a network, for fuzzing and benchmarks. */
import { checkLibbpf } from './native/errors.js';
import { addressOf, bpf, sizeOf } from './native/ffi.js';
import type { BpfProgram } from './object.js';

export interface TestRunInput {
  /** The packet, from the Ethernet header on. XDP and tc need at least 14 bytes. */
  packet: Buffer;
  /** Runs in a kernel loop; duration is the average per run. */
  repeat?: number;
  /** Room for the packet the program leaves behind (rewrites, encapsulation). */
  outputSize?: number;
  /**
   * XDP only: BPF_F_TEST_XDP_LIVE_FRAMES. Every repetition starts from the
   * original packet (without it, a program that moves the packet's head sees
   * its own output from the second repetition on), and XDP_TX and redirects
   * really transmit. No output packet comes back.
   */
  liveFrames?: boolean;
}

const BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1;

export interface TestRunResult {
  /** The program's return code (XDP_PASS, TC_ACT_SHOT, ...). */
  retval: number;
  /** Average ns per run, measured by the kernel. */
  durationNs: number;
  output: Buffer;
}

export function testRun(program: BpfProgram, input: TestRunInput): TestRunResult {
  const dataIn = Buffer.from(input.packet);
  const dataOut = Buffer.alloc(input.outputSize ?? input.packet.length + 256);
  const opts = {
    sz: sizeOf.testRunOpts,
    data_in: addressOf(dataIn),
    data_out: addressOf(dataOut),
    data_size_in: dataIn.length,
    data_size_out: dataOut.length,
    ctx_in: 0n,
    ctx_out: 0n,
    ctx_size_in: 0,
    ctx_size_out: 0,
    retval: 0,
    repeat: input.repeat ?? 1,
    duration: 0,
    flags: input.liveFrames ? BPF_F_TEST_XDP_LIVE_FRAMES : 0,
    cpu: 0,
    batch_size: 0,
  };
  checkLibbpf(bpf.progTestRun(program.fd, opts), 'test-run program', program.name);
  return { retval: opts.retval, durationNs: opts.duration, output: dataOut.subarray(0, opts.data_size_out) };
}
