/* Map layout: nw_fw_events, drop and audit events for `nodewarden monitor`,
 * rate limited per CPU so a flood cannot swamp the daemon. Mirrored by
 * bpf/codecs/firewall.ts. */
#ifndef NODEWARDEN_FW_EVENTS_H
#define NODEWARDEN_FW_EVENTS_H

#include "common.h"
#include "parse.h"

#define NW_REASON_RULE 1       /* a deny rule (or an audit of one) decided */
#define NW_REASON_DEFAULT 2    /* no rule matched in a default-deny direction */
#define NW_REASON_MALFORMED 3  /* the packet could not be parsed */

struct nw_fw_event {
	__u64 ts_ns;          /* bpf_ktime_get_boot_ns */
	__u32 ifindex;
	__u32 rule;
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 direction;
	__u8 verdict;
	__u8 reason;
	__u32 generation;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	NW_PIN_BY_NAME;
} nw_fw_events SEC(".maps");

struct nw_fw_settings {
	__u32 events_per_sec;  /* per CPU; 0 turns events off */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nw_fw_settings);
	NW_PIN_BY_NAME;
} nw_fw_settings SEC(".maps");

struct nw_rate_window {
	__u64 start_ns;
	__u64 count;
	__u64 suppressed;  /* events dropped by the limit, for a metric */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nw_rate_window);
	NW_PIN_BY_NAME;
} nw_fw_event_rate SEC(".maps");

static __always_inline void nw_emit_event(const struct nw_packet *pkt, __u32 ifindex, __u8 direction,
					  __u8 verdict, __u8 reason, __u32 rule, __u32 generation, __u64 now)
{
	__u32 zero = 0;
	struct nw_fw_settings *settings = bpf_map_lookup_elem(&nw_fw_settings, &zero);
	struct nw_rate_window *window = bpf_map_lookup_elem(&nw_fw_event_rate, &zero);
	struct nw_fw_event *event;

	if (!settings || !window || settings->events_per_sec == 0)
		return;
	if ((__s64)(now - window->start_ns) > (__s64)NW_SEC) {
		window->start_ns = now;
		window->count = 0;
	}
	if (window->count >= settings->events_per_sec) {
		window->suppressed++;
		return;
	}
	window->count++;
	event = bpf_ringbuf_reserve(&nw_fw_events, sizeof(*event), 0);
	if (!event) {
		window->suppressed++;
		return;
	}
	event->ts_ns = bpf_ktime_get_boot_ns();
	event->ifindex = ifindex;
	event->rule = rule;
	__builtin_memcpy(event->saddr, pkt->saddr, 16);
	__builtin_memcpy(event->daddr, pkt->daddr, 16);
	event->sport = pkt->sport;
	event->dport = pkt->dport;
	event->proto = pkt->proto;
	event->direction = direction;
	event->verdict = verdict;
	event->reason = reason;
	event->generation = generation;
	event->len = pkt->len;
	bpf_ringbuf_submit(event, 0);
}

#endif
