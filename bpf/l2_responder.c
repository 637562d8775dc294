/* The L2 responder: answers ARP and IPv6 neighbour solicitations for the
 * LoadBalancer IPs this node owns on this interface (nw_l2_owned), in XDP,
 * before the stack sees them. It is pinned, so it keeps answering while the
 * daemon restarts. Everything else, VLAN-tagged frames included, passes.
 * This is the XDP program of announcing devices on nodes without DSR; with
 * DSR, nw_dsr_xdp (bpf/dsr.c) runs the same responder first. */
#include "common.h"
#include "l2_responder.h"

SEC("xdp")
int nw_l2_respond(struct xdp_md *ctx)
{
	return nw_l2_respond_frame(ctx);
}

char LICENSE[] SEC("license") = "GPL";
