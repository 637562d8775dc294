/* Map layouts: nw_fw_ident_hash, nw_fw_ident and nw_fw_ident_lengths, the
 * identity of a peer address in a policy generation. Mirrored by
 * bpf/codecs/firewall.ts.
 *
 * Prefixes (IPv4 as ::ffff:0:0/96 + n) of the NW_IDENT_PROBES longest prefix
 * lengths an address family uses sit in a hash keyed by (length, masked
 * address); the shorter ones in an LPM trie. nw_fw_ident_lengths lists each
 * family's hash lengths, longest first: probing them in that order, the first
 * hit is the longest match, and only when all miss does the trie (holding only
 * shorter prefixes) answer. Most rule sets use a few lengths (/32 and /24, /128
 * and /64), so a peer's identity costs one or two hash probes, never a trie
 * walk. The value names the peer's selector set and, when the set has few
 * rules in a direction, carries them inline, so that the verdict needs no
 * further map lookup. */
#ifndef NODEWARDEN_IDENTITY_H
#define NODEWARDEN_IDENTITY_H

#include "common.h"

#define NW_IDENT_MAX (1 << 20)
/* Prefix lengths per family looked up in the hash; more go to the trie. */
#define NW_IDENT_PROBES 4
#define NW_FAMILY_V4 0
#define NW_FAMILY_V6 1
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

/* Per generation (indexed by slot): the hash's prefix lengths per family
 * (NW_FAMILY_*, in 128-bit terms: IPv4 /24 is 120), longest first, and whether
 * the family has shorter prefixes in the trie. */
struct nw_ident_lengths {
	__u8 len[2][NW_IDENT_PROBES];
	__u8 count[2];
	__u8 trie[2];
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
	__uint(key_size, sizeof(struct nw_ident_key));
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
} nw_fw_ident_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct nw_ident_lengths);
	NW_PIN_BY_NAME;
} nw_fw_ident_lengths SEC(".maps");

static __always_inline int nw_is_v4_mapped(const __u8 *addr)
{
	const __u32 *w = (const __u32 *)addr;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
}

/* The peer's identity in one generation: hash probes, longest length first,
 * then the trie if the family has shorter prefixes. */
static __always_inline struct nw_ident_value *nw_identity(void *hash, void *trie,
							  const struct nw_ident_lengths *lengths, const __u8 *addr)
{
	struct nw_ident_key key = { .prefixlen = 128 };
	struct nw_ident_value *value;
	int family = nw_is_v4_mapped(addr) ? NW_FAMILY_V4 : NW_FAMILY_V6;
	__u64 hi = bpf_be64_to_cpu(*(const __u64 *)addr);
	__u64 lo = bpf_be64_to_cpu(*(const __u64 *)(addr + 8));
	__u8 count = lengths->count[family];
	int i;

	for (i = 0; i < NW_IDENT_PROBES; i++) {
		__u32 len;
		__u64 h, l;

		if (i >= count)
			break;
		len = lengths->len[family][i];
		if (len > 128)
			break;
		if (len <= 64) {
			h = len == 0 ? 0 : hi & (~0ULL << (64 - len));
			l = 0;
		} else {
			h = hi;
			l = lo & (~0ULL << (128 - len));
		}
		key.prefixlen = len;
		h = bpf_cpu_to_be64(h);
		l = bpf_cpu_to_be64(l);
		__builtin_memcpy(key.addr, &h, 8);
		__builtin_memcpy(key.addr + 8, &l, 8);
		value = bpf_map_lookup_elem(hash, &key);
		if (value)
			return value;
	}
	if (!lengths->trie[family])
		return 0;
	key.prefixlen = 128;
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
