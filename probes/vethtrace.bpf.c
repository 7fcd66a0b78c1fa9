// SPDX-License-Identifier: GPL-2.0
/*
 * vethtrace kernel probes: report what happens to each packet (transmit, receive,
 * route lookups, neighbour resolution, frees and drops, socket delivery) as one
 * struct vtr_event per occurrence in a ring buffer.
 *
 * Baseline: tp_btf tracepoints, present on every BTF kernel.  Programs whose section
 * starts with "?" are off unless the loader enables them: arity variants for older
 * kernels, and fentry probes used where the kernel permits BPF trampolines.
 *
 * Scope is a set of packets, decided here (unrelated traffic never reaches user space):
 *  - admission: an skb not followed yet enters the trace if admit() (from the skb's own
 *    fields, before anything is reserved) and then admit_content() (on the copied bytes:
 *    the host filter; a packet filter belongs there too) say so.  admit() takes it if it is
 *    seen in a scope namespace (cfg.scope: by default the one vethtrace runs in), or,
 *    outside the scope, if it is a clone of a followed packet (skb->cloned, a followed
 *    skb->head, the same content and namespace: it inherits the followed packet's origin),
 *    or if, at its transmit, it is addressed to the source of a packet from the scope that
 *    came into this namespace (`answers`: an echo reply, ARP reply or probe, ICMP error, the
 *    other half of a TCP exchange; bound for the scope, and followed from where it was made).
 *    Also, outside the scope, an ARP request sent on the CPU that just reported a followed
 *    packet in that namespace (a router resolving the next hop of a packet it forwards); its
 *    reply is then an answer.
 *  - an admitted skb is followed wherever it goes (a veth peer in another namespace, a
 *    bridge, a forwarding namespace, lo) until it is freed: `tracked` holds what it was.
 *  - identity survives reuse: skb addresses and heads are reused as soon as they are
 *    freed, and many frees are never reported (TCP frees most of its skbs without the
 *    consume_skb/kfree_skb tracepoints), so a `tracked` entry is never trusted on its
 *    address alone (same_journey()): the skb must still carry the same protocol and the
 *    same content key (content_key(): addresses, IP id, ports and TCP sequence or ICMP
 *    type/id/seq, ARP op and addresses: what no hop of a journey changes), and may be in
 *    another namespace than before only right after a transmit (the device step into a
 *    veth peer).  An entry that fails is stale: the event is judged by admit() as a new
 *    packet, and the record says so (VTR_PF_NEW).  `heads` entries are validated the same
 *    way, and marked released at the free that releases the data (VTR_PF_LAST: dataref 1),
 *    so a fresh skb that gets a freed head is never taken for a clone.  Ended entries are
 *    marked, not deleted, and reused in place by the next packet at the address.
 *  - exact counts (`ends`, `paths`): every admitted drop, and every packet whose
 *    data is released, by the sum of its skbs' hop hashes (kept in `tracked` per skb and
 *    in `heads` for the data, updated in place), counted whether or not the ring had room.
 *  - route lookups and neighbour changes are reported from scope namespaces, and from
 *    another namespace only on a CPU that just reported a followed packet there (they
 *    happen while the stack processes that packet).
 *  - cost: unrelated traffic leaves before any map lookup (seen_skb/seen_ns bits); fields are
 *    read with plain loads from BTF pointers where the kernel types them (task, device),
 *    helpers only for packet bytes.  bench/run.py --only scale --scale-part probe_time
 *    measures each piece (bench/scale.py VARIANTS).
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
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6

#define ORIGIN_SCOPE 1   /* admitted in a scope namespace */
#define ORIGIN_CLONE 2   /* a clone of a followed packet */
#define ORIGIN_ANSWER 3  /* addressed to a followed packet's source, outside the scope */
#define ORIGIN_CONTEXT 4 /* an ARP request a followed packet caused outside the scope (a router resolving its next hop) */
#define CONTEXT_NS 1000000ULL  /* route/neighbour events this soon after a followed packet's, on its CPU */

const volatile struct vtr_config cfg = {};
/* Never read: keeps vethtrace.h's types in the object's BTF for tracer/abi.py. */
struct vtr_abi *vtr_abi_anchor __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* enum vtr_lost_index: records the ring buffer had no room for, counts the maps below had none for. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Exact counts (vethtrace.h): per CPU, so counting takes no shared lock. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vtr_end_key);
	__type(value, __u64);
} ends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vtr_path_key);
	__type(value, __u64);
} paths SEC(".maps");

/* A followed skb: what it carried when last reported (validated before it is believed). */
struct vtr_track {
	__u64 content;   /* content_key() */
	__u64 head;      /* skb->head when last reported (`heads` is written when it changes) */
	__u64 path;      /* sum of vtr_hop_hash() of its reported events */
	__u32 netns;     /* where it was last reported */
	__u16 protocol;  /* skb->protocol, host order */
	__u8 kind;       /* last reported enum vtr_kind; 0: its skb was freed (ended_track) */
	__u8 origin;     /* ORIGIN_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);              /* struct sk_buff address */
	__type(value, struct vtr_track);
} tracked SEC(".maps");

/* Ends are marked in place, not deleted: skb addresses and heads are reused at once, so the
 * next packet at the address writes the entry in place too.  Under a flood that keeps map
 * updates and deletes (each costlier than the rest of an event) out of the steady state. */
static __always_inline void ended_track(struct vtr_track *t)
{
	t->kind = 0;
}

/* skb->head of a followed skb: what it carried and where, so a clone of it made outside the
 * scope is followed (a head is reused once freed: validated like `tracked`). */
struct vtr_head {
	__u64 content;
	__u64 path;      /* the hops of the skbs with this data freed so far (their vtr_track.path) */
	__u32 netns;
	__u8 origin;     /* of the followed skb: a clone inherits it */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct vtr_head);
} heads SEC(".maps");

/* (namespace, IPv4 address): the source of a followed packet from the scope reached that
 * namespace, so packets made there to that address are answers. */
struct vtr_hint {
	__u32 netns;
	__u32 addr;      /* network byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vtr_hint);
	__type(value, __u64);            /* when last refreshed */
} answers SEC(".maps");

/* Per CPU: the namespace and time of the last followed packet reported. */
struct vtr_recent {
	__u64 ts;
	__u32 netns;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vtr_recent);
} recent SEC(".maps");

/* Cheap answers to "could this be followed?", asked before any map is looked up: a bit by
 * the skb's address, set when an skb is first followed, and a bit by namespace, set when a
 * followed packet is reported outside the scope (only then can a namespace outside the scope
 * have clones, answers or context events to admit).  Never cleared, and a bit may stand for
 * several keys: a set bit only means "look it up".  Traffic in a namespace no followed
 * packet reached leaves after these loads (what tracing an idle namespace costs a flood
 * elsewhere: bench/scale.py, record_idle_netns), and a new skb in the scope skips the
 * `tracked` lookup. */
#define SEEN_SKB_BITS 16
#define SEEN_NS_BITS 10
__u64 seen_skb[1 << (SEEN_SKB_BITS - 6)];
__u64 seen_ns[1 << (SEEN_NS_BITS - 6)];

#define SEEN_WORD(set, x, bits) (&(set)[(((x) * 0x9E3779B97F4A7C15ULL) >> (64 - (bits) + 6)) & ((1 << ((bits) - 6)) - 1)])
#define SEEN_BIT(x, bits) (1ULL << ((((x) * 0x9E3779B97F4A7C15ULL) >> (64 - (bits))) & 63))
#define SEEN_TEST(set, x, bits) (*SEEN_WORD(set, x, bits) & SEEN_BIT(x, bits))
/* Set before the entry it announces is written; read first, so the atomic is paid once. */
#define SEEN_MARK(set, x, bits)                                              \
	do {                                                                 \
		__u64 *_w = SEEN_WORD(set, x, bits), _b = SEEN_BIT(x, bits); \
		if (!(*_w & _b))                                             \
			__sync_fetch_and_or(_w, _b);                         \
	} while (0)

/* An skb's address as a number to hash: the verifier allows no arithmetic on a pointer but
 * the difference of two (for a tracer, allowed to see addresses); a fixed base keeps it unique. */
static __always_inline __u64 skb_bits(const struct sk_buff *skb)
{
	return (__u64)skb - (__u64)&seen_ns[0];
}

static __always_inline bool seen_skb_maybe(const struct sk_buff *skb)
{
	__u64 x = skb_bits(skb);

	return SEEN_TEST(seen_skb, x, SEEN_SKB_BITS);
}

static __always_inline bool seen_ns_maybe(__u32 netns)
{
	return SEEN_TEST(seen_ns, (__u64)netns, SEEN_NS_BITS);
}

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

	return task->nsproxy->net_ns->ns.inum;  /* BTF pointers: plain loads, a NULL reads as 0 */
}

static __always_inline bool in_scope(__u32 netns)
{
	if (!cfg.n_scope)
		return true;
	for (int i = 0; i < VTR_SCOPE_MAX; i++) {
		if (i >= cfg.n_scope)
			break;
		if (cfg.scope[i] == netns)
			return true;
	}
	return false;
}

static __always_inline bool host_ok(__u32 a, __u32 b)
{
	return !cfg.host || a == cfg.host || b == cfg.host;
}

static __always_inline bool ifindex_ok(const struct net_device *dev, __u32 netns)
{
	return !cfg.ifindex || (dev && dev->ifindex == cfg.ifindex && netns == cfg.ifindex_netns);
}

static __always_inline void count_lost(__u32 index)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &index);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* One more of `key` in a per-CPU counter map (atomic: another program may interrupt this one
 * on this CPU and count the same key). */
static __always_inline void count(void *map, const void *key)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(map, key);

	if (!n && !bpf_map_update_elem(map, key, &one, BPF_NOEXIST))
		return;
	if (!n)
		n = bpf_map_lookup_elem(map, key);  /* created meanwhile by a program that interrupted us */
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		count_lost(VTR_LOST_UNCOUNTED);
}

/* The reader is woken each time the ring's fill crosses a multiple of 1/RING_WAKE_SHARE of its
 * size (a power of two), not at every record: a wake-up per record costs the producer as
 * much as the rest of the probe (bench/scale.py), and once the reader lags, waking it again
 * at every record would cost that much more.  A trickle below the first step waits for the
 * reader's own short poll timeout (tracer/loader.py). */
#define RING_WAKE_SHARE 8
#define RING_RECORD (sizeof(struct vtr_event) + 8)  /* with the ring's record header */

/* Events are drafted on the stack and copied into the ring buffer only once every filter
 * kept them: a record reserved and then discarded still wakes the reader, which under a
 * flood the filters reject costs more than recording it (bench/run.py, ping -f). */
/* ~(ring size / RING_WAKE_SHARE - 1), asked once: the size is fixed when the object is loaded. */
__u64 ring_step;

static __always_inline int publish(struct vtr_event *e)
{
	__u64 fill = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 step = ring_step;
	__u64 wake;

	if (!step) {
		step = ~(bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / RING_WAKE_SHARE - 1);
		ring_step = step;
	}
	wake = ((fill + RING_RECORD) & step) != (fill & step) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_output(&events, e, sizeof(*e), wake)) {
		count_lost(VTR_LOST_RING);
		return -1;
	}
	return 0;
}

/* A kernel name (task->comm, dev->name: 16 NUL-padded bytes, which the kernel's writers
 * keep padded) copied with two loads from a BTF pointer: the helpers (bpf_get_current_comm's
 * strscpy, bpf_probe_read_kernel) cost more than the rest of an event's fields together. */
#define COPY_NAME16(dst, src)                                  \
	do {                                                   \
		const __u64 *_s = (const __u64 *)(src);        \
		__u64 *_d = (__u64 *)(dst);                    \
		_d[0] = _s[0];                                 \
		_d[1] = _s[1];                                 \
	} while (0)

static __always_inline struct vtr_event *reserve(struct vtr_event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();

	e->ts_ns = bpf_ktime_get_ns();
	e->cpu = bpf_get_smp_processor_id();
	e->pid = task->tgid;
	COPY_NAME16(e->comm, task->comm);
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
	COPY_NAME16(e->ifname, dev->name);
}

/* A message the stack itself queued on a socket's error queue (ip_local_error,
 * ipv6_local_error: no ethertype, only the header of the refused packet) carries why in
 * skb->cb (struct sock_exterr_skb): its sock_extended_err (errno, origin, and for EMSGSIZE
 * the MTU in ee_info) is appended to the copied header, data_len covering both. */
static __always_inline void copy_local_error(struct vtr_event *e, const struct sk_buff *skb)
{
	const struct sock_exterr_skb *serr = (const void *)skb->cb;
	__u32 off = e->data_len;

	if (e->protocol || e->data_kind != VTR_DATA_L3 || off > VTR_DATA_MAX - sizeof(struct sock_extended_err))
		return;
	if (!bpf_probe_read_kernel(e->data + off, sizeof(struct sock_extended_err), &serr->ee))
		e->data_len = off + sizeof(struct sock_extended_err);
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
	copy_local_error(e, skb);
}

static __always_inline __u32 l3_offset(const struct vtr_event *e)
{
	return e->data_kind == VTR_DATA_L2 ? ETH_HLEN : 0;
}

static __always_inline __u32 read32(const struct vtr_event *e, __u32 off)
{
	__u32 v = 0;

	if (off + 4 <= e->data_len && off + 4 <= VTR_DATA_MAX)
		__builtin_memcpy(&v, e->data + (off & 0x7f), 4);
	return v;
}

/* (source, destination) addresses of the copied packet: IPv4 or ARP, IPv6 folded, else 0. */
static __always_inline void packet_addrs(const struct vtr_event *e, __u32 *src, __u32 *dst)
{
	__u32 l3 = l3_offset(e);

	*src = *dst = 0;
	if (e->data_kind == VTR_DATA_NONE)
		return;
	if (e->protocol == ETH_P_IP) {
		*src = read32(e, l3 + 12);
		*dst = read32(e, l3 + 16);
	} else if (e->protocol == ETH_P_ARP) {
		*src = read32(e, l3 + 14);
		*dst = read32(e, l3 + 24);
	} else if (e->protocol == ETH_P_IPV6) {
		/* folded to 32 bits: enough to key `answers` and content_key() */
		*src = read32(e, l3 + 8) ^ read32(e, l3 + 12) ^ read32(e, l3 + 16) ^ read32(e, l3 + 20);
		*dst = read32(e, l3 + 24) ^ read32(e, l3 + 28) ^ read32(e, l3 + 32) ^ read32(e, l3 + 36);
	}
}

/* What no hop of a journey changes, as one number: the protocol; for IPv4 the addresses,
 * the IP id, the transport protocol and its first words (ports, TCP sequence, ICMP type
 * and id/seq; checksums left out: a forwarded packet's change); for ARP the operation and
 * the addresses.  Two different packets that agree on all of it are, as far as anything
 * downstream can tell, the same packet again. */
static __always_inline __u64 content_key(const struct vtr_event *e)
{
	__u32 l3 = l3_offset(e), src, dst, w0 = 0, w1 = 0, l4;
	__u64 k = e->protocol;
	__u8 vihl, proto;

	if (e->data_kind == VTR_DATA_NONE)
		return k;
	packet_addrs(e, &src, &dst);
	k = k * 0x9E3779B97F4A7C15ULL ^ (((__u64)src << 32) | dst);
	if (e->protocol == ETH_P_IP && l3 + 20 <= e->data_len) {
		vihl = e->data[l3 & 0xf];
		proto = e->data[(l3 + 9) & 0x1f];
		l4 = l3 + (vihl & 0xf) * 4;
		w0 = read32(e, l4);
		w1 = read32(e, l4 + 4);
		if (proto == IPPROTO_ICMP)
			w0 &= bpf_htonl(0xff000000);   /* the type; code and checksum vary */
		else if (proto != IPPROTO_TCP)
			w1 = 0;                        /* UDP: length and checksum */
		k = k * 0x9E3779B97F4A7C15ULL ^ (((__u64)read32(e, l3 + 4) & bpf_htonl(0xffff0000)) << 16 | proto);
		k = k * 0x9E3779B97F4A7C15ULL ^ (((__u64)w0 << 32) | w1);
	} else if (e->protocol == ETH_P_ARP) {
		k = k * 0x9E3779B97F4A7C15ULL ^ read32(e, l3 + 4);  /* hln, pln, op */
	}
	return k;
}

/* Is the event about the packet the entry followed?  Same protocol, same content, and
 * the same namespace unless the last report was a transmit (into a veth peer). */
static __always_inline bool same_journey(const struct vtr_track *t, const struct vtr_event *e, __u64 content)
{
	if (t->protocol != e->protocol || t->content != content)
		return false;
	if (t->netns && e->netns && t->netns != e->netns)
		return t->kind == VTR_EV_XMIT || t->kind == VTR_EV_FUNC;
	return true;
}

/* Did this CPU just report a followed packet in this namespace (within CONTEXT_NS)? */
static __always_inline bool just_followed(__u32 netns)
{
	__u32 zero = 0;
	struct vtr_recent *r = bpf_map_lookup_elem(&recent, &zero);

	return r && r->netns == netns && bpf_ktime_get_ns() - r->ts < CONTEXT_NS;
}

/* Outside the scope: is this new skb addressed to the source of a followed packet that came
 * into this namespace?  Read from the skb before anything is reserved: with
 * followed_origin(), this is what unrelated traffic costs. */
static __always_inline __u8 answer_origin(const struct sk_buff *skb, __u32 netns)
{
	struct vtr_hint hk = {.netns = netns};
	__u16 nh = skb->network_header;
	__u16 proto = bpf_ntohs(skb->protocol);
	__u32 w[4];

	if (proto == ETH_P_IP)
		bpf_probe_read_kernel(&hk.addr, 4, skb->head + nh + 16);
	else if (proto == ETH_P_ARP)
		bpf_probe_read_kernel(&hk.addr, 4, skb->head + nh + 24);
	else if (proto == ETH_P_IPV6 && !bpf_probe_read_kernel(w, 16, skb->head + nh + 24))
		hk.addr = w[0] ^ w[1] ^ w[2] ^ w[3];  /* folded as packet_addrs() folds it */
	if (hk.addr && bpf_map_lookup_elem(&answers, &hk))
		return ORIGIN_ANSWER;
	return 0;
}

/* Outside the scope: is this new skb a clone of a followed packet (to be confirmed by
 * clone_origin() once its bytes are copied), or an answer to one (looked for at a
 * transmit, where a packet made in this namespace is first seen)? */
static __always_inline __u8 followed_origin(const struct sk_buff *skb, __u32 netns, __u8 kind)
{
	__u64 head = (__u64)skb->head;
	struct vtr_head *h;

	if (!netns)
		return 0;
	h = BPF_CORE_READ_BITFIELD(skb, cloned) ? bpf_map_lookup_elem(&heads, &head) : NULL;
	if (h && h->content)  /* content 0: its data was released */
		return ORIGIN_CLONE;
	if (kind != VTR_EV_XMIT && kind != VTR_EV_FUNC)
		return 0;
	if (skb->protocol == bpf_htons(ETH_P_ARP) && just_followed(netns))
		return ORIGIN_CONTEXT;  /* sent while the stack handled a followed packet here */
	return answer_origin(skb, netns);
}

/* A clone shares the followed skb's data: the same content, in the same namespace.
 * Returns the followed skb's origin, or 0. */
static __always_inline __u8 clone_origin(const struct vtr_event *e, __u64 content)
{
	__u64 head = e->head;
	struct vtr_head *h = bpf_map_lookup_elem(&heads, &head);

	return h && h->content == content && h->netns == e->netns ? h->origin : 0;
}

/* The admission decision for an skb not followed (yet): 0, or the ORIGIN_* it enters
 * with.  The part that needs the copied bytes is admit_content(). */
static __always_inline __u8 admit(const struct sk_buff *skb, const struct net_device *dev, __u32 netns,
				  __u8 kind)
{
	if (!ifindex_ok(dev, netns))
		return 0;
	if (cfg.skip_ipv6 && skb->protocol == bpf_htons(ETH_P_IPV6))
		return 0;
	if (netns && in_scope(netns))
		return ORIGIN_SCOPE;
	if (!seen_ns_maybe(netns))
		return 0;  /* no followed packet was ever reported here */
	return followed_origin(skb, netns, kind);
}

/* Filters on the packet's bytes, at admission: the IPv4 host filter. */
static __always_inline bool admit_content(const struct vtr_event *e)
{
	__u32 a, b;

	if (!cfg.host)
		return true;
	if (e->protocol != ETH_P_IP && e->protocol != ETH_P_ARP)
		return false;
	packet_addrs(e, &a, &b);
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

static __always_inline void note_recent(__u32 netns, __u64 ts)
{
	__u32 zero = 0;
	struct vtr_recent *r = bpf_map_lookup_elem(&recent, &zero);

	SEEN_MARK(seen_ns, (__u64)netns, SEEN_NS_BITS);
	if (r) {
		r->ts = ts;
		r->netns = netns;
	}
}

/* Route and neighbour events: from the scope, or where a followed packet just was. */
static __always_inline bool context_ok(__u32 netns)
{
	return in_scope(netns) || (seen_ns_maybe(netns) && just_followed(netns));
}

/* After a followed packet was reported: remember what it is, where it is, its head, and
 * (outside the scope, for packets from the scope) that answers to its source are wanted. */
static __always_inline void follow(const struct sk_buff *skb, struct vtr_track *t, struct vtr_track *slot,
				   const struct vtr_event *e, __u64 content, __u8 origin, __u64 hop)
{
	__u64 key = (__u64)skb, head = e->head;
	struct vtr_track fresh = {.content = content, .head = head, .path = hop, .netns = e->netns,
				  .protocol = e->protocol, .kind = e->kind, .origin = origin};
	struct vtr_head h = {.content = content, .netns = e->netns}, *known;

	bool moved = t && t->netns != e->netns;  /* into a veth peer: its clones are made there now */

	if (t) {
		t->netns = e->netns;
		t->kind = e->kind;
		t->path += hop;  /* in place: one map update per skb, at its first report */
		origin = t->origin;
	} else if (slot) {
		*slot = fresh;  /* the entry of an skb that ended at this address (ended_track) */
	} else {
		__u64 x = skb_bits(skb);

		SEEN_MARK(seen_skb, x, SEEN_SKB_BITS);
		bpf_map_update_elem(&tracked, &key, &fresh, BPF_ANY);
	}
	if (!t || t->head != head || moved) {
		known = bpf_map_lookup_elem(&heads, &head);
		h.origin = origin;
		if (known && known->content == content) {
			/* this packet's data, already followed (a clone's first report): keep its path */
			known->netns = e->netns;
			known->origin = origin;
		} else if (known) {
			*known = h;  /* another packet's data was here: reused in place */
		} else {
			bpf_map_update_elem(&heads, &head, &h, BPF_ANY);
		}
		if (t)
			t->head = head;
	}
	if (e->netns && !in_scope(e->netns)) {
		note_recent(e->netns, e->ts_ns);
		if ((origin == ORIGIN_SCOPE || origin == ORIGIN_CONTEXT) &&
		    (e->kind == VTR_EV_NETIF_RX || e->kind == VTR_EV_RECEIVE)) {
			struct vtr_hint hk = {.netns = e->netns};
			__u32 dst;

			packet_addrs(e, &hk.addr, &dst);
			if (hk.addr)
				bpf_map_update_elem(&answers, &hk, &e->ts_ns, BPF_ANY);
		}
	}
}

/* Does freeing this skb free its data?  Not while a clone shares it (skb_shared_info's
 * dataref, low 16 bits: references to the whole buffer). */
static __always_inline bool last_data_ref(const struct sk_buff *skb)
{
	const struct skb_shared_info *sh = (const void *)(skb->head + skb->end);
	int ref = 0;

	if (!BPF_CORE_READ_BITFIELD(skb, cloned))
		return true;
	bpf_probe_read_kernel(&ref, sizeof(ref), &sh->dataref);
	return (ref & 0xffff) <= 1;
}

static __always_inline __u32 flags_of(const struct sk_buff *skb, bool fresh, __u8 origin)
{
	return VTR_PF_KNOWN | (fresh ? VTR_PF_NEW : 0) | (BPF_CORE_READ_BITFIELD(skb, cloned) ? VTR_PF_CLONED : 0) |
	       (origin == ORIGIN_ANSWER ? VTR_PF_ANSWER : 0);
}

/* Every event about one packet: followed if `tracked` knows it (and it still is what was
 * followed), else judged by admit().  free: the skb's life ends here.  Returns 0. */
static __always_inline int packet_event(const struct sk_buff *skb, const struct net_device *dev, __u32 netns,
					__u8 kind, __u64 location, __u32 arg, bool want_l2, bool free)
{
	__u64 key = (__u64)skb, content, hop;
	struct vtr_track *slot = seen_skb_maybe(skb) ? bpf_map_lookup_elem(&tracked, &key) : NULL;
	struct vtr_track *t = slot && slot->kind ? slot : NULL;
	struct vtr_event draft, *e;
	__u8 origin = 0;

	if (!t) {
		origin = admit(skb, dev, netns, kind);
		if (!origin)
			return 0;
	} else if (!free && !ifindex_ok(dev, netns)) {
		return 0;  /* -i: only events at that interface */
	}
	e = reserve(&draft);
	e->kind = kind;
	e->netns = netns;
	e->location = location;
	e->arg = arg;
	set_dev(e, dev);
	copy_packet(e, skb, want_l2);
	content = content_key(e);
	if (t && !same_journey(t, e, content)) {
		/* Stale: the followed skb's end was never reported; this is another packet. */
		ended_track(t);
		t = NULL;
		origin = admit(skb, dev, netns, kind);
	}
	if (!t && origin == ORIGIN_CLONE) {
		origin = clone_origin(e, content);
		if (!origin)
			origin = answer_origin(skb, netns);  /* a head reused by an unrelated clone */
	}
	/* The pcap-filter expression is part of admission: a followed packet is not judged
	 * again (same_journey() already proved it is the packet that matched). */
	if (!t && (!origin || !admit_content(e) || !pcap_ok(e, skb)))
		return 0;
	e->arg2 = flags_of(skb, !t, origin);
	hop = vtr_hop_hash(kind, e->ifindex, e->netns, e->protocol);
	if (kind == VTR_EV_KFREE) {  /* consumes and deliveries are in `paths`: fewer counts per packet */
		struct vtr_end_key ek = {.location = location, .reason = arg,
					 .netns = e->netns, .ifindex = e->ifindex, .kind = kind};

		count(&ends, &ek);
	}
	if (free) {
		__u64 head = e->head, path = hop + (t ? t->path : 0);
		struct vtr_head *h = bpf_map_lookup_elem(&heads, &head);

		if (h && h->content != content)
			h = NULL;  /* another packet's data at a reused address */
		if (t)
			ended_track(t);
		if (last_data_ref(skb)) {
			struct vtr_path_key pk = {.location = location, .reason = kind == VTR_EV_KFREE ? arg : 0,
						  .kind = kind};

			pk.path = path + (h ? h->path : 0);
			count(&paths, &pk);
			e->arg2 |= VTR_PF_LAST;
			if (h) {
				/* a later skb with this head is another packet (marked, not deleted: see ended_track) */
				h->content = 0;
				h->path = 0;
			}
		} else if (h) {
			__sync_fetch_and_add(&h->path, path);  /* the data lives on in a clone */
		}
		if (e->netns && !in_scope(e->netns))
			note_recent(e->netns, e->ts_ns);
	} else {
		follow(skb, t, slot, e, content, origin, hop);
	}
	publish(e);
	return 0;
}

static __always_inline int device_event(const struct sk_buff *skb, const struct net_device *dev,
					__u8 kind, __u64 location, __u32 arg)
{
	return packet_event(skb, dev, dev_netns(dev), kind, location, arg, true, false);
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tp_xmit, const struct sk_buff *skb, const struct net_device *dev)
{
	/* The driver's transmit function (veth_xmit, loopback_xmit) names the hop. */
	__u64 fn = (__u64)dev->netdev_ops->ndo_start_xmit;

	return device_event(skb, dev, VTR_EV_XMIT, fn, 0);
}

SEC("tp_btf/netif_rx")
int BPF_PROG(tp_netif_rx, const struct sk_buff *skb)
{
	return device_event(skb, skb->dev, VTR_EV_NETIF_RX, 0, 0);
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tp_receive, const struct sk_buff *skb)
{
	return device_event(skb, skb->dev, VTR_EV_RECEIVE, 0, 0);
}

/* A free: the end of a followed skb, or of one freed in the scope.  Without a device,
 * the namespace is the socket's, and only packets of IP and packet sockets count (not
 * netlink or unix messages). */
static __always_inline int free_event(const struct sk_buff *skb, __u8 kind, __u64 location, __u32 reason)
{
	const struct net_device *dev = skb->dev;
	__u32 netns = dev ? dev_netns(dev) : sk_netns(skb->sk);

	if (!dev && !sk_is_packet_family(skb->sk)) {
		__u64 key = (__u64)skb;
		struct vtr_track *t = seen_skb_maybe(skb) ? bpf_map_lookup_elem(&tracked, &key) : NULL;

		if (!t || !t->kind)
			return 0;
	}
	return packet_event(skb, dev, netns, kind, location, reason, false, true);
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
	return device_event(skb, skb->dev, VTR_EV_ICMP_SEND, 0, ((__u32)type << 8) | (code & 0xff));
}

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(tp_deliver, const struct sk_buff *skb, int len)
{
	const struct sock *sk = skb->sk;

	/* Only sockets of packets: not netlink replies (ip, ss) or unix datagrams. */
	if (sk && !sk_is_packet_family(sk))
		return 0;
	return packet_event(skb, skb->dev, sk ? sk_netns(sk) : task_netns(), VTR_EV_DELIVER, 0, len, false, false);
}

SEC("tp_btf/fib_table_lookup")
int BPF_PROG(tp_fib, __u32 tb_id, const struct flowi4 *flp, const struct fib_nh_common *nhc, int err)
{
	const struct net_device *dev = nhc ? nhc->nhc_dev : NULL;
	__u32 netns = dev ? dev_netns(dev) : task_netns();
	struct vtr_event draft, *e;
	struct vtr_fib *f;

	/* -EAGAIN: this table has no match and the next one is tried; not a decision. */
	if (err == -EAGAIN || !netns || !context_ok(netns) || !host_ok(flp->saddr, flp->daddr))
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

	if (n->tbl->family != AF_INET)
		return 0;
	if (!context_ok(dev_netns(dev)))
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
	return device_event(skb, dev, VTR_EV_FUNC, 0, VTR_FN_VETH_XMIT);
}

SEC("?fentry/loopback_xmit")
int BPF_PROG(fe_loopback_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return device_event(skb, dev, VTR_EV_FUNC, 0, VTR_FN_LOOPBACK_XMIT);
}

SEC("?fentry/arp_rcv")
int BPF_PROG(fe_arp_rcv, struct sk_buff *skb, struct net_device *dev)
{
	return device_event(skb, dev, VTR_EV_FUNC, 0, VTR_FN_ARP_RCV);
}

SEC("?fentry/icmp_rcv")
int BPF_PROG(fe_icmp_rcv, struct sk_buff *skb)
{
	return device_event(skb, skb->dev, VTR_EV_FUNC, 0, VTR_FN_ICMP_RCV);
}
