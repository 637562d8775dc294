/* DSR load balancing.
 *
 * nw_dsr_xdp runs on the node that receives VIP traffic. For a VIP:port in
 * nw_dsr_vips it picks a backend node (the flow table first, then the
 * service's Maglev table), wraps the packet in IPIP or IP6IP6 towards that
 * node and sends it back out (XDP_TX, or a redirect to another device).
 * Everything else goes on to the stack untouched.
 *
 * It is also the L2 responder of nodes with DSR: a device has one XDP
 * program, and the node that owns a VIP on the LAN is the one that forwards
 * its traffic. So it answers ARP and neighbour solicitations for nw_l2_owned
 * first (lib/l2_responder.h, the maps shared with bpf/l2_responder.c by pinned
 * name), and forwards what the responder passes. Each part does nothing while
 * its maps have no entries.
 *
 * nw_dsr_decap runs at tc ingress on backend nodes: it strips the outer header
 * of packets from known load-balancer nodes, so the stack sees the client's
 * packet to the VIP and answers it directly, with the VIP as source. It also
 * keeps the backend from answering ARP for DSR VIPs it holds as local. */
#include "common.h"
#include "parse.h"
#include "dsr.h"
#include "l2_responder.h"
#include <linux/if_arp.h>

#ifndef BPF_FIB_LOOKUP_SRC
#define BPF_FIB_LOOKUP_SRC (1U << 4) /* kernel 6.6: the lookup also picks our source address */
#endif
#define NW_AF_INET 2
#define NW_AF_INET6 10
#define NW_IPV4_DF 0x4000
#define NW_IPV4_MF_OFFSET 0x3fff

static __always_inline __u32 nw_rotl(__u32 v, int n)
{
	return (v << n) | (v >> (32 - n));
}

/* murmur3 over the 40-byte flow key: cheap, and spreads flows evenly. */
static __always_inline __u32 nw_flow_hash(const struct nw_dsr_flow_key *key)
{
	const __u32 *w = (const __u32 *)key;
	__u32 h = 0x4e57;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*key) / 4); i++) {
		__u32 k = w[i] * 0xcc9e2d51;

		h ^= nw_rotl(k, 15) * 0x1b873593;
		h = nw_rotl(h, 13) * 5 + 0xe6546b64;
	}
	h ^= sizeof(*key);
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline int nw_is_mapped_v4(const __u8 *addr)
{
	return *(__u64 *)addr == 0 && *(__u16 *)(addr + 8) == 0 && addr[10] == 0xff && addr[11] == 0xff;
}

static __always_inline int nw_is_zero(const __u8 *addr)
{
	return *(__u64 *)addr == 0 && *(__u64 *)(addr + 8) == 0;
}

static __always_inline __u16 nw_ipv4_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* The flow table's key: a 64-bit multiply-xorshift over the tuple's five
 * 64-bit words. A few instructions per word; collisions are caught by the
 * tuple stored in the entry. */
static __always_inline __u64 nw_flow_key64(const struct nw_dsr_flow_key *key)
{
	const __u64 *w = (const __u64 *)key;
	__u64 h = 0x4e57;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*key) / 8); i++) {
		h ^= w[i];
		h *= 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	return h;
}

static __always_inline int nw_same_tuple(const struct nw_dsr_flow_key *a, const struct nw_dsr_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/* Chooses the backend of a flow: the one it already has while that node is
 * still a backend, else the Maglev table's. Returns the backend's entry in
 * nw_dsr_backends (its next hop), or NULL when there is none; *stat says how
 * it was chosen. */
static __always_inline struct nw_dsr_nexthop *nw_pick_backend(struct nw_dsr_vip *vip,
							       struct nw_dsr_flow_key *fk,
							       struct nw_dsr_backend *out, __u32 *stat)
{
	__u64 key = nw_flow_key64(fk);
	struct nw_dsr_flow *flow = bpf_map_lookup_elem(&nw_dsr_flows64, &key);
	struct nw_dsr_flow fresh;
	struct nw_dsr_backend *b;
	struct nw_dsr_nexthop *nh;
	__u32 service = vip->service;
	__u32 slot;
	void *table;

	if (flow && nw_same_tuple(&flow->tuple, fk)) {
		nh = bpf_map_lookup_elem(&nw_dsr_backends, &flow->backend);
		if (nh) {
			__builtin_memcpy(out, &flow->backend, sizeof(*out));
			*stat = NW_DSR_FLOW_HIT;
			return nh;
		}
	}
	table = bpf_map_lookup_elem(&nw_dsr_maglev, &service);
	if (!table)
		return NULL;
	/* murmur3 for the slot, as before the 64-bit flow key: every load
	 * balancer, old or new, sends a flow to the same backend. */
	slot = nw_flow_hash(fk) % NW_MAGLEV_SIZE;
	b = bpf_map_lookup_elem(table, &slot);
	if (!b || nw_is_zero(b->addr))
		return NULL;
	nh = bpf_map_lookup_elem(&nw_dsr_backends, b);
	if (!nh)
		return NULL;
	__builtin_memcpy(out, b, sizeof(*out));
	__builtin_memcpy(&fresh.tuple, fk, sizeof(*fk));
	__builtin_memcpy(&fresh.backend, b, sizeof(*b));
	bpf_map_update_elem(&nw_dsr_flows64, &key, &fresh, BPF_ANY);
	*stat = NW_DSR_PICKED;
	return nh;
}

/* Where packets to a backend node leave: device, MACs and our source
 * address. Returns the bpf_fib_lookup result. */
static __always_inline long nw_dsr_fib(struct xdp_md *ctx, struct nw_dsr_backend *backend, int v4,
				       __u32 tot_len, struct nw_dsr_nexthop *hop)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.ifindex = ctx->ingress_ifindex;
	fib.tot_len = tot_len;
	if (v4) {
		fib.family = NW_AF_INET;
		__builtin_memcpy(&fib.ipv4_dst, backend->addr + 12, 4);
	} else {
		fib.family = NW_AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, backend->addr, 16);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_SRC);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	hop->ifindex = fib.ifindex;
	/* The FIB reports the MTU only when a packet exceeds it: remember the size it accepted. */
	hop->mtu = tot_len;
	__builtin_memcpy(hop->smac, fib.smac, ETH_ALEN);
	__builtin_memcpy(hop->dmac, fib.dmac, ETH_ALEN);
	if (v4) {
		__builtin_memset(hop->src, 0, 10);
		hop->src[10] = 0xff;
		hop->src[11] = 0xff;
		__builtin_memcpy(hop->src + 12, &fib.ipv4_src, 4);
	} else {
		__builtin_memcpy(hop->src, fib.ipv6_src, 16);
	}
	return rc;
}

SEC("xdp")
int nw_dsr_xdp(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct nw_packet pkt = {};
	struct nw_dsr_vip_key vk = {};
	struct nw_dsr_flow_key fk = {};
	struct nw_dsr_backend backend;
	struct nw_dsr_nexthop hop = {};
	struct nw_dsr_nexthop *nh;
	struct nw_dsr_vip *vip;
	struct ethhdr *eth;
	__u32 inner_len, hdr;
	__u32 stat = NW_DSR_PICKED;
	__u64 now;
	long rc;
	int v4;

	rc = nw_l2_respond_frame(ctx);
	if (rc != XDP_PASS)
		return rc;
	/* Read after the responder, and make the compiler load them again: the
	 * verifier tracks no packet pointer through the 32-bit copy it would
	 * otherwise keep of the responder's loads. */
	asm volatile("" ::: "memory");
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (nw_parse_frame(data, data_end, &pkt) != NW_PARSE_OK)
		return XDP_PASS;
#ifdef NW_DSR_BENCH_RESTORE
	__u8 bench_dst[ETH_ALEN], bench_src[ETH_ALEN];
	__be16 bench_proto = ((struct ethhdr *)data)->h_proto;

	__builtin_memcpy(bench_dst, ((struct ethhdr *)data)->h_dest, ETH_ALEN);
	__builtin_memcpy(bench_src, ((struct ethhdr *)data)->h_source, ETH_ALEN);
#endif
	if (pkt.proto != IPPROTO_TCP && pkt.proto != IPPROTO_UDP && pkt.proto != NW_PROTO_SCTP)
		return XDP_PASS;
	/* Fragments cannot follow their first one to the same backend: the stack reassembles them. */
	if (pkt.fragment)
		return XDP_PASS;
	v4 = pkt.family == 4;
	if (v4) {
		struct iphdr *ip = data + sizeof(struct ethhdr);

		if ((void *)(ip + 1) > data_end || (ip->frag_off & bpf_htons(NW_IPV4_MF_OFFSET)))
			return XDP_PASS;
	}
	__builtin_memcpy(vk.addr, pkt.daddr, 16);
	vk.port = pkt.dport;
	vk.proto = pkt.proto;
	vip = bpf_map_lookup_elem(&nw_dsr_vips, &vk);
	if (!vip)
		return XDP_PASS;

	__builtin_memcpy(fk.saddr, pkt.saddr, 16);
	__builtin_memcpy(fk.daddr, pkt.daddr, 16);
	fk.sport = pkt.sport;
	fk.dport = pkt.dport;
	fk.proto = pkt.proto;
	nh = vip->backends ? nw_pick_backend(vip, &fk, &backend, &stat) : NULL;
	if (!nh || nw_is_mapped_v4(backend.addr) != v4) {
		nw_dsr_count(NW_DSR_NO_BACKEND);
		return XDP_PASS;
	}

	hdr = v4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	inner_len = pkt.len - sizeof(struct ethhdr);
	now = bpf_ktime_get_coarse_ns();
	if (nh->expires_ns > now && inner_len + hdr <= nh->mtu) {
		__builtin_memcpy(&hop, nh, sizeof(hop));
	} else {
		rc = nw_dsr_fib(ctx, &backend, v4, inner_len + hdr, &hop);
		if (rc == BPF_FIB_LKUP_RET_NOT_FWDED) {
			/* The backend is this node: the stack serves the VIP itself. */
			nw_dsr_count(NW_DSR_LOCAL);
			return XDP_PASS;
		}
		/* The stack would route the VIP packet by its own tables, which know
		 * nothing of the backend (and may send it straight back): drop, count. */
		if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
			nw_dsr_count(NW_DSR_TOO_BIG);
			return XDP_DROP;
		}
		if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
			nw_dsr_count(NW_DSR_FIB_FAILED);
			return XDP_DROP;
		}
		hop.expires_ns = now + NW_DSR_NEXTHOP_TTL_NS;
		/* BPF_EXIST: a backend the daemon removed meanwhile stays removed. */
		bpf_map_update_elem(&nw_dsr_backends, &backend, &hop, BPF_EXIST);
	}

	if (bpf_xdp_adjust_head(ctx, -(int)hdr))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if (v4) {
		struct iphdr *outer = data + sizeof(*eth);
		struct iphdr *inner = (void *)(outer + 1);

		if ((void *)(inner + 1) > data_end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_dest, hop.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, hop.smac, ETH_ALEN);
		eth->h_proto = bpf_htons(ETH_P_IP);
		outer->version = 4;
		outer->ihl = 5;
		outer->tos = inner->tos;
		outer->tot_len = bpf_htons(inner_len + sizeof(*outer));
		outer->id = 0;
		/* DF: a fragmented outer packet would reach the backend's stack undecapsulated. */
		outer->frag_off = bpf_htons(NW_IPV4_DF);
		outer->ttl = 64;
		outer->protocol = IPPROTO_IPIP;
		outer->check = 0;
		__builtin_memcpy(&outer->saddr, hop.src + 12, 4);
		__builtin_memcpy(&outer->daddr, backend.addr + 12, 4);
		outer->check = nw_ipv4_csum(outer);
	} else {
		struct ipv6hdr *outer = data + sizeof(*eth);
		struct ipv6hdr *inner = (void *)(outer + 1);
		__u32 label = nw_flow_hash(&fk) & 0xfffff;

		if ((void *)(inner + 1) > data_end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_dest, hop.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, hop.smac, ETH_ALEN);
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		outer->version = 6;
		outer->priority = inner->priority;
		/* The flow label gives routers between us and the backend per-flow entropy. */
		outer->flow_lbl[0] = (inner->flow_lbl[0] & 0xf0) | ((label >> 16) & 0x0f);
		outer->flow_lbl[1] = label >> 8;
		outer->flow_lbl[2] = label;
		outer->payload_len = bpf_htons(inner_len);
		outer->nexthdr = IPPROTO_IPV6;
		outer->hop_limit = 64;
		__builtin_memcpy(&outer->saddr, hop.src, 16);
		__builtin_memcpy(&outer->daddr, backend.addr, 16);
	}
	nw_dsr_count(stat);
#ifdef NW_DSR_BENCH_RESTORE
	/* Benchmark build only (test/fixtures/bpf/dsr_bench.c): give the packet its
	 * head and Ethernet header back, so the kernel's test-run repeat loop sees
	 * the original each time. */
	{
		struct ethhdr orig;

		__builtin_memcpy(orig.h_dest, bench_dst, ETH_ALEN);
		__builtin_memcpy(orig.h_source, bench_src, ETH_ALEN);
		orig.h_proto = bench_proto;
		if (bpf_xdp_adjust_head(ctx, (int)hdr))
			return XDP_ABORTED;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + sizeof(orig) > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(data, &orig, sizeof(orig));
	}
#endif
	if (hop.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(hop.ifindex, 0);
}

static __always_inline int nw_from_lb_node(struct nw_dsr_backend *key)
{
	return bpf_map_lookup_elem(&nw_dsr_lb_nodes, key) != NULL;
}

SEC("tc")
int nw_dsr_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct nw_dsr_backend key = {};

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_UNSPEC;
	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arphdr *arp = (void *)(eth + 1);
		__u8 *tpa = (__u8 *)(arp + 1) + 16; /* after sender MAC+IP and target MAC */

		if ((void *)(tpa + 4) > data_end || arp->ar_op != bpf_htons(ARPOP_REQUEST) ||
		    arp->ar_pro != bpf_htons(ETH_P_IP) || arp->ar_pln != 4 || arp->ar_hln != ETH_ALEN)
			return TC_ACT_UNSPEC;
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(key.addr + 12, tpa, 4);
		if (bpf_map_lookup_elem(&nw_dsr_local_vips, &key)) {
			nw_dsr_count(NW_DSR_ARP_DROPPED);
			return TC_ACT_SHOT;
		}
		return TC_ACT_UNSPEC;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl != 5 ||
		    ip->protocol != IPPROTO_IPIP || (ip->frag_off & bpf_htons(NW_IPV4_MF_OFFSET)))
			return TC_ACT_UNSPEC;
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(key.addr + 12, &ip->saddr, 4);
		if (!nw_from_lb_node(&key))
			return TC_ACT_UNSPEC;
		if (bpf_skb_adjust_room(skb, -(int)sizeof(*ip), BPF_ADJ_ROOM_MAC, 0))
			return TC_ACT_SHOT;
		nw_dsr_count(NW_DSR_DECAPSULATED);
		return TC_ACT_UNSPEC;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6 || ip6->nexthdr != IPPROTO_IPV6)
			return TC_ACT_UNSPEC;
		__builtin_memcpy(key.addr, &ip6->saddr, 16);
		if (!nw_from_lb_node(&key))
			return TC_ACT_UNSPEC;
		if (bpf_skb_adjust_room(skb, -(int)sizeof(*ip6), BPF_ADJ_ROOM_MAC, 0))
			return TC_ACT_SHOT;
		nw_dsr_count(NW_DSR_DECAPSULATED);
		return TC_ACT_UNSPEC;
	}
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
