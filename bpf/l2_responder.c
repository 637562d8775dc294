/* The L2 responder: answers ARP and IPv6 neighbour solicitations for the
 * LoadBalancer IPs this node owns on this interface (nw_l2_owned), in XDP,
 * before the stack sees them. It is pinned, so it keeps answering while the
 * daemon restarts. Everything else, VLAN-tagged frames included, passes. */
#include "common.h"
#include "l2_owned.h"
#include "arp_responder.h"
#include "ndisc_responder.h"

SEC("xdp")
int nw_l2_respond(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return nw_arp_respond(ctx, eth, data_end);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return nw_ndisc_respond(ctx, eth, data_end);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
