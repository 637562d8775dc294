/* Map layouts: nw_fw_policy (verdicts), nw_fw_active (the live generation)
 * and nw_fw_rule_stats (per-rule counters). Mirrored by bpf/codecs/firewall.ts.
 *
 * The policy trie is keyed by selector set, direction, protocol and port, in
 * that bit order. Every address has exactly one set (rules of world and all
 * are folded into each set by the compiler), and the compiler resolves overlaps
 * (deny beats allow) before it writes, so one longest-prefix lookup gives the
 * answer. Port ranges become port prefixes, never one entry per port.
 *
 * A set whose entries use at most NW_INLINE_RULES prefix lengths (the usual
 * case: single ports, a range or two) keeps them in nw_fw_policy_hash instead,
 * under the same key with the bits beyond prefixlen zero; its identity value
 * lists the lengths to probe (identity.h, NW_INLINE_HASH). A hash probe costs
 * a fraction of a trie walk. */
#ifndef NODEWARDEN_POLICY_H
#define NODEWARDEN_POLICY_H

#include "common.h"
#include "identity.h"

#define NW_POLICY_MAX (1 << 20)

#define NW_DIR_INGRESS 0
#define NW_DIR_EGRESS 1

/* Verdicts, in the policy value and in events. */
#define NW_VERDICT_NONE 0
#define NW_VERDICT_ALLOW 1
#define NW_VERDICT_DENY 2
#define NW_VERDICT_AUDIT 3        /* would be denied; reported, passed */
#define NW_VERDICT_ALLOW_SYSTEM 4 /* the daemon's own needs: beats deny */

struct nw_policy_key {
	__u32 prefixlen;
	__be32 set;
	__u8 direction;
	__u8 proto;
	__be16 port;  /* ICMP: type<<8 | code */
};

/* Bits of data before the protocol: set and direction. */
#define NW_POLICY_PREFIX_L3 40
#define NW_POLICY_PREFIX_FULL 64

struct nw_policy_value {
	__u8 verdict;
	__u8 pad[3];
	__u32 rule;   /* index into nw_fw_rule_stats and the daemon's rule table */
};

struct nw_policy_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, NW_POLICY_MAX);
	__uint(key_size, sizeof(struct nw_policy_key));
	__uint(value_size, sizeof(struct nw_policy_value));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	NW_PIN_BY_NAME;
	__array(values, struct nw_policy_trie);
} nw_fw_policy SEC(".maps");

struct nw_policy_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, NW_POLICY_MAX);
	__uint(key_size, sizeof(struct nw_policy_key));
	__uint(value_size, sizeof(struct nw_policy_value));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	NW_PIN_BY_NAME;
	__array(values, struct nw_policy_hash);
} nw_fw_policy_hash SEC(".maps");

struct nw_rule_stats {
	__u64 packets;
	__u64 bytes;
};

/* Each generation sizes its counters to its own rule count (BPF_F_INNER_MAP
 * lets instances differ from this one-entry template). A plain array with
 * atomic adds, not a per-CPU one: only new flows count, and a per-CPU array
 * big enough for every rule takes ~100 ms to allocate on each apply. */
struct nw_rule_stats_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct nw_rule_stats));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	NW_PIN_BY_NAME;
	__array(values, struct nw_rule_stats_array);
} nw_fw_rule_stats SEC(".maps");

/* The live generation. The daemon writes a new generation's maps and its
 * defaults into the inactive slot first, then flips `slot` in a second update,
 * so a packet never sees half of a policy. */
struct nw_fw_active_slot {
	__u32 slot;                  /* 0 or 1 */
	__u32 generation;            /* bumps on every apply, for status */
	/* What happens when no rule matches: [slot][direction], an NW_VERDICT_*. */
	__u8 default_verdict[2][2];
	__u8 pad[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nw_fw_active_slot);
	NW_PIN_BY_NAME;
} nw_fw_active SEC(".maps");

static __always_inline struct nw_policy_value *nw_policy_lookup(void *trie, __u32 set, __u8 dir, __u8 proto,
								 __u16 port)
{
	struct nw_policy_key key = {
		.prefixlen = NW_POLICY_PREFIX_FULL,
		.set = bpf_htonl(set),
		.direction = dir,
		.proto = proto,
		.port = bpf_htons(port),
	};

	return bpf_map_lookup_elem(trie, &key);
}

/* The set's entry for (proto, port) in the policy hash: one probe per prefix
 * length the identity lists, longest first. The entries never overlap, so the
 * first hit is the only one. */
static __always_inline struct nw_policy_value *nw_policy_probe(void *hash, const struct nw_ident_value *ident,
								__u8 dir, __u8 proto, __u16 port)
{
	__u8 count = ident->inline_count[dir & 1] & NW_INLINE_HASH_COUNT;
	__u32 value = ((__u32)proto << 16) | port;
	struct nw_policy_key key = {
		.set = bpf_htonl(ident->set),
		.direction = dir,
	};
	struct nw_policy_value *hit;
	int i;

	/* A bounded loop, not unrolled: the lookup helper call blocks unrolling. */
	for (i = 0; i < NW_INLINE_RULES; i++) {
		__u32 bits, masked;

		if (i >= count)
			break;
		bits = ident->rules[dir & 1][i].bits;
		if (bits > 24)
			break;
		masked = value & ((0xffffffu << (24 - bits)) & 0xffffff);
		key.prefixlen = NW_POLICY_PREFIX_L3 + bits;
		key.proto = masked >> 16;
		key.port = bpf_htons(masked & 0xffff);
		hit = bpf_map_lookup_elem(hash, &key);
		if (hit)
			return hit;
	}
	return 0;
}

/* How strongly a verdict decides: a system allow beats a deny, a deny beats an
 * audit, an audit beats an allow. */
static __always_inline int nw_verdict_rank(__u8 verdict)
{
	switch (verdict) {
	case NW_VERDICT_ALLOW_SYSTEM:
		return 4;
	case NW_VERDICT_DENY:
		return 3;
	case NW_VERDICT_AUDIT:
		return 2;
	case NW_VERDICT_ALLOW:
		return 1;
	}
	return 0;
}

#endif
