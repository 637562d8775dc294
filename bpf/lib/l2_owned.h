/* Map layouts of the L2 responder: nw_l2_owned, the (IP, interface) pairs this
 * node answers ARP and NDP for, and nw_l2_stats, replies sent per pair.
 * Mirrored by bpf/codecs/l2.ts; test/unit/codec-btf.test.ts checks both agree. */
#ifndef NODEWARDEN_L2_OWNED_H
#define NODEWARDEN_L2_OWNED_H

#include "common.h"

/* IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d), as in the firewall. */
struct nw_l2_key {
	__u32 ifindex;
	__u8 addr[16];
};

struct nw_l2_entry {
	/* The MAC to answer with: the announcing interface's own. XDP cannot
	 * read a device's address, so the daemon writes it here. */
	__u8 mac[6];
	__u16 flags;
	/* bpf_ktime_get_boot_ns() after which the entry no longer answers; 0 =
	 * forever. A Kubernetes-mode daemon renews it while it lives, so the
	 * responder of a daemon that was killed and not restarted falls silent
	 * once its lease has expired instead of answering beside the new owner. */
	__u64 expires_ns;
};

struct nw_l2_stats {
	__u64 replies;
	/* bpf_ktime_get_boot_ns() of the last reply. */
	__u64 last_reply_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct nw_l2_key);
	__type(value, struct nw_l2_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	NW_PIN_BY_NAME;
} nw_l2_owned SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct nw_l2_key);
	__type(value, struct nw_l2_stats);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	NW_PIN_BY_NAME;
} nw_l2_stats SEC(".maps");

/* An entry past its deadline: its daemon died and nobody renewed it. The
 * request is dropped, not passed: the dead daemon's local route for the IP
 * is still there, and the kernel's ARP stack would answer for it instead. */
static __always_inline int nw_l2_expired(const struct nw_l2_entry *entry)
{
	return entry->expires_ns && bpf_ktime_get_boot_ns() > entry->expires_ns;
}

static __always_inline void nw_l2_count_reply(const struct nw_l2_key *key)
{
	struct nw_l2_stats *stats = bpf_map_lookup_elem(&nw_l2_stats, key);
	__u64 now = bpf_ktime_get_boot_ns();

	if (!stats) {
		struct nw_l2_stats init = { .replies = 1, .last_reply_ns = now };

		/* Another CPU may have created it meanwhile: then count there. */
		if (bpf_map_update_elem(&nw_l2_stats, key, &init, BPF_NOEXIST) == 0)
			return;
		stats = bpf_map_lookup_elem(&nw_l2_stats, key);
		if (!stats)
			return;
	}
	__sync_fetch_and_add(&stats->replies, 1);
	stats->last_reply_ns = now;
}

#endif
