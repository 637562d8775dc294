/* Map layout: nw_fw_ident, the identity of an address. An LPM trie per policy
 * generation maps prefixes (IPv4 as ::ffff:0:0/96 + n) to the set of policy
 * selectors they belong to. Mirrored by bpf/codecs/firewall.ts. */
#ifndef NODEWARDEN_IDENTITY_H
#define NODEWARDEN_IDENTITY_H

#include "common.h"

#define NW_IDENT_MAX (1 << 20)

struct nw_ident_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct nw_ident_value {
	__u32 set;    /* selector-set id: which rules apply to this peer */
	__u32 pad;
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

/* Slot 0 and 1: the two policy generations; nw_fw_active says which is live. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	NW_PIN_BY_NAME;
	__array(values, struct nw_ident_trie);
} nw_fw_ident SEC(".maps");

static __always_inline struct nw_ident_value *nw_identity(void *trie, const __u8 *addr)
{
	struct nw_ident_key key = { .prefixlen = 128 };

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(trie, &key);
}

#endif
