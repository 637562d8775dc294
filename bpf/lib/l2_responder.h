/* The L2 responder's XDP logic: ARP requests and IPv6 neighbour solicitations
 * for the (IP, interface) pairs in nw_l2_owned get a reply by XDP_TX;
 * everything else returns XDP_PASS with the frame untouched, so an XDP program
 * can run its own work after it. Shared by bpf/l2_responder.c (the XDP program
 * of nodes without DSR) and bpf/dsr.c (nw_dsr_xdp runs it before forwarding):
 * a device has one XDP program, and both pin the responder maps by name, so
 * either object answers from the same entries. */
#ifndef NODEWARDEN_L2_RESPONDER_H
#define NODEWARDEN_L2_RESPONDER_H

#include "common.h"
#include "l2_owned.h"
#include "arp_responder.h"
#include "ndisc_responder.h"

static __always_inline int nw_l2_respond_frame(struct xdp_md *ctx)
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

#endif
