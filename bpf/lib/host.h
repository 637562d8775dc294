/* Map layout: nw_fw_host_addrs, this node's own addresses. Only traffic to
 * (ingress) or from (egress) the host itself is subject to host policy;
 * forwarded traffic is not. Mirrored by bpf/codecs/firewall.ts. */
#ifndef NODEWARDEN_HOST_H
#define NODEWARDEN_HOST_H

#include "common.h"

struct nw_host_addr_key {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct nw_host_addr_key);
	__type(value, __u32);
	NW_PIN_BY_NAME;
} nw_fw_host_addrs SEC(".maps");

/* Multicast and limited broadcast reach the host's stack too (VRRP, mDNS, ...). */
static __always_inline int nw_is_multicast_or_broadcast(const __u8 *addr)
{
	if (addr[0] == 0xff)
		return 1; /* ff00::/8 */
	if (addr[10] == 0xff && addr[11] == 0xff && addr[0] == 0 && addr[8] == 0) {
		/* IPv4-mapped: 224.0.0.0/4 or 255.255.255.255 */
		if ((addr[12] & 0xf0) == 0xe0)
			return 1;
		if (addr[12] == 0xff && addr[13] == 0xff && addr[14] == 0xff && addr[15] == 0xff)
			return 1;
	}
	return 0;
}

static __always_inline int nw_is_host_addr(const __u8 *addr)
{
	struct nw_host_addr_key key;

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&nw_fw_host_addrs, &key) != NULL || nw_is_multicast_or_broadcast(addr);
}

#endif
