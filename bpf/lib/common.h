/* Includes and helpers that every nodewarden BPF program shares. */
#ifndef NODEWARDEN_COMMON_H
#define NODEWARDEN_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Maps marked like this are pinned by the loader under its pin directory
 * (libbpf's pin_root_path), so a restarted daemon adopts them instead of
 * creating empty ones. */
#define NW_PIN_BY_NAME __uint(pinning, LIBBPF_PIN_BY_NAME)

#endif
