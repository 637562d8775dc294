/* Packet parsing for the host firewall: Ethernet, IPv4 (with options),
 * IPv6 (with extension headers), and the L4 fields policy and conntrack need.
 * Addresses are kept as 16 bytes; IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d),
 * so one identity trie and one conntrack key serve both families. */
#ifndef NODEWARDEN_PARSE_H
#define NODEWARDEN_PARSE_H

#include "common.h"
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>

#define NW_IPV6_EXT_MAX 6
/* Headers further in than this are malformed for us; the bound also lets the
 * verifier prove every variable-offset access stays inside the packet. */
#define NW_MAX_HDR_OFF 512
#define NW_PROTO_SCTP 132

enum nw_parse_result {
	NW_PARSE_OK = 0,
	NW_PARSE_NOT_IP = 1,   /* ARP, LLDP, ...: not the firewall's business */
	NW_PARSE_MALFORMED = 2,
};

struct nw_packet {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;       /* or ICMP type<<8|code in host order for policy */
	__be16 dport;
	__u8 proto;         /* L4 protocol after extension headers */
	__u8 family;        /* 4 or 6 */
	__u8 tcp_flags;
	__u8 fragment;      /* 1 for a non-first fragment: no L4 header */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 quoted;        /* set by the caller: the packet is quoted in an ICMP error */
	__u16 l4_off;       /* offset of the L4 header from the start of the frame */
	__u32 len;
};

static __always_inline void nw_map_v4(__u8 *out, __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

/* Reads the L4 header at l4_off: ports, TCP flags, ICMP type and code. */
static __always_inline int nw_parse_l4(void *data, void *data_end, struct nw_packet *pkt)
{
	__u32 off = pkt->l4_off;
	void *l4;

	pkt->sport = 0;
	pkt->dport = 0;
	if (pkt->fragment)
		return NW_PARSE_OK;
	if (off > NW_MAX_HDR_OFF)
		return NW_PARSE_MALFORMED;
	l4 = data + off;
	switch (pkt->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;

		if (l4 + 8 > data_end)
			return NW_PARSE_MALFORMED;
		/* An ICMP error may quote only 8 bytes of the header (RFC 792): the
		 * ports are enough. Its flags are history, not news of the flow. */
		if (pkt->quoted) {
			pkt->sport = tcp->source;
			pkt->dport = tcp->dest;
			return NW_PARSE_OK;
		}
		if ((void *)(tcp + 1) > data_end)
			return NW_PARSE_MALFORMED;
		pkt->sport = tcp->source;
		pkt->dport = tcp->dest;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		return NW_PARSE_OK;
	}
	case IPPROTO_UDP:
	case NW_PROTO_SCTP: {
		/* SCTP's common header starts with the same two ports as UDP. */
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return NW_PARSE_MALFORMED;
		pkt->sport = udp->source;
		pkt->dport = udp->dest;
		return NW_PARSE_OK;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__u8 *icmp = l4;

		if ((void *)(icmp + 4) > data_end)
			return NW_PARSE_MALFORMED;
		pkt->icmp_type = icmp[0];
		pkt->icmp_code = icmp[1];
		/* Echo id as both ports, so request and reply share a conntrack entry. */
		if ((void *)(icmp + 6) <= data_end) {
			__u8 t = icmp[0];
			int echo = pkt->proto == IPPROTO_ICMP ? (t == 8 || t == 0) : (t == 128 || t == 129);

			if (echo) {
				pkt->sport = *(__be16 *)(icmp + 4);
				pkt->dport = pkt->sport;
			}
		}
		return NW_PARSE_OK;
	}
	}
	return NW_PARSE_OK;
}

static __always_inline int nw_parse_ipv4(void *data, void *data_end, __u32 off, struct nw_packet *pkt)
{
	struct iphdr *ip;
	__u32 ihl;

	/* The bound must be checked on the register the pointer is made from: without
	 * the barrier clang checks a caller's `x + 8` as `x > 504`, which older verifiers
	 * (Debian 12's 6.1) cannot carry over to x + 8, and they reject the access. */
	barrier_var(off);
	if (off > NW_MAX_HDR_OFF)
		return NW_PARSE_MALFORMED;
	ip = data + off;
	if ((void *)(ip + 1) > data_end)
		return NW_PARSE_MALFORMED;
	ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < sizeof(*ip))
		return NW_PARSE_MALFORMED;
	if (data + off + ihl > data_end)
		return NW_PARSE_MALFORMED;
	pkt->family = 4;
	pkt->proto = ip->protocol;
	nw_map_v4(pkt->saddr, ip->saddr);
	nw_map_v4(pkt->daddr, ip->daddr);
	pkt->fragment = (bpf_ntohs(ip->frag_off) & 0x1fff) != 0;
	pkt->l4_off = off + ihl;
	return nw_parse_l4(data, data_end, pkt);
}

static __always_inline int nw_parse_ipv6(void *data, void *data_end, __u32 off, struct nw_packet *pkt)
{
	struct ipv6hdr *ip6;
	__u8 next;
	__u32 l4_off;
	int i;

	barrier_var(off); /* as in nw_parse_ipv4 */
	if (off > NW_MAX_HDR_OFF)
		return NW_PARSE_MALFORMED;
	ip6 = data + off;
	if ((void *)(ip6 + 1) > data_end)
		return NW_PARSE_MALFORMED;
	if (ip6->version != 6)
		return NW_PARSE_MALFORMED;
	pkt->family = 6;
	__builtin_memcpy(pkt->saddr, &ip6->saddr, 16);
	__builtin_memcpy(pkt->daddr, &ip6->daddr, 16);
	next = ip6->nexthdr;
	l4_off = off + sizeof(*ip6);

#pragma unroll
	for (i = 0; i < NW_IPV6_EXT_MAX; i++) {
		__u8 *ext;

		if (l4_off > NW_MAX_HDR_OFF)
			return NW_PARSE_MALFORMED;
		ext = data + l4_off;
		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
		    next != IPPROTO_FRAGMENT && next != IPPROTO_AH)
			break;
		if ((void *)(ext + 8) > data_end)
			return NW_PARSE_MALFORMED;
		if (next == IPPROTO_FRAGMENT) {
			/* Fragment offset in the upper 13 bits of bytes 2-3. */
			if ((bpf_ntohs(*(__be16 *)(ext + 2)) & 0xfff8) != 0)
				pkt->fragment = 1;
			next = ext[0];
			l4_off += 8;
		} else if (next == IPPROTO_AH) {
			next = ext[0];
			l4_off += (ext[1] + 2) * 4;
		} else {
			next = ext[0];
			l4_off += (ext[1] + 1) * 8;
		}
	}
	/* Still an extension header after the limit: we cannot find L4. */
	if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	    next == IPPROTO_FRAGMENT || next == IPPROTO_AH)
		return NW_PARSE_MALFORMED;
	pkt->proto = next;
	pkt->l4_off = l4_off;
	return nw_parse_l4(data, data_end, pkt);
}

/* Parses an Ethernet frame. */
static __always_inline int nw_parse_frame(void *data, void *data_end, struct nw_packet *pkt)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return NW_PARSE_MALFORMED;
	pkt->len = data_end - data;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return nw_parse_ipv4(data, data_end, sizeof(*eth), pkt);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return nw_parse_ipv6(data, data_end, sizeof(*eth), pkt);
	return NW_PARSE_NOT_IP;
}

#endif
