// SPDX-License-Identifier: GPL-2.0
/* The floor of any tracer on vethtrace's tracepoints: one empty tp_btf program on each
 * (bench/scale.py).  Whatever the real probes cost above this is theirs to cut. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define EMPTY(tp) SEC("tp_btf/" #tp) int empty_##tp(void *ctx) { return 0; }

EMPTY(net_dev_start_xmit)
EMPTY(netif_rx)
EMPTY(netif_receive_skb)
EMPTY(kfree_skb)
EMPTY(consume_skb)
EMPTY(fib_table_lookup)
EMPTY(neigh_create)
EMPTY(neigh_update)
EMPTY(icmp_send)
EMPTY(skb_copy_datagram_iovec)
