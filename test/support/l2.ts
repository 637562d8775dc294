/** config.yaml for a lab node that announces `ips` on eth0 (standalone L2). */
export function l2NodeConfig(
  node: string,
  ips: readonly string[],
  extraL2: readonly string[] = [],
  extraTop: readonly string[] = [],
): string {
  return [
    `nodeName: ${node}`,
    ...extraTop,
    'metrics:',
    "  listen: ''",
    // Native XDP_TX on a veth needs NAPI on the peer (a bridge port has none): generic in the lab.
    'datapath:',
    '  xdpMode: generic',
    'l2:',
    "  interfaces: ['^eth0$']",
    ...extraL2,
    ...(ips.length > 0 ? ['  announcements:', `    - ips: [${ips.join(', ')}]`] : []),
  ].join('\n');
}
