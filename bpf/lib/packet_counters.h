/* Map layout: nw_pkt_counters. Mirrored by bpf/codecs/packet-counters.ts;
 * test/unit/codec-btf.test.ts checks that both agree. */
#ifndef NODEWARDEN_PACKET_COUNTERS_H
#define NODEWARDEN_PACKET_COUNTERS_H

#include "common.h"

/* One slot per hook, so a test can tell which attachment saw the packet. */
enum nw_counter_slot {
	NW_SLOT_XDP = 0,
	NW_SLOT_TC_INGRESS = 1,
	NW_SLOT_TC_EGRESS = 2,
	NW_SLOT_MAX = 3,
};

struct nw_packet_counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NW_SLOT_MAX);
	__type(key, __u32);
	__type(value, struct nw_packet_counter);
	NW_PIN_BY_NAME;
} nw_pkt_counters SEC(".maps");

static __always_inline void nw_count_packet(__u32 slot, __u64 len)
{
	struct nw_packet_counter *c = bpf_map_lookup_elem(&nw_pkt_counters, &slot);

	if (!c)
		return;
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, len);
}

#endif
