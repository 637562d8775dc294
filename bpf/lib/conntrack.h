/* Map layout: nw_fw_ct, the firewall's connection tracking. One LRU hash,
 * pinned, never emptied by the daemon: a restarted or upgraded daemon keeps
 * every established flow. The key is normalized (lower endpoint first), so
 * both directions of a flow find the same entry with one lookup.
 * Mirrored by bpf/codecs/firewall.ts. */
#ifndef NODEWARDEN_CONNTRACK_H
#define NODEWARDEN_CONNTRACK_H

#include "common.h"
#include "parse.h"

#define NW_CT_MAX 262144

#define NW_CT_TCP_SYN 1
#define NW_CT_TCP_ESTABLISHED 2
#define NW_CT_TCP_CLOSING 3
#define NW_CT_OTHER 4

#define NW_SEC 1000000000ULL
/* Cilium's defaults: 6 h for established TCP, 60 s for the rest, 10 s after close. */
#define NW_CT_TIMEOUT_TCP_SYN (60 * NW_SEC)
#define NW_CT_TIMEOUT_TCP_ESTABLISHED (21600 * NW_SEC)
#define NW_CT_TIMEOUT_TCP_CLOSING (10 * NW_SEC)
#define NW_CT_TIMEOUT_OTHER (60 * NW_SEC)

#define NW_TCP_FIN 0x01
#define NW_TCP_SYN 0x02
#define NW_TCP_RST 0x04
#define NW_TCP_ACK 0x10

struct nw_ct_key {
	__u8 a_addr[16];
	__u8 b_addr[16];
	__be16 a_port;
	__be16 b_port;
	__u8 proto;
	__u8 pad[3];
};

struct nw_ct_value {
	__u64 last_seen_ns;   /* bpf_ktime_get_coarse_ns: timeouts need no finer clock */
	__u64 packets;
	__u32 rule;           /* the rule that allowed the first packet */
	__u8 state;
	__u8 a_is_origin;     /* 1 when the a side sent the first packet */
	__u8 direction;       /* direction of the first packet (NW_DIR_*) */
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NW_CT_MAX);
	__type(key, struct nw_ct_key);
	__type(value, struct nw_ct_value);
	NW_PIN_BY_NAME;
} nw_fw_ct SEC(".maps");

/* Fills key from the packet's tuple; returns 1 when the source is the a side. */
static __always_inline int nw_ct_key_of(struct nw_ct_key *key, const __u8 *saddr, const __u8 *daddr, __be16 sport,
					__be16 dport, __u8 proto)
{
	const __u64 *s = (const __u64 *)saddr;
	const __u64 *d = (const __u64 *)daddr;
	int src_first;

	if (s[0] != d[0])
		src_first = s[0] < d[0];
	else if (s[1] != d[1])
		src_first = s[1] < d[1];
	else
		src_first = sport <= dport;

	__builtin_memset(key, 0, sizeof(*key));
	key->proto = proto;
	if (src_first) {
		__builtin_memcpy(key->a_addr, saddr, 16);
		__builtin_memcpy(key->b_addr, daddr, 16);
		key->a_port = sport;
		key->b_port = dport;
	} else {
		__builtin_memcpy(key->a_addr, daddr, 16);
		__builtin_memcpy(key->b_addr, saddr, 16);
		key->a_port = dport;
		key->b_port = sport;
	}
	return src_first;
}

static __always_inline __u64 nw_ct_timeout(__u8 state)
{
	switch (state) {
	case NW_CT_TCP_SYN:
		return NW_CT_TIMEOUT_TCP_SYN;
	case NW_CT_TCP_ESTABLISHED:
		return NW_CT_TIMEOUT_TCP_ESTABLISHED;
	case NW_CT_TCP_CLOSING:
		return NW_CT_TIMEOUT_TCP_CLOSING;
	}
	return NW_CT_TIMEOUT_OTHER;
}

/* Looks the packet's flow up and advances its state. Returns 1 for a live flow. */
static __always_inline int nw_ct_lookup(const struct nw_packet *pkt, __u64 now)
{
	struct nw_ct_key key;
	struct nw_ct_value *ct;
	int src_is_a = nw_ct_key_of(&key, pkt->saddr, pkt->daddr, pkt->sport, pkt->dport, pkt->proto);

	ct = bpf_map_lookup_elem(&nw_fw_ct, &key);
	if (!ct)
		return 0;
	/* Signed: the other direction of the flow, on another CPU, may have stored
	 * a stamp a little later than our `now`; that entry is alive, not 584 years old. */
	if ((__s64)(now - ct->last_seen_ns) > (__s64)nw_ct_timeout(ct->state))
		return 0;
	if (pkt->proto == IPPROTO_TCP) {
		__u8 flags = pkt->tcp_flags;

		if (flags & NW_TCP_RST)
			ct->state = NW_CT_TCP_CLOSING;
		else if (flags & NW_TCP_FIN)
			ct->state = NW_CT_TCP_CLOSING;
		else if (ct->state == NW_CT_TCP_SYN && (flags & NW_TCP_ACK) && src_is_a != ct->a_is_origin)
			ct->state = NW_CT_TCP_ESTABLISHED;
		else if (ct->state == NW_CT_TCP_CLOSING && (flags & NW_TCP_SYN) && !(flags & NW_TCP_ACK))
			return 0; /* a new connection reusing the tuple: decide it afresh */
	}
	ct->last_seen_ns = now;
	__sync_fetch_and_add(&ct->packets, 1);
	return 1;
}

static __always_inline void nw_ct_create(const struct nw_packet *pkt, __u64 now, __u32 rule, __u8 direction)
{
	struct nw_ct_key key;
	struct nw_ct_value ct = {
		.last_seen_ns = now,
		.packets = 1,
		.rule = rule,
		.direction = direction,
	};

	ct.a_is_origin = nw_ct_key_of(&key, pkt->saddr, pkt->daddr, pkt->sport, pkt->dport, pkt->proto);
	if (pkt->proto == IPPROTO_TCP) {
		__u8 flags = pkt->tcp_flags;

		/* A flow first seen mid-stream (a policy change, a reboot of the peer) counts as established. */
		ct.state = (flags & NW_TCP_SYN) && !(flags & NW_TCP_ACK) ? NW_CT_TCP_SYN : NW_CT_TCP_ESTABLISHED;
	} else {
		ct.state = NW_CT_OTHER;
	}
	bpf_map_update_elem(&nw_fw_ct, &key, &ct, BPF_ANY);
}

/* ICMP errors about a tracked flow (unreachable, packet too big, time
 * exceeded) are related traffic: path MTU discovery depends on them. */
static __always_inline int nw_ct_related(void *data, void *data_end, const struct nw_packet *pkt, __u64 now)
{
	struct nw_packet inner = { .quoted = 1 };
	__u32 inner_off = pkt->l4_off + 8;
	int is_error;

	if (pkt->proto == IPPROTO_ICMP)
		is_error = pkt->icmp_type == 3 || pkt->icmp_type == 11 || pkt->icmp_type == 12;
	else if (pkt->proto == IPPROTO_ICMPV6)
		is_error = pkt->icmp_type >= 1 && pkt->icmp_type <= 4;
	else
		return 0;
	if (!is_error || pkt->fragment)
		return 0;
	if (pkt->family == 4) {
		if (nw_parse_ipv4(data, data_end, inner_off, &inner) != NW_PARSE_OK)
			return 0;
	} else {
		if (nw_parse_ipv6(data, data_end, inner_off, &inner) != NW_PARSE_OK)
			return 0;
	}
	return nw_ct_lookup(&inner, now);
}

#endif
