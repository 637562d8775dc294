/* IPv6 neighbour solicitations for an owned address get a neighbour
 * advertisement (RFC 4861 4.4) with the Solicited and Override flags and the
 * target link-layer address option, built in place and sent by XDP_TX. A
 * solicitation that fails RFC 4861 7.1.1 validation, a DAD probe (unspecified
 * source) or one with extension headers passes to the stack untouched. */
#ifndef NODEWARDEN_NDISC_RESPONDER_H
#define NODEWARDEN_NDISC_RESPONDER_H

#include "common.h"
#include "l2_owned.h"
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in.h>

#define NW_ND_NS 135
#define NW_ND_NA 136
#define NW_ND_OPT_SOURCE_LL 1
#define NW_ND_OPT_TARGET_LL 2
#define NW_ND_HDR_LEN 24 /* type, code, checksum, reserved/flags, target */
/* Options beyond this many bytes or this many entries: not a solicitation we answer. */
#define NW_ND_OPTS_MAX 64
#define NW_ND_OPTS_COUNT 8
/* The advertisement we send: Ethernet + IPv6 + NA + one 8-byte TLLA option. */
#define NW_NA_FRAME_LEN (ETH_HLEN + 40 + NW_ND_HDR_LEN + 8)

static __always_inline __u16 nw_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Walks the options of a solicitation. Returns 0 when they are well formed,
 * with the source link-layer address copied to *sll (found = 1) if present. */
static __always_inline int nw_nd_options(__u8 *opts, void *data_end, __u32 len, __u8 *sll, int *found)
{
	__u32 off = 0;
	int i;

	if (len > NW_ND_OPTS_MAX)
		return -1;
#pragma unroll
	for (i = 0; i < NW_ND_OPTS_COUNT; i++) {
		__u8 *opt;
		__u32 olen;

		if (off >= len)
			return 0;
		off &= NW_ND_OPTS_MAX * 2 - 1;
		opt = opts + off;
		if ((void *)(opt + 2) > data_end)
			return -1;
		olen = (__u32)opt[1] * 8;
		/* RFC 4861 4.6: a zero length option makes the whole packet invalid. */
		if (olen == 0 || off + olen > len)
			return -1;
		if (opt[0] == NW_ND_OPT_SOURCE_LL && olen == 8) {
			if ((void *)(opt + 8) > data_end)
				return -1;
			__builtin_memcpy(sll, opt + 2, ETH_ALEN);
			*found = 1;
		}
		off += olen;
	}
	return off >= len ? 0 : -1;
}

static __always_inline int nw_ndisc_respond(struct xdp_md *ctx, struct ethhdr *eth, void *data_end)
{
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct nw_l2_key key = { .ifindex = ctx->ingress_ifindex };
	struct nw_l2_entry *entry;
	__u8 reply_mac[ETH_ALEN];
	__u8 our_mac[ETH_ALEN];
	__u8 peer[16];
	__u8 *icmp;
	__u32 payload, sum = 0;
	int has_sll = 0;
	void *data;
	__u16 *words;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	if (ip6->version != 6 || ip6->nexthdr != IPPROTO_ICMPV6 || ip6->hop_limit != 255)
		return XDP_PASS;
	payload = bpf_ntohs(ip6->payload_len);
	if (payload < NW_ND_HDR_LEN || payload > NW_ND_HDR_LEN + NW_ND_OPTS_MAX)
		return XDP_PASS;
	icmp = (void *)(ip6 + 1);
	if ((void *)(icmp + NW_ND_HDR_LEN) > data_end || (void *)icmp + payload > data_end)
		return XDP_PASS;
	if (icmp[0] != NW_ND_NS || icmp[1] != 0)
		return XDP_PASS;
	/* Multicast targets are never solicited; unspecified source is DAD. */
	if (icmp[8] == 0xff)
		return XDP_PASS;
	if (ip6->saddr.in6_u.u6_addr32[0] == 0 && ip6->saddr.in6_u.u6_addr32[1] == 0 &&
	    ip6->saddr.in6_u.u6_addr32[2] == 0 && ip6->saddr.in6_u.u6_addr32[3] == 0)
		return XDP_PASS;
	__builtin_memcpy(reply_mac, eth->h_source, ETH_ALEN);
	if (nw_nd_options(icmp + NW_ND_HDR_LEN, data_end, payload - NW_ND_HDR_LEN, reply_mac, &has_sll) != 0)
		return XDP_PASS;
	__builtin_memcpy(key.addr, icmp + 8, 16);
	/* IPv4-mapped keys hold the IPv4 addresses: never answer them over NDP. */
	if (key.addr[10] == 0xff && key.addr[11] == 0xff && *(__u64 *)key.addr == 0 &&
	    key.addr[8] == 0 && key.addr[9] == 0)
		return XDP_PASS;
	entry = bpf_map_lookup_elem(&nw_l2_owned, &key);
	if (!entry)
		return XDP_PASS;
	if (nw_l2_expired(entry))
		return XDP_DROP;
	__builtin_memcpy(our_mac, entry->mac, ETH_ALEN);
	__builtin_memcpy(peer, &ip6->saddr, 16);

	if (bpf_xdp_adjust_tail(ctx, NW_NA_FRAME_LEN - (int)(data_end - (void *)eth)) != 0)
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + NW_NA_FRAME_LEN > data_end)
		return XDP_ABORTED;

	eth = data;
	__builtin_memcpy(eth->h_dest, reply_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, our_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	ip6 = (void *)(eth + 1);
	*(__be32 *)ip6 = bpf_htonl(0x60000000);
	ip6->payload_len = bpf_htons(NW_ND_HDR_LEN + 8);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 255;
	__builtin_memcpy(&ip6->saddr, key.addr, 16);
	__builtin_memcpy(&ip6->daddr, peer, 16);
	icmp = (void *)(ip6 + 1);
	icmp[0] = NW_ND_NA;
	icmp[1] = 0;
	icmp[2] = 0;
	icmp[3] = 0;
	icmp[4] = 0x60; /* Solicited | Override; not a router */
	icmp[5] = 0;
	icmp[6] = 0;
	icmp[7] = 0;
	__builtin_memcpy(icmp + 8, key.addr, 16);
	icmp[24] = NW_ND_OPT_TARGET_LL;
	icmp[25] = 1;
	__builtin_memcpy(icmp + 26, our_mac, ETH_ALEN);

	/* Pseudo-header (addresses, upper-layer length, next header) + message. */
	words = (__u16 *)&ip6->saddr;
#pragma unroll
	for (i = 0; i < 16; i++)
		sum += words[i];
	sum += bpf_htons(NW_ND_HDR_LEN + 8) + bpf_htons(IPPROTO_ICMPV6);
	words = (__u16 *)icmp;
#pragma unroll
	for (i = 0; i < (NW_ND_HDR_LEN + 8) / 2; i++)
		sum += words[i];
	*(__u16 *)(icmp + 2) = nw_csum_fold(sum);

	nw_l2_count_reply(&key);
	return XDP_TX;
}

#endif
