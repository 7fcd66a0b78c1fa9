// SPDX-License-Identifier: GPL-2.0
/*
 * vethtrace kernel probes: report what happens to each packet (transmit, receive,
 * route lookups, neighbour resolution, frees and drops, socket delivery) as one
 * struct vtr_event per occurrence in a ring buffer.
 *
 * Baseline: tp_btf tracepoints, present on every BTF kernel.  Programs whose section
 * starts with "?" are off unless the loader enables them: arity variants for older
 * kernels, and fentry probes used where the kernel permits BPF trampolines.
 * Filtering (network namespace, interface, IPv4 host) happens here so unrelated
 * traffic never reaches user space.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "vethtrace.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD
#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define EAGAIN 11

const volatile struct vtr_config cfg = {};
/* Never read: keeps vethtrace.h's types in the object's BTF for tracer/abi.py. */
struct vtr_abi *vtr_abi_anchor __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* [0]: records lost because the ring buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* skbs already reported, so their free is reported even when skb->dev is gone. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} tracked SEC(".maps");

static __always_inline __u32 dev_netns(const struct net_device *dev)
{
	return dev ? dev->nd_net.net->ns.inum : 0;
}

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return sk ? sk->__sk_common.skc_net.net->ns.inum : 0;
}

static __always_inline bool sk_is_packet_family(const struct sock *sk)
{
	__u16 family = sk ? sk->__sk_common.skc_family : 0;

	return family == AF_INET || family == AF_INET6 || family == AF_PACKET;
}

static __always_inline __u32 task_netns(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

static __always_inline bool netns_ok(__u32 netns)
{
	return !cfg.netns || netns == cfg.netns;
}

static __always_inline bool host_ok(__u32 a, __u32 b)
{
	return !cfg.host || a == cfg.host || b == cfg.host;
}

static __always_inline struct vtr_event *reserve(void)
{
	struct vtr_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			__sync_fetch_and_add(n, 1);
		return NULL;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->cpu = bpf_get_smp_processor_id();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->skb = 0;
	e->head = 0;
	e->location = 0;
	e->netns = 0;
	e->ifindex = 0;
	e->len = 0;
	e->arg = 0;
	e->arg2 = 0;
	e->protocol = 0;
	e->data_kind = VTR_DATA_NONE;
	e->data_len = 0;
	e->pad0 = 0;
	__builtin_memset(e->ifname, 0, sizeof(e->ifname));
	return e;
}

static __always_inline void set_dev(struct vtr_event *e, const struct net_device *dev)
{
	if (!dev)
		return;
	e->ifindex = dev->ifindex;
	bpf_probe_read_kernel(e->ifname, sizeof(e->ifname), dev->name);
}

/* Copy the packet's first bytes: from the Ethernet header when the skb has one
 * (device events), else from the network header. */
static __always_inline void copy_packet(struct vtr_event *e, const struct sk_buff *skb, bool want_l2)
{
	unsigned char *head = skb->head;
	__u16 mac = skb->mac_header;
	__u16 off = skb->network_header;
	__u32 tail = skb->tail;

	e->skb = (__u64)skb;
	e->head = (__u64)head;
	e->len = skb->len;
	e->protocol = bpf_ntohs(skb->protocol);
	if (want_l2 && mac != (__u16)~0U && mac < off) {
		off = mac;
		e->data_kind = VTR_DATA_L2;
	} else {
		e->data_kind = VTR_DATA_L3;
	}
	/* A constant-size read stays inside the allocation: skb_shared_info follows the
	 * data area; data_len says how much of it is packet. */
	if (bpf_probe_read_kernel(e->data, VTR_DATA_MAX, head + off)) {
		e->data_kind = VTR_DATA_NONE;
		return;
	}
	e->data_len = tail > off ? (tail - off > VTR_DATA_MAX ? VTR_DATA_MAX : tail - off) : 0;
}

/* IPv4 host filter on the copied bytes; ARP and IPv4 only. */
static __always_inline bool packet_host_ok(const struct vtr_event *e)
{
	__u32 a = 0, b = 0;
	int l3 = e->data_kind == VTR_DATA_L2 ? ETH_HLEN : 0;

	if (!cfg.host)
		return true;
	if (e->data_kind == VTR_DATA_NONE)
		return false;
	if (e->protocol == ETH_P_IP) {
		__builtin_memcpy(&a, e->data + l3 + 12, 4);
		__builtin_memcpy(&b, e->data + l3 + 16, 4);
	} else if (e->protocol == ETH_P_ARP) {
		__builtin_memcpy(&a, e->data + l3 + 14, 4);
		__builtin_memcpy(&b, e->data + l3 + 24, 4);
	} else {
		return false;
	}
	return host_ok(a, b);
}

/* Write one packet event; with check_host, discard it if the host filter rejects the
 * packet.  Returns 0 if an event was submitted. */
static __always_inline int emit(const struct sk_buff *skb, const struct net_device *dev, __u32 netns,
				__u8 kind, __u64 location, __u32 arg, bool want_l2, bool check_host)
{
	struct vtr_event *e = reserve();

	if (!e)
		return -1;
	e->kind = kind;
	e->netns = netns;
	e->location = location;
	e->arg = arg;
	set_dev(e, dev);
	copy_packet(e, skb, want_l2);
	if (check_host && !packet_host_ok(e)) {
		bpf_ringbuf_discard(e, 0);
		return -1;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Common path of every event about one packet at one device. */
static __always_inline int packet_event(const struct sk_buff *skb, const struct net_device *dev,
					__u8 kind, __u64 location, __u32 arg)
{
	__u64 key = (__u64)skb;
	__u8 one = 1;

	if (!netns_ok(dev_netns(dev)))
		return 0;
	if (cfg.ifindex && (!dev || dev->ifindex != cfg.ifindex))
		return 0;
	if (cfg.skip_ipv6 && skb->protocol == bpf_htons(ETH_P_IPV6))
		return 0;
	if (emit(skb, dev, dev_netns(dev), kind, location, arg, true, true) == 0)
		bpf_map_update_elem(&tracked, &key, &one, BPF_ANY);
	return 0;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tp_xmit, const struct sk_buff *skb, const struct net_device *dev)
{
	/* The driver's transmit function (veth_xmit, loopback_xmit) names the hop. */
	__u64 fn = (__u64)BPF_CORE_READ(dev, netdev_ops, ndo_start_xmit);

	return packet_event(skb, dev, VTR_EV_XMIT, fn, 0);
}

SEC("tp_btf/netif_rx")
int BPF_PROG(tp_netif_rx, const struct sk_buff *skb)
{
	return packet_event(skb, skb->dev, VTR_EV_NETIF_RX, 0, 0);
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tp_receive, const struct sk_buff *skb)
{
	return packet_event(skb, skb->dev, VTR_EV_RECEIVE, 0, 0);
}

/* A free is reported if the skb was reported before, or belongs to our namespace. */
static __always_inline int free_event(const struct sk_buff *skb, __u8 kind, __u64 location, __u32 reason)
{
	__u64 key = (__u64)skb;
	const struct net_device *dev = skb->dev;
	__u32 netns = dev ? dev_netns(dev) : sk_netns(skb->sk);
	bool seen = bpf_map_lookup_elem(&tracked, &key) != NULL;

	if (!seen) {
		if (!netns || !netns_ok(netns))
			return 0;
		/* Without a device, only packets of IP and packet sockets (not netlink, unix). */
		if (!dev && !sk_is_packet_family(skb->sk))
			return 0;
		if (cfg.ifindex && (!dev || dev->ifindex != cfg.ifindex))
			return 0;
		if (cfg.skip_ipv6 && skb->protocol == bpf_htons(ETH_P_IPV6))
			return 0;
	}
	/* An skb we reported before is always followed to its end, whatever the filters. */
	emit(skb, dev, netns, kind, location, reason, false, !seen);
	if (seen)
		bpf_map_delete_elem(&tracked, &key);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tp_kfree_skb, const struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return free_event(skb, VTR_EV_KFREE, (__u64)location, reason);
}

/* Kernels before 5.17 have no drop reason. */
SEC("?tp_btf/kfree_skb")
int BPF_PROG(tp_kfree_skb_noreason, const struct sk_buff *skb, void *location)
{
	return free_event(skb, VTR_EV_KFREE, (__u64)location, 0);
}

SEC("tp_btf/consume_skb")
int BPF_PROG(tp_consume_skb, const struct sk_buff *skb, void *location)
{
	return free_event(skb, VTR_EV_CONSUME, (__u64)location, 0);
}

/* Kernels before 6.3 do not pass the location to consume_skb. */
SEC("?tp_btf/consume_skb")
int BPF_PROG(tp_consume_skb_noloc, const struct sk_buff *skb)
{
	return free_event(skb, VTR_EV_CONSUME, 0, 0);
}

SEC("tp_btf/icmp_send")
int BPF_PROG(tp_icmp_send, const struct sk_buff *skb, int type, int code)
{
	return packet_event(skb, skb->dev, VTR_EV_ICMP_SEND, 0, ((__u32)type << 8) | (code & 0xff));
}

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(tp_deliver, const struct sk_buff *skb, int len)
{
	const struct sock *sk = skb->sk;
	__u32 netns;

	/* Only sockets of packets: not netlink replies (ip, ss) or unix datagrams. */
	if (sk && !sk_is_packet_family(sk))
		return 0;
	netns = sk ? sk_netns(sk) : task_netns();
	if (!netns_ok(netns))
		return 0;
	if (cfg.skip_ipv6 && skb->protocol == bpf_htons(ETH_P_IPV6))
		return 0;
	emit(skb, skb->dev, netns, VTR_EV_DELIVER, 0, len, false, true);
	return 0;
}

SEC("tp_btf/fib_table_lookup")
int BPF_PROG(tp_fib, __u32 tb_id, const struct flowi4 *flp, const struct fib_nh_common *nhc, int err)
{
	const struct net_device *dev = nhc ? nhc->nhc_dev : NULL;
	__u32 netns = dev ? dev_netns(dev) : task_netns();
	struct vtr_event *e;
	struct vtr_fib *f;

	/* -EAGAIN: this table has no match and the next one is tried; not a decision. */
	if (err == -EAGAIN || !netns_ok(netns) || !host_ok(flp->saddr, flp->daddr))
		return 0;
	e = reserve();
	if (!e)
		return 0;
	e->kind = VTR_EV_FIB;
	e->netns = netns;
	e->arg = err;
	e->arg2 = tb_id;
	set_dev(e, dev);
	e->data_kind = VTR_DATA_FIB;
	e->data_len = sizeof(*f);
	f = (struct vtr_fib *)e->data;
	f->saddr = flp->saddr;
	f->daddr = flp->daddr;
	f->iif = flp->__fl_common.flowic_iif;
	f->oif = flp->__fl_common.flowic_oif;
	f->proto = flp->__fl_common.flowic_proto;
	f->pad[0] = f->pad[1] = f->pad[2] = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int neigh_event(const struct neighbour *n, const struct net_device *dev,
				       const void *pkey, __u8 kind, const __u8 *lladdr, __u32 new_state)
{
	struct vtr_event *e;
	struct vtr_neigh *nb;
	__u32 key = 0;

	if (BPF_CORE_READ(n, tbl, family) != AF_INET)
		return 0;
	if (!netns_ok(dev_netns(dev)))
		return 0;
	bpf_probe_read_kernel(&key, sizeof(key), pkey);
	if (!host_ok(key, key))
		return 0;
	e = reserve();
	if (!e)
		return 0;
	e->kind = kind;
	e->netns = dev_netns(dev);
	e->arg = new_state;
	e->arg2 = n->nud_state;
	set_dev(e, dev);
	e->data_kind = VTR_DATA_NEIGH;
	e->data_len = sizeof(*nb);
	nb = (struct vtr_neigh *)e->data;
	nb->key = key;
	__builtin_memset(nb->lladdr, 0, sizeof(nb->lladdr));
	nb->pad[0] = nb->pad[1] = 0;
	if (lladdr)
		bpf_probe_read_kernel(nb->lladdr, sizeof(nb->lladdr), lladdr);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/neigh_create")
int BPF_PROG(tp_neigh_create, struct neigh_table *tbl, struct net_device *dev, const void *pkey,
	     const struct neighbour *n, bool exempt)
{
	if (!n)
		return 0;
	/* The tracepoint fires before the key is copied into n: use pkey. */
	return neigh_event(n, dev, pkey, VTR_EV_NEIGH_CREATE, NULL, n->nud_state);
}

SEC("tp_btf/neigh_update")
int BPF_PROG(tp_neigh_update, struct neighbour *n, const __u8 *lladdr, __u8 new, __u32 flags, __u32 pid)
{
	return neigh_event(n, n->dev, n->primary_key, VTR_EV_NEIGH_UPDATE, lladdr, new);
}

/* Direct function probes, enabled by the loader only where fentry is permitted. */
SEC("?fentry/veth_xmit")
int BPF_PROG(fe_veth_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return packet_event(skb, dev, VTR_EV_FUNC, 0, VTR_FN_VETH_XMIT);
}

SEC("?fentry/loopback_xmit")
int BPF_PROG(fe_loopback_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return packet_event(skb, dev, VTR_EV_FUNC, 0, VTR_FN_LOOPBACK_XMIT);
}

SEC("?fentry/arp_rcv")
int BPF_PROG(fe_arp_rcv, struct sk_buff *skb, struct net_device *dev)
{
	return packet_event(skb, dev, VTR_EV_FUNC, 0, VTR_FN_ARP_RCV);
}

SEC("?fentry/icmp_rcv")
int BPF_PROG(fe_icmp_rcv, struct sk_buff *skb)
{
	return packet_event(skb, skb->dev, VTR_EV_FUNC, 0, VTR_FN_ICMP_RCV);
}
