/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one definition of what crosses the kernel/user boundary: the event record
 * the probes write to the ring buffer, the filter configuration Python writes into
 * .rodata before load, and the constants both sides share.
 *
 * tracer/record.py mirrors this layout; tests/test_record_layout.py compiles this
 * header with clang and fails if the two drift.  Fixed-width types and explicit
 * padding only.
 */
#ifndef VETHTRACE_H
#define VETHTRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bumped whenever the record changes; an enum so that it is in the object's BTF. */
enum vtr_abi_version { VTR_RECORD_VERSION = 1 };
#define VTR_DATA_MAX 96 /* packet bytes copied per event: Ethernet + IPv4 + ICMP + quoted header */
#define VTR_IFNAMSIZ 16
#define VTR_COMMSIZ 16

/* What a record reports (vtr_event.kind). */
enum vtr_kind {
	VTR_EV_XMIT = 1,         /* net_dev_start_xmit: a device is asked to transmit */
	VTR_EV_NETIF_RX = 2,     /* netif_rx: a device hands a packet to the stack (veth peer, lo) */
	VTR_EV_RECEIVE = 3,      /* netif_receive_skb: the stack takes the packet in */
	VTR_EV_KFREE = 4,        /* kfree_skb: dropped, arg = enum skb_drop_reason */
	VTR_EV_CONSUME = 5,      /* consume_skb: freed after normal processing */
	VTR_EV_FIB = 6,          /* fib_table_lookup: route decision, data = struct vtr_fib */
	VTR_EV_NEIGH_CREATE = 7, /* neigh_create: data = struct vtr_neigh */
	VTR_EV_NEIGH_UPDATE = 8, /* neigh_update: arg = new state, arg2 = old state */
	VTR_EV_ICMP_SEND = 9,    /* icmp_send: skb is the packet the error reports, arg = type<<8|code */
	VTR_EV_DELIVER = 10,     /* skb_copy_datagram_iovec: copied to a socket, arg = bytes */
	VTR_EV_FUNC = 11,        /* fentry on a named kernel function, arg = enum vtr_func */
};

/* Functions probed directly when the kernel allows fentry (vtr_event.arg of VTR_EV_FUNC). */
enum vtr_func {
	VTR_FN_VETH_XMIT = 1,
	VTR_FN_ARP_RCV = 2,
	VTR_FN_ICMP_RCV = 3,
	VTR_FN_LOOPBACK_XMIT = 4,
};

/* Where vtr_event.data starts. */
enum vtr_data_kind {
	VTR_DATA_NONE = 0,
	VTR_DATA_L2 = 1, /* at the Ethernet header */
	VTR_DATA_L3 = 2, /* at the network header, ethertype in vtr_event.protocol */
	VTR_DATA_FIB = 3,
	VTR_DATA_NEIGH = 4,
};

struct vtr_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() */
	__u64 skb;       /* struct sk_buff address; reused after free */
	__u64 head;      /* skb->head; shared by clones */
	__u64 location;  /* kernel text address: free site, or the device's ndo_start_xmit */
	__u32 netns;     /* network namespace inode */
	__u32 ifindex;
	__u32 len;       /* skb->len */
	__u32 arg;       /* per kind, see enum vtr_kind */
	__u32 arg2;      /* per kind, see enum vtr_kind; packet events: enum vtr_pkt_flags */
	__u32 pid;       /* tgid of the current task (meaningful in process context) */
	__u16 protocol;  /* skb->protocol, host byte order */
	__u8 kind;       /* enum vtr_kind */
	__u8 data_kind;  /* enum vtr_data_kind */
	__u16 cpu;
	__u8 data_len;   /* valid bytes in data */
	__u8 pad0;
	char ifname[VTR_IFNAMSIZ];
	char comm[VTR_COMMSIZ];
	__u8 data[VTR_DATA_MAX];
};

/* data of a VTR_EV_FIB record; the chosen device is in vtr_event.ifindex/ifname,
 * arg = error (0: found), arg2 = table id. Addresses in network byte order. */
struct vtr_fib {
	__u32 saddr;
	__u32 daddr;
	__s32 iif;
	__s32 oif;
	__u8 proto;
	__u8 pad[3];
};

/* data of VTR_EV_NEIGH_* records; addresses in network byte order. */
struct vtr_neigh {
	__u32 key;       /* IPv4 address being resolved */
	__u8 lladdr[6];  /* new link-layer address (neigh_update), zero if none */
	__u8 pad[2];
};

/* What the probes decided about a packet event (vtr_event.arg2 of xmit, netif_rx, receive,
 * kfree, consume, icmp_send, deliver and func records).  Recordings made before these flags
 * existed have 0 here: VTR_PF_KNOWN says the other bits mean something. */
enum vtr_pkt_flags {
	VTR_PF_KNOWN = 1 << 0,  /* written by probes that set these flags */
	VTR_PF_NEW = 1 << 1,    /* first report of this skb: no live journey of it continues here */
	VTR_PF_CLONED = 1 << 2, /* skb->cloned: shares its data (skb->head) with another skb */
	VTR_PF_ANSWER = 1 << 3, /* admitted outside the scope: addressed to a followed packet's source */
	VTR_PF_LAST = 1 << 4,   /* a free that releases the data: no skb shares this skb->head any more */
};

/* The scope: network namespace inodes whose packets are traced (see admit() in
 * vethtrace.bpf.c).  n_scope == 0 traces every namespace (--all-netns). */
#define VTR_SCOPE_MAX 16

/* Filters, written by Python into .rodata before the object is loaded.  0 = any. */
struct vtr_config {
	__u32 scope[VTR_SCOPE_MAX];
	__u32 ifindex;       /* only events at this interface ... */
	__u32 ifindex_netns; /* ... of this namespace */
	__u32 host;          /* IPv4, network byte order */
	__u8 n_scope;
	__u8 skip_ipv6;
	__u8 pad[2];
};

/* Exact counts, kept in the kernel whatever the ring buffer loses (tracer/counters.py reads
 * them): per-CPU hash maps of __u64 counters.  `ends`: every admitted drop (kfree_skb), by where
 * it happened and why.  `paths`: every packet whose data was released (the free flagged
 * VTR_PF_LAST), by the hops of all the skbs that carried that data (a clone's too) and how it
 * ended.  A key the full map has no room for is counted in lost[VTR_LOST_UNCOUNTED]. */
struct vtr_end_key {
	__u64 location;  /* free site; 0 for a delivery */
	__u32 reason;    /* kfree: enum skb_drop_reason; else 0 */
	__u32 netns;
	__u32 ifindex;
	__u8 kind;       /* VTR_EV_KFREE */
	__u8 pad[3];
};

struct vtr_path_key {
	__u64 path;      /* sum of vtr_hop_hash() over the packet's reported events */
	__u64 location;  /* of the free that released the data */
	__u32 reason;
	__u8 kind;       /* VTR_EV_KFREE or VTR_EV_CONSUME */
	__u8 pad[3];
};

/* Indexes of the `lost` array. */
enum vtr_lost_index {
	VTR_LOST_RING = 0,       /* records the ring buffer had no room for */
	VTR_LOST_UNCOUNTED = 1,  /* counts `ends`/`paths` had no room for */
};

/* One event's share of a path: a sum of these does not depend on the order in which CPUs
 * reported the events of a packet's skbs.  tracer/counters.py computes the same. */
static inline __u64 vtr_hop_hash(__u32 kind, __u32 ifindex, __u32 netns, __u32 protocol)
{
	__u64 x = (((__u64)netns << 32) | ifindex) * 0x9E3779B97F4A7C15ULL ^ (((__u64)kind << 16) | protocol);

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	return x;
}

/* Every type above, in one place, so the compiled object's BTF carries them all and the
 * tracer can check its mirror against the object it loads (tracer/abi.py). */
struct vtr_abi {
	enum vtr_kind kind;
	enum vtr_func func;
	enum vtr_data_kind data_kind;
	enum vtr_pkt_flags pkt_flags;
	enum vtr_abi_version version;
	struct vtr_event event;
	struct vtr_fib fib;
	struct vtr_neigh neigh;
	struct vtr_config config;
	struct vtr_end_key end_key;
	struct vtr_path_key path_key;
	enum vtr_lost_index lost_index;
};

#ifdef __cplusplus
#else
_Static_assert(sizeof(struct vtr_event) == 192, "vtr_event layout changed: update tracer/record.py");
_Static_assert(sizeof(struct vtr_fib) == 20, "vtr_fib layout changed");
_Static_assert(sizeof(struct vtr_neigh) == 12, "vtr_neigh layout changed");
_Static_assert(sizeof(struct vtr_config) == 80, "vtr_config layout changed");
_Static_assert(sizeof(struct vtr_end_key) == 24, "vtr_end_key layout changed");
_Static_assert(sizeof(struct vtr_path_key) == 24, "vtr_path_key layout changed");
#endif

#endif /* VETHTRACE_H */
