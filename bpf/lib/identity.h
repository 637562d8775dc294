/* Map layouts: nw_fw_ident and nw_fw_ident_exact, the identity of a peer
 * address in a policy generation. Mirrored by bpf/codecs/firewall.ts.
 *
 * Single addresses (/32, /128) sit in a hash, everything else in an LPM trie
 * (IPv4 as ::ffff:0:0/96 + n); a /128 is always the longest match, so asking
 * the hash first gives the trie's answer in one cheap lookup. The value names
 * the peer's selector set and, when the set has few rules in a direction,
 * carries them inline, so that the verdict needs no second map lookup. */
#ifndef NODEWARDEN_IDENTITY_H
#define NODEWARDEN_IDENTITY_H

#include "common.h"

#define NW_IDENT_MAX (1 << 20)
#define NW_INLINE_RULES 4
/* inline_count value NW_INLINE_HASH | n (n = 1..NW_INLINE_RULES): the set has
 * more rules than fit, but they use only n prefix lengths; rules[dir][i].bits
 * (longest first) are the lengths to probe in the policy hash, the rest of
 * those entries is unused. A set's entries never overlap, so the first hit is
 * the answer: at most n hash lookups instead of a trie walk. */
#define NW_INLINE_HASH 0x80
#define NW_INLINE_HASH_COUNT 0x07
/* inline_count value: more rules and more prefix lengths than that; ask nw_fw_policy. */
#define NW_INLINE_OVERFLOW 0xff

struct nw_ident_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct nw_ident_exact_key {
	__u8 addr[16];
};

/* One policy-trie entry, inline: it matches (proto << 16 | port) values whose
 * top `bits` of 24 equal those of `start`. A set's entries never overlap. */
struct nw_inline_rule {
	__u32 start;
	__u8 bits;
	__u8 verdict;
	__u16 pad;
	__u32 rule;
};

struct nw_ident_value {
	__u32 set;                     /* selector-set id: which rules apply to this peer */
	__u8 inline_count[2];          /* per direction; NW_INLINE_HASH | n, NW_INLINE_OVERFLOW: see above */
	__u8 pad[2];
	struct nw_inline_rule rules[2][NW_INLINE_RULES];
};

/* Inner maps give sizes, not BTF types: clang emits only a forward
 * declaration for types reached through an inner map definition, and libbpf
 * cannot size those. firewall.c's nw_btf_layouts keeps the full types in BTF. */
struct nw_ident_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, NW_IDENT_MAX);
	__uint(key_size, sizeof(struct nw_ident_key));
	__uint(value_size, sizeof(struct nw_ident_value));
};

struct nw_ident_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, NW_IDENT_MAX);
	__uint(key_size, sizeof(struct nw_ident_exact_key));
	__uint(value_size, sizeof(struct nw_ident_value));
};

/* Slot 0 and 1: the two policy generations; nw_fw_active says which is live. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	NW_PIN_BY_NAME;
	__array(values, struct nw_ident_trie);
} nw_fw_ident SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	NW_PIN_BY_NAME;
	__array(values, struct nw_ident_hash);
} nw_fw_ident_exact SEC(".maps");

static __always_inline struct nw_ident_value *nw_identity(void *exact, void *trie, const __u8 *addr)
{
	struct nw_ident_key key = { .prefixlen = 128 };
	struct nw_ident_value *value;

	value = bpf_map_lookup_elem(exact, addr);
	if (value)
		return value;
	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(trie, &key);
}

/* The inline verdict for (direction, proto<<16|port); NW_VERDICT_NONE (0) when
 * no inline rule matches. Sets *rule. A bounded scan of NW_INLINE_RULES. */
static __always_inline __u8 nw_inline_verdict(const struct nw_ident_value *ident, __u8 dir, __u32 key, __u32 *rule)
{
	__u8 count = ident->inline_count[dir & 1];
	int i;

#pragma unroll
	for (i = 0; i < NW_INLINE_RULES; i++) {
		const struct nw_inline_rule *r = &ident->rules[dir & 1][i];
		__u32 shift;

		if (i >= count)
			break;
		shift = 24 - (r->bits & 31);
		if (r->bits > 24)
			continue;
		if (shift >= 24 ? 1 : (key >> shift) == (r->start >> shift)) {
			*rule = r->rule;
			return r->verdict;
		}
	}
	return 0;
}

#endif
