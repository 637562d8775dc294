/* Map layouts for DSR load balancing (bpf/dsr.c). Mirrored by
 * bpf/codecs/dsr.ts; test/unit/codec-btf.test.ts checks that both agree.
 * Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6, as in the firewall. */
#ifndef NODEWARDEN_DSR_H
#define NODEWARDEN_DSR_H

#include "common.h"

/* A prime, so that every backend's permutation visits every slot (Maglev). */
#define NW_MAGLEV_SIZE 16381
#define NW_DSR_SERVICES_MAX 1024
#define NW_DSR_VIPS_MAX 4096
#define NW_DSR_FLOWS_MAX 262144
#define NW_DSR_NODES_MAX 4096

/* VIP:port/protocol → the service's Maglev table slot. */
struct nw_dsr_vip_key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct nw_dsr_vip {
	__u32 service;  /* index into nw_dsr_maglev */
	__u32 backends; /* 0: no backend, the packet goes to the stack */
};

/* One backend node's address; an all-zero address is an empty slot. */
struct nw_dsr_backend {
	__u8 addr[16];
};

struct nw_dsr_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* One count per packet: forwarded packets count as PICKED or FLOW_HIT. */
enum nw_dsr_stat {
	NW_DSR_PICKED = 0,      /* forwarded to the backend the Maglev table picked */
	NW_DSR_FLOW_HIT = 1,    /* forwarded to the backend the flow table kept */
	NW_DSR_NO_BACKEND = 2,  /* a VIP without backends: passed to the stack */
	NW_DSR_FIB_FAILED = 3,  /* no route or neighbour towards the backend: dropped */
	NW_DSR_LOCAL = 4,       /* the backend is this node: passed to the stack */
	NW_DSR_DECAPSULATED = 5,
	NW_DSR_ARP_DROPPED = 6, /* an ARP request for a VIP this backend must not answer */
	NW_DSR_TOO_BIG = 7,     /* encapsulation would exceed the egress MTU: dropped */
	NW_DSR_STAT_MAX = 8,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NW_DSR_VIPS_MAX);
	__type(key, struct nw_dsr_vip_key);
	__type(value, struct nw_dsr_vip);
	NW_PIN_BY_NAME;
} nw_dsr_vips SEC(".maps");

/* Each service's Maglev table is an inner map: a new table replaces the old
 * one in a single update, so no packet sees half of it. */
struct nw_dsr_maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NW_MAGLEV_SIZE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct nw_dsr_backend));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, NW_DSR_SERVICES_MAX);
	__type(key, __u32);
	NW_PIN_BY_NAME;
	__array(values, struct nw_dsr_maglev_table);
} nw_dsr_maglev SEC(".maps");

/* A flow's entry: its full 5-tuple, checked on every hit (two flows may share
 * a 64-bit hash), and its backend. */
struct nw_dsr_flow {
	struct nw_dsr_flow_key tuple;
	struct nw_dsr_backend backend;
};

/* Flows keep their backend when the backend set changes, as long as that
 * backend is still in nw_dsr_backends. Keyed by a 64-bit hash of the 5-tuple:
 * the kernel hashes and compares 8 key bytes instead of 40, which is most of
 * the lookup's cost. A flow whose entry holds another tuple is a miss and
 * takes the entry over. (Named apart from nw_dsr_flows, the 40-byte-key table
 * of earlier versions, whose pin the daemon removes.) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NW_DSR_FLOWS_MAX);
	__type(key, __u64);
	__type(value, struct nw_dsr_flow);
	NW_PIN_BY_NAME;
} nw_dsr_flows64 SEC(".maps");

/* A set of addresses: address → 1. */
#define NW_DSR_ADDRESS_SET(name, max)                     \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_HASH);          \
		__uint(max_entries, max);                 \
		__type(key, struct nw_dsr_backend);       \
		__type(value, __u32);                     \
		NW_PIN_BY_NAME;                           \
	} name SEC(".maps")

/* The FIB's answer for a backend node, kept for a short while: bpf_fib_lookup
 * costs more than the rest of the forwarding path together. */
struct nw_dsr_nexthop {
	__u64 expires_ns;  /* bpf_ktime_get_coarse_ns */
	__u32 ifindex;
	__u16 mtu;         /* the largest packet the FIB accepted; bigger ones ask it again */
	__u8 smac[6];
	__u8 dmac[6];
	__u8 src[16];      /* our source address towards the backend */
	__u8 pad[2];
};

#define NW_DSR_NEXTHOP_TTL_NS 1000000000ULL

/* Backend nodes in use by any service, each with its cached next hop (the
 * daemon adds them zeroed, which is expired). One lookup tells whether a
 * flow's backend is still a backend and where to send its packets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NW_DSR_NODES_MAX);
	__type(key, struct nw_dsr_backend);
	__type(value, struct nw_dsr_nexthop);
	NW_PIN_BY_NAME;
} nw_dsr_backends SEC(".maps");

/* On a backend: the load-balancer nodes whose IPIP/IP6IP6 packets it decapsulates. */
NW_DSR_ADDRESS_SET(nw_dsr_lb_nodes, NW_DSR_NODES_MAX);

/* On a backend: DSR VIPs, local to the stack but never to be answered in ARP. */
NW_DSR_ADDRESS_SET(nw_dsr_local_vips, NW_DSR_VIPS_MAX);


struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NW_DSR_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	NW_PIN_BY_NAME;
} nw_dsr_stats SEC(".maps");

static __always_inline void nw_dsr_count(__u32 stat)
{
	__u64 *c = bpf_map_lookup_elem(&nw_dsr_stats, &stat);

	if (c)
		*c += 1;
}

#endif
