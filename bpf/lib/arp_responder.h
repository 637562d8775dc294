/* ARP requests for an owned IPv4 address get a reply with the announcing
 * interface's MAC, rewritten in place and sent back out by XDP_TX. Anything
 * that is not a well-formed Ethernet/IPv4 ARP request for an owned address
 * passes to the stack untouched. */
#ifndef NODEWARDEN_ARP_RESPONDER_H
#define NODEWARDEN_ARP_RESPONDER_H

#include "common.h"
#include "l2_owned.h"
#include <linux/if_ether.h>
#include <linux/if_arp.h>

/* struct arphdr followed by its Ethernet/IPv4 addresses (RFC 826). */
struct nw_arp_eth_ipv4 {
	__be16 hrd;
	__be16 pro;
	__u8 hln;
	__u8 pln;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
} __attribute__((packed));

static __always_inline int nw_arp_respond(struct xdp_md *ctx, struct ethhdr *eth, void *data_end)
{
	struct nw_arp_eth_ipv4 *arp = (void *)(eth + 1);
	struct nw_l2_entry *entry;
	struct nw_l2_key key = { .ifindex = ctx->ingress_ifindex };
	__u8 spa[4];

	if ((void *)(arp + 1) > data_end)
		return XDP_PASS;
	if (arp->hrd != bpf_htons(ARPHRD_ETHER) || arp->pro != bpf_htons(ETH_P_IP) ||
	    arp->hln != ETH_ALEN || arp->pln != 4 || arp->op != bpf_htons(ARPOP_REQUEST))
		return XDP_PASS;
	/* Sender and target the same: another host announcing the address
	 * (gratuitous ARP). Answering would only argue with it. */
	if (__builtin_memcmp(arp->spa, arp->tpa, 4) == 0)
		return XDP_PASS;
	key.addr[10] = 0xff;
	key.addr[11] = 0xff;
	__builtin_memcpy(key.addr + 12, arp->tpa, 4);
	entry = bpf_map_lookup_elem(&nw_l2_owned, &key);
	if (!entry)
		return XDP_PASS;
	if (nw_l2_expired(entry))
		return XDP_DROP;

	__builtin_memcpy(spa, arp->spa, 4);
	__builtin_memcpy(eth->h_dest, arp->sha, ETH_ALEN);
	__builtin_memcpy(eth->h_source, entry->mac, ETH_ALEN);
	arp->op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(arp->tha, arp->sha, ETH_ALEN);
	__builtin_memcpy(arp->tpa, spa, 4);
	__builtin_memcpy(arp->sha, entry->mac, ETH_ALEN);
	__builtin_memcpy(arp->spa, key.addr + 12, 4);
	nw_l2_count_reply(&key);
	return XDP_TX;
}

#endif
