/** Helpers for L2 announcement labs: node config and native XDP on a veth. */
import { attachXdp, BpfObject, inNetns } from '../../bpf/index.js';
import { bpfObjectPath } from '../../bpf/paths.js';
import type { Bridge, BridgePort } from '../lab/index.js';

export interface L2NodeOptions {
  /** Extra lines inside the l2 section. */
  l2?: readonly string[];
  /** Extra top-level lines. */
  top?: readonly string[];
  /**
   * Native XDP_TX on a veth needs NAPI on the peer (a bridge port has none): generic by
   * default; native together with enableNativeXdpTx on the node's bridge port.
   */
  xdpMode?: 'native' | 'generic';
  /** metrics.listen; off by default. */
  metrics?: string;
}

/** config.yaml for a lab node that announces `ips` on eth0 (standalone L2). */
export function l2NodeConfig(node: string, ips: readonly string[], options: L2NodeOptions = {}): string {
  return [
    `nodeName: ${node}`,
    ...(options.top ?? []),
    'metrics:',
    `  listen: '${options.metrics ?? ''}'`,
    'datapath:',
    `  xdpMode: ${options.xdpMode ?? 'generic'}`,
    'l2:',
    "  interfaces: ['^eth0$']",
    ...(options.l2 ?? []),
    ...(ips.length > 0 ? ['  announcements:', `    - ips: [${ips.join(', ')}]`] : []),
  ].join('\n');
}

/**
 * Gives the bridge side of `port` NAPI, which native XDP_TX on the node's veth needs, by
 * attaching an XDP_PASS program (the packet counter) to it, pinned under `pinPath`.
 */
export function enableNativeXdpTx(bridge: Bridge, port: BridgePort, pinPath: string): void {
  const object = BpfObject.load(bpfObjectPath('counters'));
  try {
    inNetns(bridge.netns, () =>
      attachXdp({ program: object.program('nw_xdp_count'), ifname: port.port, mode: 'native', pinPath }),
    );
  } finally {
    object.close();
  }
}

/** Polls `probe` until it gives a value; throws naming what it waited for. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
