/* Packet counters on every hook nodewarden uses. They never change a verdict:
 * the foundation's daemon loads them to prove the load/pin/attach path, and
 * the tests count ping packets with them. */
#include "common.h"
#include "packet_counters.h"

SEC("xdp")
int nw_xdp_count(struct xdp_md *ctx)
{
	nw_count_packet(NW_SLOT_XDP, ctx->data_end - ctx->data);
	return XDP_PASS;
}

SEC("tc")
int nw_tc_count_ingress(struct __sk_buff *skb)
{
	nw_count_packet(NW_SLOT_TC_INGRESS, skb->len);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int nw_tc_count_egress(struct __sk_buff *skb)
{
	nw_count_packet(NW_SLOT_TC_EGRESS, skb->len);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
