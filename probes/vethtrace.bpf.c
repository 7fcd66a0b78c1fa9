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

/* Events are drafted on the stack and copied into the ring buffer only once every filter
 * kept them: a record reserved and then discarded still wakes the reader, which under a
 * flood the filters reject costs more than recording it (bench/run.py, ping -f). */
static __always_inline int publish(struct vtr_event *e)
{
	if (bpf_ringbuf_output(&events, e, sizeof(*e), 0)) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			__sync_fetch_and_add(n, 1);
		return -1;
	}
	return 0;
}

static __always_inline struct vtr_event *reserve(struct vtr_event *e)
{
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

/* The user's pcap-filter expression.  tracer/cbpf.py translates libpcap's classic BPF
 * and splices it, before load, at the marker below (r1 the copied bytes, r2 how many,
 * r3 the scratch area: M[16], the length on the wire, the ethertype); the verdict comes
 * back in r0.  As compiled the marker is non-zero: every packet is kept.  The constant
 * encodes the program kind (1: a copy from the Ethernet header, 2: an IPv4/IPv6 copy from
 * the network header, 3: another protocol's copy from the network header, judged by the
 * Ethernet program behind a virtual header) and the bytes the copy can hold. */
#define VTR_PCAP_MARKER(kind, bytes) (0x7674706600000000ULL | ((__u64)(kind) << 16) | (bytes))
#define VTR_PCAP_L2 1
#define VTR_PCAP_L3 2
#define VTR_PCAP_L3_OTHER 3
/* Route lookups and neighbour entries are judged as a made-up frame of the packet they are
 * for, written in the second half of the record's data (past data_len, zeroed after). */
#define VTR_PSEUDO_OFF 48

#define PCAP_ASM(marker)                                                                          \
	asm volatile("r1 = %[data]\n\tr2 = %[caplen]\n\tr3 = %[mem]\n\tr0 = %[m] ll\n\t%[verdict] = r0" \
		     : [verdict] "=r"(verdict)                                                    \
		     : [data] "r"(data), [caplen] "r"(caplen), [mem] "r"(mem), [m] "i"(marker)    \
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory")

static __always_inline __u64 pcap_run(const void *data, __u64 caplen, __u32 *mem, int kind)
{
	__u64 verdict;

	if (kind == VTR_PCAP_L2)
		PCAP_ASM(VTR_PCAP_MARKER(VTR_PCAP_L2, VTR_DATA_MAX));
	else if (kind == VTR_PCAP_L3)
		PCAP_ASM(VTR_PCAP_MARKER(VTR_PCAP_L3, VTR_DATA_MAX));
	else
		PCAP_ASM(VTR_PCAP_MARKER(VTR_PCAP_L3_OTHER, VTR_DATA_MAX));
	return verdict;
}

static __always_inline bool pcap_pseudo_ok(struct vtr_event *e, __u32 len)
{
	__u32 mem[20] = {}; /* tracer/cbpf.py MEM_WORDS */
	const void *data = e->data + VTR_PSEUDO_OFF;
	__u64 caplen = len, verdict;

	mem[16] = len;
	PCAP_ASM(VTR_PCAP_MARKER(VTR_PCAP_L2, VTR_DATA_MAX - VTR_PSEUDO_OFF));
	__builtin_memset(e->data + VTR_PSEUDO_OFF, 0, VTR_DATA_MAX - VTR_PSEUDO_OFF);
	return verdict != 0;
}

/* A route lookup as the first bytes of the packet it routes: Ethernet, IPv4, ports or
 * ICMP type and code. */
static __always_inline bool fib_pcap_ok(struct vtr_event *e, const struct flowi4 *flp)
{
	__u8 *p = e->data + VTR_PSEUDO_OFF;
	__u8 proto = flp->__fl_common.flowic_proto;
	__u32 saddr = flp->saddr, daddr = flp->daddr;

	__builtin_memset(p, 0, VTR_DATA_MAX - VTR_PSEUDO_OFF);
	p[12] = 0x08;
	p[14] = 0x45;
	p[17] = 28;
	p[22] = 64;
	p[23] = proto;
	__builtin_memcpy(p + 26, &saddr, 4);
	__builtin_memcpy(p + 30, &daddr, 4);
	if (proto == 6 || proto == 17) {
		__u16 sport = flp->uli.ports.sport, dport = flp->uli.ports.dport;

		__builtin_memcpy(p + 34, &sport, 2);
		__builtin_memcpy(p + 36, &dport, 2);
	} else if (proto == 1) {
		p[34] = flp->uli.icmpt.type;
		p[35] = flp->uli.icmpt.code;
	}
	return pcap_pseudo_ok(e, 42);
}

/* A neighbour entry as the ARP request that resolves it. */
static __always_inline bool neigh_pcap_ok(struct vtr_event *e, __u32 key)
{
	__u8 *p = e->data + VTR_PSEUDO_OFF;

	__builtin_memset(p, 0, VTR_DATA_MAX - VTR_PSEUDO_OFF);
	__builtin_memset(p, 0xff, 6);
	p[12] = 0x08;
	p[13] = 0x06;
	p[15] = 1;
	p[16] = 0x08;
	p[18] = 6;
	p[19] = 4;
	p[21] = 1;
	__builtin_memcpy(p + 38, &key, 4);
	return pcap_pseudo_ok(e, 42);
}

/* Conversations with a packet that matched the expression, so the packets that answer it
 * are kept too (a reply, a RST, an ICMP error quoting it): IPv4 addresses and ports (or
 * ICMP echo id and sequence) in an order that does not depend on the direction. */
struct vtr_flow {
	__u32 a, b;
	__u16 pa, pb;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct vtr_flow);
	__type(value, __u8);
} matched SEC(".maps");

static __always_inline __u16 load16(const __u8 *p)
{
	__u16 v;

	__builtin_memcpy(&v, p, 2);
	return v;
}

static __always_inline __u32 load32(const __u8 *p)
{
	__u32 v;

	__builtin_memcpy(&v, p, 4);
	return v;
}

/* The flow of the IPv4 header at d + l3; false when the copy is too short or the packet is
 * not TCP, UDP or ICMP echo.  Each offset is compared with the copy's size itself, so the
 * verifier sees every read inside the 96 copied bytes. */
static __always_inline bool flow_at(const __u8 *d, __u32 caplen, __u64 l3, struct vtr_flow *f)
{
	__u64 l4;
	__u32 sa, da;
	__u16 ps, pd;
	__u8 proto;

	if (l3 + 20 > caplen)
		return false;
	barrier_var(l3);
	if (l3 > VTR_DATA_MAX - 20 || (d[l3] >> 4) != 4)
		return false;
	l4 = l3 + ((d[l3] & 0xf) << 2);
	if (l4 + 8 > caplen)
		return false;
	barrier_var(l4);
	if (l4 > VTR_DATA_MAX - 8)
		return false;
	proto = d[l3 + 9];
	sa = load32(d + l3 + 12);
	da = load32(d + l3 + 16);
	f->pad[0] = f->pad[1] = f->pad[2] = 0;
	f->proto = proto;
	if (proto == 1 && (d[l4] == 0 || d[l4] == 8)) {
		/* echo request and reply carry the same id and sequence both ways */
		f->a = sa < da ? sa : da;
		f->b = sa < da ? da : sa;
		f->pa = load16(d + l4 + 4);
		f->pb = load16(d + l4 + 6);
		return true;
	}
	if (proto != 6 && proto != 17)
		return false;
	ps = load16(d + l4);
	pd = load16(d + l4 + 2);
	if (sa < da || (sa == da && ps <= pd)) {
		f->a = sa, f->b = da, f->pa = ps, f->pb = pd;
	} else {
		f->a = da, f->b = sa, f->pa = pd, f->pb = ps;
	}
	return true;
}

static __always_inline bool packet_flow(const struct vtr_event *e, struct vtr_flow *f, bool *error)
{
	__u64 l3 = e->data_kind == VTR_DATA_L2 ? ETH_HLEN : 0, l4;
	__u32 caplen = e->data_len > VTR_DATA_MAX ? VTR_DATA_MAX : e->data_len;
	const __u8 *d = e->data;
	__u8 type;

	*error = false;
	if (e->data_kind == VTR_DATA_NONE || e->protocol != ETH_P_IP)
		return false;
	if (flow_at(d, caplen, l3, f))
		return true;
	/* An ICMP error (unreachable, time exceeded, parameter problem) names the flow of the
	 * packet it quotes, after its own 8 bytes. */
	if (l3 + 20 > caplen || d[l3 + 9] != 1)
		return false;
	l4 = l3 + ((d[l3] & 0xf) << 2);
	if (l4 + 8 > caplen)
		return false;
	barrier_var(l4);
	if (l4 > VTR_DATA_MAX - 8)
		return false;
	type = d[l4];
	if (type != 3 && type != 11 && type != 12)
		return false;
	*error = true;
	return flow_at(d, caplen, l4 + 8, f);
}

/* The expression's verdict with the answers rule: a packet that matches opens (or keeps)
 * its flow; one that does not is kept if it belongs to a flow that matched.  Without an
 * expression the placeholder returns itself, and nothing is remembered. */
static __always_inline bool pcap_keep(const struct vtr_event *e, __u64 verdict)
{
	struct vtr_flow f;
	__u8 one = 1;
	bool error;

	if (verdict >> 32 == VTR_PCAP_MARKER(0, 0) >> 32)
		return true;
	if (!packet_flow(e, &f, &error))
		return verdict != 0;
	if (verdict && !error) {
		bpf_map_update_elem(&matched, &f, &one, BPF_ANY);
		return true;
	}
	return verdict || bpf_map_lookup_elem(&matched, &f) != NULL;
}

/* Whether the copied packet matches the expression, judged on the bytes as this probe
 * sees them: L2 copies by the Ethernet program, L3 copies by the network-layer one. */
static __always_inline bool pcap_ok(const struct vtr_event *e, const struct sk_buff *skb)
{
	__u32 mem[20] = {}; /* tracer/cbpf.py MEM_WORDS */
	__u16 start = e->data_kind == VTR_DATA_L2 ? skb->mac_header : skb->network_header;
	__u32 caplen = e->data_kind == VTR_DATA_NONE ? 0 : e->data_len;
	int kind;

	if (caplen > VTR_DATA_MAX)
		caplen = VTR_DATA_MAX;
	/* `len` is the packet's length from where the copy starts, as tcpdump there would see it. */
	mem[16] = skb->len + (__u32)(skb->data - skb->head) - start;
	mem[17] = e->protocol;
	kind = e->data_kind == VTR_DATA_L2 ? VTR_PCAP_L2 :
	       e->protocol == ETH_P_IP || e->protocol == ETH_P_IPV6 ? VTR_PCAP_L3 : VTR_PCAP_L3_OTHER;
	return pcap_keep(e, pcap_run(e->data, caplen, mem, kind));
}

/* Write one packet event; with check_host, discard it if the host filter rejects the
 * packet.  Returns 0 if an event was submitted. */
static __always_inline int emit(const struct sk_buff *skb, const struct net_device *dev, __u32 netns,
				__u8 kind, __u64 location, __u32 arg, bool want_l2, bool check_host)
{
	struct vtr_event draft, *e = reserve(&draft);

	e->kind = kind;
	e->netns = netns;
	e->location = location;
	e->arg = arg;
	set_dev(e, dev);
	copy_packet(e, skb, want_l2);
	/* The expression judges every copy, also the free of an skb reported before: its
	 * address may carry another packet by now (TCP frees some skbs where no tracepoint
	 * fires).  A matched packet still matches, or belongs to a flow that matched. */
	if ((check_host && !packet_host_ok(e)) || !pcap_ok(e, skb))
		return -1;
	return publish(e);
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
	struct vtr_event draft, *e;
	struct vtr_fib *f;

	/* -EAGAIN: this table has no match and the next one is tried; not a decision. */
	if (err == -EAGAIN || !netns_ok(netns) || !host_ok(flp->saddr, flp->daddr))
		return 0;
	e = reserve(&draft);
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
	if (fib_pcap_ok(e, flp))
		publish(e);
	return 0;
}

static __always_inline int neigh_event(const struct neighbour *n, const struct net_device *dev,
				       const void *pkey, __u8 kind, const __u8 *lladdr, __u32 new_state)
{
	struct vtr_event draft, *e;
	struct vtr_neigh *nb;
	__u32 key = 0;

	if (BPF_CORE_READ(n, tbl, family) != AF_INET)
		return 0;
	if (!netns_ok(dev_netns(dev)))
		return 0;
	bpf_probe_read_kernel(&key, sizeof(key), pkey);
	if (!host_ok(key, key))
		return 0;
	e = reserve(&draft);
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
	if (neigh_pcap_ok(e, key))
		publish(e);
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
