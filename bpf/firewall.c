/* The host firewall: tc programs on the host's devices, ingress and egress.
 *
 * For each IP packet to or from the host: established and related flows pass
 * on one conntrack lookup; a new flow's peer address maps to its identity
 * (hash probes for the few prefix lengths in use, longest first; an LPM
 * lookup only for rule sets with more lengths). The identity carries the few
 * rules of its selector set inline, or lists the prefix lengths to probe in
 * the policy hash, or sends the set, direction, protocol and port to the
 * policy trie. Nothing scans a list of rules, so a
 * verdict costs the same at 10 rules and at 100k. Allowed new flows enter conntrack; denied and audited ones are
 * reported through a rate-limited ring buffer. */
#include "common.h"
#include "parse.h"
#include "identity.h"
#include "policy.h"
#include "conntrack.h"
#include "host.h"
#include "fw_events.h"

/* A tiny map whose only job is to put the inner maps' key and value types into
 * BTF, where the layout test compares them with the TypeScript codecs. */
struct nw_btf_layouts {
	struct nw_ident_key ident_key;
	struct nw_ident_lengths ident_lengths;
	struct nw_inline_rule inline_rule;
	struct nw_ident_value ident_value;
	struct nw_policy_key policy_key;
	struct nw_policy_value policy_value;
	struct nw_rule_stats rule_stats;
	struct nw_fw_event event;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nw_btf_layouts);
} nw_btf_layouts SEC(".maps");

/* Rule indexes 0 and 1 count the per-direction default; 2 counts malformed packets. */
#define NW_RULE_MALFORMED 2

static __always_inline int nw_always_allowed(const struct nw_packet *pkt, __u8 dir)
{
	if (pkt->fragment)
		return 0;
	if (pkt->proto == IPPROTO_ICMPV6) {
		__u8 t = pkt->icmp_type;

		/* Neighbour discovery, router solicitation/advertisement, redirects, MLD. */
		return (t >= 133 && t <= 137) || (t >= 130 && t <= 132) || t == 143;
	}
	if (pkt->proto == IPPROTO_UDP) {
		/* DHCP and DHCPv6 client traffic, so a locked-down node keeps its lease. */
		__be16 client = pkt->family == 4 ? bpf_htons(68) : bpf_htons(546);
		__be16 server = pkt->family == 4 ? bpf_htons(67) : bpf_htons(547);

		if (dir == NW_DIR_INGRESS)
			return pkt->sport == server && pkt->dport == client;
		return pkt->sport == client && pkt->dport == server;
	}
	return 0;
}

static __always_inline __u16 nw_policy_port(const struct nw_packet *pkt)
{
	if (pkt->fragment)
		return 0;
	switch (pkt->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case NW_PROTO_SCTP:
		return bpf_ntohs(pkt->dport);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return ((__u16)pkt->icmp_type << 8) | pkt->icmp_code;
	}
	return 0;
}

static __always_inline void nw_count_rule(__u32 slot, __u32 rule, __u32 len)
{
	void *stats_array = bpf_map_lookup_elem(&nw_fw_rule_stats, &slot);
	struct nw_rule_stats *stats;

	if (!stats_array)
		return;
	stats = bpf_map_lookup_elem(stats_array, &rule);
	if (!stats)
		return;
	__sync_fetch_and_add(&stats->packets, 1);
	__sync_fetch_and_add(&stats->bytes, len);
}

/* Maps a verdict to the packet's fate, reporting what must be reported. */
static __always_inline int nw_enforce(struct __sk_buff *skb, const struct nw_packet *pkt, __u8 dir, __u8 verdict,
				      __u8 reason, __u32 rule, const struct nw_fw_active_slot *active, __u64 now)
{
	nw_count_rule(active->slot & 1, rule, pkt->len);
	switch (verdict) {
	case NW_VERDICT_DENY:
		nw_emit_event(pkt, skb->ifindex, dir, verdict, reason, rule, active->generation, now);
		return TC_ACT_SHOT;
	case NW_VERDICT_AUDIT:
		nw_emit_event(pkt, skb->ifindex, dir, verdict, reason, rule, active->generation, now);
		break;
	}
	if (reason != NW_REASON_MALFORMED)
		nw_ct_create(pkt, now, rule, dir);
	return TC_ACT_UNSPEC;
}

static __always_inline int nw_firewall(struct __sk_buff *skb, __u8 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct nw_packet pkt = {};
	struct nw_fw_active_slot *active;
	struct nw_ident_value *ident;
	struct nw_policy_value *policy;
	void *ident_hash, *ident_trie, *policy_map;
	struct nw_ident_lengths *lengths;
	__u32 zero = 0, slot, rule = 0;
	__u16 port;
	__u8 fallback, verdict, mode;
	__u64 now;
	int parsed;

	/* Headers may sit in paged data; pull enough for IPv6 plus extensions and L4. */
	if (data + 256 > data_end && skb->len > (__u32)(data_end - data)) {
		bpf_skb_pull_data(skb, skb->len < 256 ? skb->len : 256);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}

	parsed = nw_parse_frame(data, data_end, &pkt);
	if (parsed == NW_PARSE_NOT_IP)
		return TC_ACT_UNSPEC;

	active = bpf_map_lookup_elem(&nw_fw_active, &zero);
	if (!active)
		return TC_ACT_UNSPEC;
	slot = active->slot & 1;
	fallback = active->default_verdict[slot][dir & 1];
	if (fallback == NW_VERDICT_NONE)
		fallback = NW_VERDICT_ALLOW;
	/* The coarse clock costs a few ns where the boot clock costs ~30 (measured
	 * here); events read the boot clock themselves, only when they are sent. */
	now = bpf_ktime_get_coarse_ns();

	if (parsed != NW_PARSE_OK)
		return nw_enforce(skb, &pkt, dir, fallback, NW_REASON_MALFORMED, NW_RULE_MALFORMED, active, now);
	if (nw_always_allowed(&pkt, dir))
		return TC_ACT_UNSPEC;
	if (!pkt.fragment && nw_ct_lookup(&pkt, now))
		return TC_ACT_UNSPEC;
	if (nw_ct_related(data, data_end, &pkt, now))
		return TC_ACT_UNSPEC;
	/* Forwarded traffic is not the host's: host policy does not apply to it. */
	if (!nw_is_host_addr(dir == NW_DIR_INGRESS ? pkt.daddr : pkt.saddr))
		return TC_ACT_UNSPEC;

	ident_hash = bpf_map_lookup_elem(&nw_fw_ident_hash, &slot);
	ident_trie = bpf_map_lookup_elem(&nw_fw_ident, &slot);
	lengths = bpf_map_lookup_elem(&nw_fw_ident_lengths, &slot);
	if (!ident_hash || !ident_trie || !lengths)
		return TC_ACT_UNSPEC;

	ident = nw_identity(ident_hash, ident_trie, lengths, dir == NW_DIR_INGRESS ? pkt.saddr : pkt.daddr);
	if (!ident)
		return nw_enforce(skb, &pkt, dir, fallback, NW_REASON_DEFAULT, dir, active, now);
	port = nw_policy_port(&pkt);
	mode = ident->inline_count[dir & 1];
	if (mode <= NW_INLINE_RULES) {
		verdict = nw_inline_verdict(ident, dir, ((__u32)pkt.proto << 16) | port, &rule);
	} else {
		if (mode == NW_INLINE_OVERFLOW) {
			policy_map = bpf_map_lookup_elem(&nw_fw_policy, &slot);
			if (!policy_map)
				return TC_ACT_UNSPEC;
			policy = nw_policy_lookup(policy_map, ident->set, dir, pkt.proto, port);
		} else {
			policy_map = bpf_map_lookup_elem(&nw_fw_policy_hash, &slot);
			if (!policy_map)
				return TC_ACT_UNSPEC;
			policy = nw_policy_probe(policy_map, ident, dir, pkt.proto, port);
		}
		verdict = policy ? policy->verdict : NW_VERDICT_NONE;
		rule = policy ? policy->rule : 0;
	}
	if (verdict == NW_VERDICT_NONE)
		return nw_enforce(skb, &pkt, dir, fallback, NW_REASON_DEFAULT, dir, active, now);
	return nw_enforce(skb, &pkt, dir, verdict, NW_REASON_RULE, rule, active, now);
}

SEC("tc")
int nw_fw_ingress(struct __sk_buff *skb)
{
	return nw_firewall(skb, NW_DIR_INGRESS);
}

SEC("tc")
int nw_fw_egress(struct __sk_buff *skb)
{
	return nw_firewall(skb, NW_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
