"""Diagnosis rules as data: an ordered table, each rule with an id, the facts it reads,
its outcome, its text and its advice.  `evaluate` gathers the facts of one journey once
(`Facts`) and returns the first rule that matches, as a Verdict; a new case is a new row.

The facts come from the journey (its packet, its end, its deliveries), its conversation
(what answered it), the route lookups and neighbour changes the correlator saw, and the
context of the namespace where it ended (addresses, MTUs, sysctls as the trace recorded
them).  The table ends with the general cases (delivered, no end seen, dropped with a
reason, consumed), so every journey gets a rule.  When the kernel lost events, the rules of
LOSSES come first: a journey around a loss is INCOMPLETE (`events.lost`), with the verdict
of RULES kept as the guess of what was seen.

Each rule also says, as data, which ends (`ends`) and packets (`packets`) it can hold for:
`evaluate` tries only those rules (`candidates`), in table order, so the answer is the
table's first match while a flood's journeys are each tried against a handful of rules.
"""
from __future__ import annotations

import errno as errnos
import ipaddress
import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable

from .correlate import ConvKind, Correlator, Journey, Role
from .events import nud_name
from .packet import (ICMP6_DEST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED,
                     IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_RST, TCP_SYN, local_error)


class Outcome(StrEnum):
    """How a journey ended, from good to bad; renderers colour by these."""
    DELIVERED = "delivered"
    ANSWERED = "answered"
    CONSUMED = "consumed"
    IN_FLIGHT = "in flight"
    INCOMPLETE = "incomplete"   # the kernel lost events around it: what was seen is a guess
    DROPPED = "dropped"


# What a socket sees when an ICMP error reaches it (icmp_err_convert, icmpv6_err_convert).
ERRNO_OF = {(ICMP_DEST_UNREACH, 0): "ENETUNREACH", (ICMP_DEST_UNREACH, 1): "EHOSTUNREACH",
            (ICMP_DEST_UNREACH, 2): "ENOPROTOOPT", (ICMP_DEST_UNREACH, 3): "ECONNREFUSED",
            (ICMP_DEST_UNREACH, 4): "EMSGSIZE", (ICMP_DEST_UNREACH, 13): "EHOSTUNREACH",
            (ICMP_TIME_EXCEEDED, 0): "EHOSTUNREACH"}
ERRNO6_OF = {(ICMP6_DEST_UNREACH, 0): "ENETUNREACH", (ICMP6_DEST_UNREACH, 1): "EACCES",
             (ICMP6_DEST_UNREACH, 3): "EHOSTUNREACH", (ICMP6_DEST_UNREACH, 4): "ECONNREFUSED",
             (ICMP6_PACKET_TOO_BIG, 0): "EMSGSIZE", (3, 0): "EHOSTUNREACH"}
TCP_COPY_FREES = ("sk_stream_kill_queues", "tcp_write_queue_purge", "tcp_rtx_queue_purge", "inet_csk_destroy_sock")
TCP_ACKED_FREES = ("tcp_clean_rtx_queue", "tcp_ack")
ERROR_QUEUE_READS = ("ip_recv_error", "ipv6_recv_error", "sock_dequeue_err_skb", "skb_dequeue_err")
FOREIGN_FREES = ("netlink_", "__netlink", "genl_", "unix_", "rtnetlink_")
CAPTURE_FREES = ("tpacket_rcv", "packet_rcv", "packet_rcv_spkt")
HOUSEKEEPING_FREES = ("ip6_mc_input", "ip6_rcv_core", "ip6_input_finish", "ndisc_rcv", "icmpv6_rcv")


# Verdict tags: what a consumed packet's end means, for code (the text is for people).
UNANSWERED, PARKED, BENIGN = "unanswered", "parked", "benign"

REASON_HINTS = {
    "NO_SOCKET": "no socket was waiting for it",
    "IP_RPFILTER": "reverse-path filter: set net.ipv4.conf.<dev>.rp_filter=0 (or 2) on the receiving interface",
    "OTHERHOST": "the Ethernet destination is another host's",
    "IP_INADDRERRORS": "the destination address is not valid here",
    "IP_NOPROTO": "no handler for this IP protocol",
    "NETFILTER_DROP": "a netfilter rule dropped it",
    "NEIGH_FAILED": "address resolution (ARP) failed",
    "NEIGH_QUEUEFULL": "too many packets waiting for ARP",
    "IP_OUTNOROUTES": "no route to the destination",
}


class Context:
    """What one namespace looked like when the trace was taken (a tracer.netns object)."""

    def __init__(self, ctx: dict | None, label: str = ""):
        ctx = ctx or {}
        self.name = ctx.get("name", "")          # the ip netns name, or ""
        self.netns = ctx.get("netns", 0)
        self.label = label or self.name or (f"netns:{self.netns}" if self.netns else "this namespace")
        self.interfaces = ctx.get("interfaces", [])
        self.sysctl = ctx.get("sysctl", {})
        self.known = bool(self.interfaces)      # was the namespace's context recorded at all?
        # and its IPv6 addresses? (recordings made before they were recorded have no addrs6)
        self.known6 = any("addrs6" in i for i in self.interfaces)

    def owner(self, addr: str) -> str | None:
        for i in self.interfaces:
            for a in i.get("addrs", []):
                if a.split("/")[0] == addr:
                    return i["name"]
        return None

    def owner6(self, addr: str) -> str | None:
        """The interface that has IPv6 address `addr` (compared as addresses, not text)."""
        want = _ip6(addr)
        for i in self.interfaces:
            for a in i.get("addrs6", []):
                if want is not None and _ip6(a.split("/")[0]) == want:
                    return i["name"]
        return None

    def prefix6(self, dev: str, addr: str) -> int:
        """The prefix length of the subnet of `addr` that `dev` has an address in, else 64."""
        want = _ip6(addr)
        for i in self.interfaces:
            if i.get("name") != dev:
                continue
            for a in i.get("addrs6", []):
                try:
                    net = ipaddress.IPv6Network(a, strict=False)
                except ValueError:
                    continue
                if want is not None and want in net and not net.is_link_local:
                    return net.prefixlen
        return 64

    def name_of(self, ifindex: int) -> str | None:
        for i in self.interfaces:
            if i.get("ifindex") == ifindex:
                return i["name"]
        return None

    def value(self, dev: str, key: str) -> int | None:
        return self.sysctl.get(dev, {}).get(key)

    def exec_prefix(self) -> str:
        """How to run a command in this namespace: `ip netns exec NAME ` (nothing for an
        unnamed one: it can only be entered through one of its processes)."""
        return f"ip netns exec {self.name} " if self.name else ""


def _ip6(text: str) -> ipaddress.IPv6Address | None:
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def context_of(corr: Correlator, netns: int) -> Context:
    """The context of namespace `netns` in this trace."""
    return Context(namespace_context(corr, netns), corr.namespaces.name(netns) if netns else "")


class Facts:
    """What the rules read about one journey, each worked out once, when first read."""

    def __init__(self, j: Journey, corr: Correlator):
        self.j, self.corr = j, corr
        self.pkt = j.pkt
        self.end = j.end
        self.kind = self.end.kind if self.end is not None else ""
        self.reason = (self.end.reason or "NOT_SPECIFIED") if self.kind == "kfree" else ""
        self.func = self.end.func if self.end is not None else ""
        self.netns = (self.end or (j.events[-1] if j.events else None) or j).netns
        self.guess: Match | None = None  # for the loss rules: the verdict of what was seen
        self._cache: dict = {}

    def _once(self, name: str, make):
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    @property
    def namespace(self) -> str:
        """The name of the namespace where the journey ended."""
        return self._once("namespace", lambda: namespace_name(self.corr, self.netns))

    @property
    def run_there(self) -> str:
        """`ip netns exec NAME ` for a named namespace (nothing for an unnamed one)."""
        name = self.namespace
        return f"ip netns exec {name} " if name and not name.startswith("netns:") else ""

    @property
    def sent_from(self) -> str:
        """The name of the namespace that transmitted it first."""
        first = next((e for e in self.j.events if e.kind == "xmit"), None)
        return namespace_name(self.corr, first.netns) if first is not None else self.namespace

    @property
    def ctx(self) -> Context:
        """The context of the namespace where it ended, as an object."""
        return self._once("ctx", lambda: context_of(self.corr, self.netns))

    @property
    def here(self) -> str:
        """`this namespace` in a trace of one namespace, else its name."""
        return "this namespace" if len(self.corr.namespaces) <= 1 else self.ctx.label

    @property
    def context(self) -> dict:
        return self._once("context", lambda: namespace_context(self.corr, self.netns))

    @property
    def answers(self) -> list[Journey]:
        """Journeys of the same conversation sent the other way after this one started."""
        conv = self.j.conversation
        if conv is None or self.pkt is None:
            return []
        return [k for k in conv.journeys if k is not self.j and k.pkt is not None and k.pkt.src == self.pkt.dst
                and k.start >= self.j.start]

    @property
    def rst_answer(self) -> Journey | None:
        """The RST that answers this SYN (its ack is the SYN's seq + 1)."""
        p = self.pkt
        for k in self.answers:
            q = k.pkt
            if q.has_tcp_flag(TCP_RST) and p.tcp_seq is not None and q.tcp_ack == (p.tcp_seq + 1) % (1 << 32):
                return k
        return None

    @property
    def icmp_answer(self) -> Journey | None:
        """The ICMP error in its conversation that quotes this packet."""
        conv = self.j.conversation
        if conv is None or self.pkt is None:
            return None
        for k in conv.with_role(Role.ERROR):
            q = k.pkt.inner if k.pkt is not None else None
            if q is not None and q.src == self.pkt.src and q.sport == self.pkt.sport:
                return k
        return None

    def sysctl(self, dev: str, key: str) -> int | None:
        return self.context.get("sysctl", {}).get(dev, {}).get(key)

    def interface(self, name: str) -> dict:
        return next((i for i in self.context.get("interfaces", []) if i.get("name") == name), {})

    def route_out(self) -> tuple[str, int] | None:
        """(device, its netns) of the last output route lookup that decided this journey."""
        routes = self.corr.routes_before(self.j)
        if not routes and self.j.delivered:  # an error-queue read: the lookups of the task that read it
            d = self.j.delivered[0]
            routes = self.corr.routes_of_task(d.pid, d.netns, d.ts)
        if not routes:
            return None
        return routes[-1].dev, routes[-1].netns


def namespace_name(corr: Correlator, netns: int) -> str:
    """ip netns name of a namespace in this trace, else `netns:INODE`."""
    return corr.namespaces.name(netns) if netns else (corr.context or {}).get("name") or "this namespace"


def namespace_context(corr: Correlator, netns: int) -> dict:
    """The recorded context of a namespace; a recording made before namespaces were
    recorded has one context, without an inode: it stands for every event."""
    ns = corr.namespaces.get(netns) if netns else {}
    if not ns and not (corr.context or {}).get("netns"):
        ns = corr.context or {}
    return ns or {}


@dataclass(frozen=True)
class Rule:
    id: str
    reads: tuple[str, ...]                 # the facts it reads (said in `vethtrace show --why`, tests)
    outcome: Outcome
    when: Callable[[Facts], bool]
    text: Callable[[Facts], str]
    advice: Callable[[Facts], str] = lambda f: ""
    tag: str = ""                          # "unanswered" / "parked" / "benign": what the end means for code
    label: Callable[[Facts], str] = lambda f: ""  # the few words lists, summaries and diagrams show
    note: Callable[[Facts], str] = lambda f: ""   # a benign kernel detail, shown only under -v
    # What `when` needs to hold at all (an index, `candidates`, tries only the rules that may):
    # how the journey ended (Facts.kind: "kfree", "consume", "" for no end) and its packet's
    # class (packet_class).  Each is implied by `when`; tests/test_rule_index.py checks that
    # on every recorded trace.
    ends: frozenset = frozenset({"kfree", "consume", ""})
    packets: frozenset | None = None  # None: any packet, or none


def packet_class(p) -> object:
    """What the rules' `packets` name: "none" (no header seen), "arp", the IP protocol
    number of an IPv4/IPv6 packet (1, 6, 17, 58, ...), else "other"."""
    if p is None:
        return "none"
    if p.l3 == "ARP":
        return "arp"
    if p.ip_proto is not None and p.l3 in ("IPv4", "IPv6"):
        return p.ip_proto
    return "other"


ENDED, KFREE, CONSUME, NO_END = (frozenset({"kfree", "consume"}), frozenset({"kfree"}), frozenset({"consume"}),
                                 frozenset({""}))
TCP, UDP = frozenset({IPPROTO_TCP}), frozenset({IPPROTO_UDP})
ICMP_ANY, ICMP6 = frozenset({IPPROTO_ICMP, IPPROTO_ICMPV6}), frozenset({IPPROTO_ICMPV6})
NOT_IP = frozenset({"none", "arp", "other"})
ARP = frozenset({"arp"})


def _is_tcp(f: Facts) -> bool:
    return f.pkt is not None and f.pkt.is_tcp


def _tcp_undelivered(f: Facts) -> bool:
    """A TCP segment no socket read (one that was read is explained by its delivery)."""
    return _is_tcp(f) and not f.j.delivered


def _is_syn(f: Facts) -> bool:
    return _is_tcp(f) and f.pkt.tcp_flags is not None and f.pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN


def _proto_port(f: Facts) -> str:
    return f"{'tcp' if f.pkt.is_tcp else 'udp'}/{f.pkt.dport}"


def _rp_text(f: Facts) -> str:
    dev = f.end.dev or "?"
    a, d = f.sysctl("all", "rp_filter"), f.sysctl(dev, "rp_filter")
    if a is None or d is None:
        return (f"dropped: IP_RPFILTER at {f.func}: the reverse-path filter of {dev} in {f.namespace} refused "
                f"{f.pkt.src}: the route back to it does not leave through {dev}")
    eff = max(a, d)
    mode = {1: "strict: the route back must leave through the same device", 2: "loose: any route back will do"}
    return (f"dropped: IP_RPFILTER at {f.func}: the reverse-path filter of {dev} in {f.namespace} refused "
            f"{f.pkt.src}; rp_filter is {eff} there, the larger of all={a} and {dev}={d} "
            f"({mode.get(eff, 'on')}), and the route back to {f.pkt.src} does not qualify")


def _rp_advice(f: Facts) -> str:
    dev = f.end.dev or "DEV"
    a = f.sysctl("all", "rp_filter")
    eff = max(a or 0, f.sysctl(dev, "rp_filter") or 0)
    if eff == 2:
        return f"add a route back to {f.pkt.src} in {f.namespace} ({f.run_there}ip route add {f.pkt.src} dev {dev})"
    why = f" (setting {dev} to 0 does not help while all={a}: the kernel uses the larger value)" if a else ""
    return (f"make it loose: {f.run_there}sysctl -w net.ipv4.conf.{dev}.rp_filter=2{why}; "
            f"or route {f.pkt.src} back through {dev}")


def _hook(f: Facts) -> str:
    """Which netfilter hook could have dropped it, from where the packet was."""
    j = f.j
    came_in = any(e.kind in ("netif_rx", "receive") and e.netns == f.netns for e in j.events)
    if not came_in:
        return "output or postrouting (it was being sent)"
    owned = any(f.pkt.dst == a.split("/")[0] for i in f.context.get("interfaces", []) for a in i.get("addrs", []))
    if owned:
        return f"prerouting or input (it was addressed to {f.namespace})"
    return "prerouting, forward or postrouting (it was passing through)"


def _error_fate(f: Facts) -> str:
    q, p = f.pkt.inner, f.pkt
    table = ERRNO6_OF if p.ip_proto == IPPROTO_ICMPV6 else ERRNO_OF
    errno = table.get((p.icmp_type, p.icmp_code if p.icmp_type in (ICMP_DEST_UNREACH, ICMP6_DEST_UNREACH) else 0),
                      "an error")
    who = f"{'TCP' if q.is_tcp else 'UDP'} socket {q.src}:{q.sport}"
    # udp_err() reports an error only to a connected socket or one with IP_RECVERR set
    when = " if it is connected (or has IP_RECVERR; an unconnected one is not told)" if q.is_udp else ""
    return (f"handed by {f.func} to the {who} that sent {_proto_port_of(q)}: its next call there fails with "
            f"{errno}{when}; whether the program saw that is not traced (a socket error is not a packet)")


def _proto_port_of(q) -> str:
    return f"{'tcp' if q.is_tcp else 'udp'}/{q.dport}"


def _refused_to(f: Facts) -> str:
    """The destination of the refused send: ip_local_error writes only the destination into
    the header of the error it queues (bytes 16-19)."""
    d = f.j.delivered[-1].data if f.j.delivered else b""
    return f" to {socket.inet_ntoa(d[16:20])}" if len(d) >= 20 and not f.j.delivered[-1].l2 else ""


def _local_error(f: Facts) -> tuple[str, int, int] | None:
    """(family, errno, ee_info) of the error the program read, as the kernel queued it."""
    d = f.j.delivered[-1] if f.j.delivered else None
    return local_error(d.data) if d is not None and not d.l2 and not d.protocol and d.data else None


def _refused_send(f: Facts) -> str:
    reader = f.j.delivered[-1].comm if f.j.delivered else "the program"
    text = (f"not a packet: {reader} read an error from its socket's error queue ({f.func}); the kernel refused "
            f"its send{_refused_to(f)} before any device")
    out, err = f.route_out(), _local_error(f)
    if err is not None:  # the kernel's own account, from the error it queued
        _, code, info = err
        name = errnos.errorcode.get(code, f"errno {code}")
        via = f" (the route to it leaves through {out[0]})" if out is not None else ""
        if code == errnos.EMSGSIZE:
            return (f"{text}: {name}, the packet is larger than the MTU of {info}{via} and may not be fragmented "
                    "(don't-fragment set, e.g. ping -M do)")
        return f"{text}: {name}{via}"
    if out is not None:
        dev, _ = out
        mtu = f.interface(dev).get("mtu")
        if mtu:
            text += (f". The route to its destination leaves through {dev}, whose MTU is {mtu}: a larger packet "
                     f"that may not be fragmented (don't-fragment set, e.g. ping -M do) is refused with EMSGSIZE")
        else:
            text += f". The route to its destination leaves through {dev}"
    return text


def _refused_advice(f: Facts) -> str:
    out, err = f.route_out(), _local_error(f)
    dev = out[0] if out is not None else None
    if err is not None:
        if err[1] != errnos.EMSGSIZE:
            return ""
        mtu, headers = err[2], 28 if err[0] == "IPv4" else 48  # IP + ICMP headers around ping's -s bytes
    elif dev is not None and f.interface(dev).get("mtu"):
        mtu, headers = f.interface(dev).get("mtu"), 28
    else:
        return ""
    raise_it = f", or raise the MTU: {f.run_there}ip link set {dev} mtu 1500" if dev is not None else ""
    return (f"send at most {mtu} bytes of IP packet (ping -s {max(mtu - headers, 0)}), let it fragment "
            f"(ping -M dont){raise_it}")


def _synack_from(f: Facts) -> str:
    k = next(k for k in f.answers if k.pkt.is_tcp and k.pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK)
    first = next((e for e in k.events if e.kind == "xmit"), None)
    return namespace_name(f.corr, first.netns) if first is not None else "the other side"


def _foreign_free(f: Facts) -> bool:
    """The free seen is of another kind of buffer that got the same address (a netlink or unix
    message): the packet's own free was not reported."""
    return f.end is not None and f.func.startswith(FOREIGN_FREES)


def _capture_copy(f: Facts) -> bool:
    """Its last free seen is of the copy a packet socket (tcpdump) took, not of the packet."""
    return f.kind == "consume" and f.func.startswith(CAPTURE_FREES)


def _nd_unanswered(f: Facts) -> bool:
    """A neighbour solicitation (not a DAD probe) that ended without an advertisement."""
    p = f.pkt
    return (p is not None and p.is_neighbor_solicit and p.src != "::" and bool(p.nd_target) and f.end is not None
            and not f.j.live and not f.j.conversation.with_role(Role.ADVERT))


def _nd_rx(f: Facts) -> str:
    """The device the unanswered solicitation arrived on."""
    j = f.j
    return j.end.dev or next((h.dev for h in reversed(j.hops) if h.dev and h.netns == f.netns), "DEV")


def _solicited_node(addr: str) -> str:
    """ff02::1:ffXX:XXXX, the multicast group a solicitation for addr is sent to."""
    low = int(ipaddress.IPv6Address(addr)) & 0xFFFFFF
    return str(ipaddress.IPv6Address((0xFF02 << 112) | (1 << 32) | (0xFF << 24) | low))


def _nd_conv(f: Facts):
    """The neighbour discovery this packet waited for: the latest unanswered one of its
    destination that started before it ended."""
    dst, end = f.pkt.dst, f.end
    for c in reversed(f.corr.conversations):
        if (c.kind == ConvKind.ND and c.key.ends == (dst,) and c.start <= end.ts and c.with_role(Role.SOLICIT)
                and not c.with_role(Role.ADVERT)):
            return c
    return None


def _nd_failed_advice(f: Facts) -> str:
    """The advice of the last unanswered solicitation it waited for."""
    m = evaluate(_nd_conv(f).with_role(Role.SOLICIT)[-1], f.corr)
    return m.advice if m is not None else ""


def _error_queue_read(f: Facts) -> bool:
    return bool(f.j.delivered) and (f.pkt is None or not f.pkt.is_ip) and f.func.startswith(ERROR_QUEUE_READS)


RULES: tuple[Rule, ...] = (
    Rule("send.refused", ("delivered", "end.func", "local_error", "route_out", "interface.mtu"), Outcome.DROPPED,
         _error_queue_read, _refused_send, _refused_advice,
         label=lambda f: "send refused before any device", ends=ENDED, packets=NOT_IP),
    Rule("tcp.syn.no-listener", ("pkt.tcp_flags", "end.reason", "rst_answer", "namespace"), Outcome.DROPPED,
         lambda f: f.reason == "NO_SOCKET" and _is_syn(f),
         lambda f: (f"dropped: NO_SOCKET at {f.func}: nothing listens on {_proto_port(f)} in {f.namespace}"
                    + ("; the kernel answered with a RST" if f.rst_answer else "")),
         lambda f: (f"start a server on {_proto_port(f)} in {f.namespace}, or connect to a port that has one "
                    f"({f.run_there}ss -ltn lists them)"),
         label=lambda f: f"no listener on {_proto_port(f)}", ends=KFREE, packets=TCP),
    Rule("tcp.rst.answers", ("pkt.tcp_flags", "conversation.syn", "namespace"), Outcome.CONSUMED,
         lambda f: _is_tcp(f) and f.pkt.has_tcp_flag(TCP_RST) and f.j.role == Role.REPLY and any(
             k.pkt is not None and k.pkt.tcp_seq is not None and (k.pkt.tcp_seq + 1) % (1 << 32) == f.pkt.tcp_ack
             and k.pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN for k in f.j.conversation.with_role(Role.REQUEST)),
         lambda f: (f"RST answering the SYN: nothing listens on tcp/{f.pkt.sport} in {f.sent_from}; the "
                    f"connecting socket gets ECONNREFUSED"),
         label=lambda f: "RST: connection refused", packets=TCP),
    Rule("tcp.syn.accepted", ("pkt.tcp_flags", "conversation.syn-ack", "syn-ack.sent_from"), Outcome.ANSWERED,
         lambda f: _is_syn(f) and f.kind == "consume" and any(
             k.pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK for k in f.answers if k.pkt.is_tcp),
         lambda f: f"answered with a SYN-ACK from {_synack_from(f)}: something listens on {_proto_port(f)} there",
         label=lambda f: "answered with a SYN-ACK", ends=CONSUME, packets=TCP),
    Rule("udp.no-listener", ("pkt.ip_proto", "end.reason", "icmp_answer", "namespace"), Outcome.DROPPED,
         lambda f: f.reason == "NO_SOCKET" and f.pkt is not None and f.pkt.is_udp,
         lambda f: (f"dropped: NO_SOCKET at {f.func}: nothing listens on {_proto_port(f)} in {f.namespace}"
                    + ("; the kernel answered with ICMP port unreachable" if f.icmp_answer else "")),
         lambda f: (f"start a server on {_proto_port(f)} in {f.namespace}, or send to a port that has one "
                    f"({f.run_there}ss -lun lists them)"),
         label=lambda f: f"no listener on {_proto_port(f)}", ends=KFREE, packets=UDP),
    Rule("icmp.error.read", ("pkt.inner", "delivered"), Outcome.DELIVERED,
         lambda f: f.pkt is not None and f.pkt.is_icmp_error and bool(f.j.delivered),
         lambda f: (f"read by {f.j.delivered[-1].comm} (pid {f.j.delivered[-1].pid}) as an error about its "
                    f"packet, {f.j.delivered[-1].arg} bytes"),
         label=lambda f: f"error read by {f.j.delivered[-1].comm}", packets=ICMP_ANY),
    Rule("icmp.error.to-socket", ("pkt.inner", "end.func"), Outcome.DELIVERED,
         lambda f: (f.pkt is not None and f.pkt.is_icmp_error and f.kind == "consume"
                    and f.pkt.inner is not None and (f.pkt.inner.is_udp or f.pkt.inner.is_tcp)
                    and f.func in ("icmp_rcv", "icmpv6_rcv")),
         _error_fate,
         label=lambda f: "error handed to the sender's socket", ends=CONSUME, packets=ICMP_ANY),
    Rule("netfilter.drop", ("end.reason", "namespace", "hops"), Outcome.DROPPED,
         lambda f: f.reason == "NETFILTER_DROP",
         lambda f: f"dropped: NETFILTER_DROP at {f.func}: a netfilter rule in {f.namespace} dropped it (hook: {_hook(f)})",
         lambda f: f"see the rules there: {f.run_there}nft list ruleset (iptables rules show there too)",
         label=lambda f: "dropped by netfilter", ends=KFREE),
    Rule("rp_filter.drop", ("end.reason", "end.dev", "sysctl.rp_filter", "namespace"), Outcome.DROPPED,
         lambda f: f.reason == "IP_RPFILTER", _rp_text, _rp_advice,
         label=lambda f: f"dropped by rp_filter on {f.end.dev}", ends=KFREE),
    Rule("tcp.sender-copy.closed", ("pkt.tcp", "end.reason", "end.func"), Outcome.CONSUMED,
         lambda f: _tcp_undelivered(f) and (f.reason == "QUEUE_PURGE" or f.func.startswith(TCP_COPY_FREES)),
         lambda f: (f"the sender's copy kept for retransmission, freed at {f.func} when its socket closed "
                    "(normal: not a loss)"), tag="benign",
         label=lambda f: "sender's copy freed on close", ends=ENDED, packets=TCP),
    Rule("tcp.sender-copy.acked", ("pkt.tcp", "end.func"), Outcome.CONSUMED,
         lambda f: _tcp_undelivered(f) and f.kind == "consume" and f.func.startswith(TCP_ACKED_FREES),
         lambda f: f"the sender's copy kept for retransmission, freed at {f.func} once acknowledged (normal)",
         tag="benign",
         label=lambda f: "sender's copy freed once acked", ends=CONSUME, packets=TCP),
    Rule("tcp.freed-unreported", ("pkt.tcp", "events.receive", "cut", "end"), Outcome.CONSUMED,
         lambda f: (_tcp_undelivered(f) and (f.j.cut or f.end is None or bool(f.j.live) or _capture_copy(f)
                                             or _foreign_free(f))
                    and any(e.kind == "receive" for e in f.j.events)),
         lambda f: ("taken in by the stack, then freed without a trace event: TCP frees the segments it has "
                    "processed with __kfree_skb, which no tracepoint reports (not a loss); its sk_buff then "
                    "carried another packet"), tag="benign",
         label=lambda f: "processed; TCP freed it unreported", packets=TCP),
    Rule("capture.copy", ("end.func", "live"), Outcome.CONSUMED,
         lambda f: _capture_copy(f) and not f.j.delivered,
         lambda f: (f"the last free seen is of the copy a packet capture (tcpdump) took, at {f.func}; the packet's "
                    f"own end was not reported" + (" (it is still held)" if f.j.live else "")),
         tag="benign", label=lambda f: "capture's copy freed", ends=CONSUME),
    Rule("echo6.answered", ("pkt.icmp_type", "end.func", "conversation.reply"), Outcome.ANSWERED,
         lambda f: (f.pkt is not None and f.pkt.ip_proto == IPPROTO_ICMPV6 and f.pkt.is_echo_request
                    and f.kind == "consume" and bool(f.j.conversation.with_role(Role.REPLY))),
         lambda f: f"consumed by {f.func}, which answered it with an echo reply",
         label=lambda f: "answered", ends=CONSUME, packets=ICMP6),
    Rule("nd.answered", ("pkt.icmp_type", "conversation.advert"), Outcome.ANSWERED,
         lambda f: (f.pkt is not None and f.pkt.is_neighbor_solicit and f.end is not None
                    and bool(f.j.conversation.with_role(Role.ADVERT))),
         lambda f: "answered: " + _advert_text(f.j.conversation.with_role(Role.ADVERT)[0]),
         label=lambda f: "answered", ends=ENDED, packets=ICMP6),
    Rule("nd.advert.processed", ("pkt.icmp_type", "end.func"), Outcome.ANSWERED,
         lambda f: f.pkt is not None and f.pkt.is_neighbor_advert and f.kind == "consume",
         lambda f: f"neighbour advertisement processed by {f.func} ({f.pkt.nd_target} is-at {f.pkt.lladdr or '?'})",
         label=lambda f: "answered", ends=CONSUME, packets=ICMP6),
    Rule("nd.unanswered.no-owner", ("pkt.icmp_type", "conversation.advert", "context.addrs6"), Outcome.CONSUMED,
         lambda f: _nd_unanswered(f) and f.ctx.known6 and f.ctx.owner6(f.pkt.nd_target) is None,
         lambda f: (f"neighbour solicitation for {f.pkt.nd_target} freed at {_fn(f)} in {f.ctx.label} without an "
                    f"advertisement: no interface in {f.here} has {f.pkt.nd_target}"
                    + (f" (so it has not joined its solicited-node group {_solicited_node(f.pkt.nd_target)})"
                       if f.func.startswith("ip6_mc_input") else "")),
         lambda f: (f"nobody can answer: give {f.pkt.nd_target} to an interface there: {f.ctx.exec_prefix()}ip -6 "
                    f"addr add {f.pkt.nd_target}/{f.ctx.prefix6(_nd_rx(f), f.pkt.nd_target)} dev {_nd_rx(f)}; "
                    "or ping an address that exists"),
         tag=UNANSWERED, label=lambda f: f"no reply: nobody has {f.pkt.nd_target}", ends=ENDED, packets=ICMP6),
    Rule("nd.failed", ("pkt.l3", "end.func", "conversation.nd", "nd solicit verdict"), Outcome.DROPPED,
         lambda f: (f.pkt is not None and f.pkt.l3 == "IPv6" and f.kind == "kfree" and f.func.startswith("neigh_")
                    and _nd_conv(f) is not None),
         lambda f: (f"dropped: {f.reason} at {f.func}: the neighbour solicitation for {f.pkt.dst} went unanswered "
                    f"{len(_nd_conv(f).with_role(Role.SOLICIT))} times, so the packet waiting for it was dropped "
                    "(the sender is told: ICMPv6 address unreachable)"),
         _nd_failed_advice, label=lambda f: f"dropped: no neighbour {f.pkt.dst}", ends=KFREE),
    Rule("ipv6.housekeeping", ("pkt.icmp_type", "end.func"), Outcome.CONSUMED,
         lambda f: (f.pkt is not None and (f.pkt.is_router_discovery or (f.pkt.is_neighbor_solicit and f.pkt.src == "::"))
                    and f.end is not None and f.func.startswith(HOUSEKEEPING_FREES)),
         lambda f: (f"IPv6 housekeeping of a fresh interface ({f.pkt.icmp_name()}), freed at {f.func}: "
                    "nobody here needed it (normal)"), tag="benign",
         label=lambda f: "IPv6 housekeeping", ends=ENDED, packets=ICMP6),
)


def _raw_copy_original(f: Facts):
    """The original of a packet a raw socket got a copy of, freed with NO_SOCKET (or None)."""
    return next((e for e in f.j.frees if e.kind == "kfree" and e.reason == "NO_SOCKET"), None)


def _delivered_text(f: Facts) -> str:
    d = f.j.delivered[-1]
    text = f"delivered to {d.comm} (pid {d.pid}), {d.arg} bytes"
    return text + (" through its raw socket" if _raw_copy_original(f) is not None else "")


def _delivered_note(f: Facts) -> str:
    e = _raw_copy_original(f)
    return f"(the original was freed at {e.func}, NO_SOCKET: no ICMP datagram socket wanted it; normal)" if e else ""


def _consumed(f: Facts) -> bool:
    return f.end is not None and f.kind != "kfree" and not f.j.live


def _is_arp(f: Facts) -> bool:
    return _consumed(f) and f.pkt is not None and f.pkt.l3 == "ARP"


def _arp_request(f: Facts) -> bool:
    return _is_arp(f) and f.pkt.is_arp_request


def _fn(f: Facts) -> str:
    return f.func or "an unknown place"


def _arp_reply_text(f: Facts) -> str:
    p = f.pkt
    changes = [e for e in f.corr.neigh_changes(p.src) if e.kind == "neigh_update" and e.ts >= f.j.start]
    state = f": neighbour {p.src} is now {nud_name(changes[0].arg)}" if changes else ""
    return f"ARP reply processed by {_fn(f)}{state} ({p.src} is-at {p.sha})"


def _arp_answered_text(f: Facts) -> str:
    """Who sent the ARP reply: the device that transmitted it (with its namespace when the
    trace spans several); if its sending was not traced, only where it was seen arriving."""
    r = f.j.conversation.with_role(Role.ARP_REPLY)[0]
    p, corr = r.pkt, f.corr
    sent = next((e for e in r.events if e.kind == "xmit" and e.dev), None)
    if sent is not None:
        who = sent.dev if len(corr.namespaces) <= 1 else f"{sent.dev} in {corr.namespaces.name(sent.netns)}"
        return f"answered: {who} replied {p.src} is-at {p.sha}"
    seen = next((e for e in r.events if e.dev), None)
    where = f" arrived on {seen.dev}" if seen is not None else " was processed"
    return f"answered: the reply {p.src} is-at {p.sha}{where} (where it was sent from was not traced)"


def _arp_base(f: Facts) -> str:
    where = "" if len(f.corr.namespaces) <= 1 else f" in {f.ctx.label}"
    return f"ARP request for {f.pkt.dst} consumed by {_fn(f)}{where} without a reply"


def _arp_rx(f: Facts) -> str:
    """The device the unanswered request arrived on."""
    j = f.j
    return j.end.dev if j.end.dev else (j.hops[-2].dev if len(j.hops) >= 2 else f.ctx.owner(f.pkt.dst))


def _accept_local_text(f: Facts) -> str:
    rx, ctx = _arp_rx(f), f.ctx
    al = ctx.value(rx, "accept_local")
    state = f"accept_local={al} on {rx}" if al is not None else "accept_local off"
    return (f"{_arp_base(f)}: {ctx.owner(f.pkt.dst)} owns {f.pkt.dst}, but the sender {f.pkt.src} is also an "
            f"address of {f.here}, and with {state} the kernel ignores requests from a local source")


def _accept_local_advice(f: Facts) -> str:
    rx, pre = _arp_rx(f), f.ctx.exec_prefix()
    return (f"allow it: {pre}sysctl -w net.ipv4.conf.{rx}.accept_local=1 "
            f"net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.{rx}.rp_filter=0 "
            f"(or `vethtrace lab up two-ips-fixed`)")


def _neigh_failed_convs(f: Facts):
    p, end = f.pkt, f.end
    return f.corr.arp_for(p.dst, netns=end.netns, before=end.ts) or f.corr.arp_for(p.dst, before=end.ts)


def _neigh_failed_text(f: Facts) -> str:
    convs = _neigh_failed_convs(f)
    asked = sum(len(c.with_role(Role.ARP_REQUEST)) for c in convs[-1:])
    return (f"dropped: NEIGH_FAILED at {f.func}: the ARP request for {f.pkt.dst} went unanswered"
            f"{f' {asked} times' if asked else ''}, so the packet waiting for it was dropped")


def _neigh_failed_advice(f: Facts) -> str:
    """The advice of the last unanswered ARP request it waited for."""
    convs = _neigh_failed_convs(f)
    if not convs or not convs[-1].with_role(Role.ARP_REQUEST):
        return ""
    m = evaluate(convs[-1].with_role(Role.ARP_REQUEST)[-1], f.corr)
    return m.advice if m is not None else ""


def _drop_text(f: Facts) -> str:
    hint = REASON_HINTS.get(f.reason, "")
    return f"dropped: {f.reason} at {f.func}" + (f" ({hint})" if hint else "")


# The general cases, after every specific rule above: ARP, the ICMP echo, and how any other
# journey ended (delivered, no end seen, dropped with a reason, consumed).
GENERAL: tuple[Rule, ...] = (
    Rule("delivered", ("delivered", "frees.reason"), Outcome.DELIVERED,
         lambda f: bool(f.j.delivered), _delivered_text, note=_delivered_note),
    # Not a loss by itself: with none counted, the free was one no tracepoint reports.
    Rule("end.cut", ("cut", "losses"), Outcome.IN_FLIGHT, lambda f: bool(f.j.cut),
         lambda f: ("no end seen: its sk_buff carried another packet before a free of it was reported ("
                    + ("its free may be among the events the kernel lost)" if f.corr.losses
                       else "it was freed where no tracepoint reports it; no events were lost)")), ends=NO_END),
    Rule("in-flight", ("end", "live"), Outcome.IN_FLIGHT, lambda f: f.end is None or bool(f.j.live),
         lambda f: "no end seen: still in flight when the trace stopped"),
    Rule("neigh.failed", ("end.reason", "pkt.dst", "arp_for", "arp request verdict"), Outcome.DROPPED,
         lambda f: f.reason == "NEIGH_FAILED" and bool(f.pkt.dst), _neigh_failed_text, _neigh_failed_advice, ends=KFREE),
    Rule("dropped", ("end.reason", "end.func"), Outcome.DROPPED, lambda f: f.kind == "kfree", _drop_text, ends=KFREE),
    Rule("arp.reply.processed", ("pkt.arp", "neigh_changes"), Outcome.ANSWERED,
         lambda f: _is_arp(f) and f.pkt.is_arp_reply, _arp_reply_text, ends=CONSUME, packets=ARP),
    Rule("arp.consumed", ("pkt.arp", "end.func"), Outcome.CONSUMED,
         lambda f: _is_arp(f) and not f.pkt.is_arp_request, lambda f: f"consumed by {_fn(f)}", ends=CONSUME, packets=ARP),
    Rule("arp.answered", ("pkt.arp", "conversation.arp reply"), Outcome.ANSWERED,
         lambda f: _arp_request(f) and bool(f.j.conversation.with_role(Role.ARP_REPLY)), _arp_answered_text, ends=CONSUME, packets=ARP),
    Rule("arp.unanswered.no-context", ("pkt.arp", "context.known"), Outcome.CONSUMED,
         lambda f: _arp_request(f) and not f.ctx.known,
         lambda f: f"{_arp_base(f)}; the trace has no context of {f.ctx.label}, so why cannot be told",
         tag=UNANSWERED, ends=CONSUME, packets=ARP),
    Rule("arp.unanswered.no-owner", ("pkt.arp", "context.addrs"), Outcome.CONSUMED,
         lambda f: _arp_request(f) and f.ctx.owner(f.pkt.dst) is None,
         lambda f: f"{_arp_base(f)}: no interface in {f.here} owns {f.pkt.dst}",
         lambda f: (f"nobody can answer: give {f.pkt.dst} to an interface ({f.ctx.exec_prefix()}ip addr add "
                    f"{f.pkt.dst}/24 dev ...), or ping an address that exists"), tag=UNANSWERED, ends=CONSUME, packets=ARP),
    Rule("arp.unanswered.accept_local", ("pkt.arp", "context.addrs", "sysctl.accept_local"), Outcome.CONSUMED,
         lambda f: _arp_request(f) and f.ctx.owner(f.pkt.src) is not None,
         _accept_local_text, _accept_local_advice, tag=UNANSWERED, ends=CONSUME, packets=ARP),
    Rule("arp.unanswered.ignored", ("pkt.arp", "context.addrs"), Outcome.CONSUMED, _arp_request,
         lambda f: (f"{_arp_base(f)}: {f.ctx.owner(f.pkt.dst)} owns {f.pkt.dst} but the kernel chose not to "
                    "answer (check arp_ignore, arp_filter and rp_filter on it)"), tag=UNANSWERED, ends=CONSUME, packets=ARP),
    Rule("echo.answered", ("pkt.icmp_type", "end.func", "conversation.reply"), Outcome.ANSWERED,
         lambda f: (_consumed(f) and f.pkt.icmp_type == 8 and f.func == "icmp_rcv"
                    and bool(f.j.conversation.with_role(Role.REPLY))),
         lambda f: "consumed by icmp_rcv, which answered it with an echo reply", ends=CONSUME, packets=ICMP_ANY),
    Rule("echo.consumed", ("pkt.icmp_type", "end.func"), Outcome.CONSUMED,
         lambda f: _consumed(f) and f.pkt.icmp_type == 8 and f.func == "icmp_rcv",
         lambda f: "consumed by icmp_rcv", ends=CONSUME, packets=ICMP_ANY),
    Rule("neigh.parked", ("end.func",), Outcome.CONSUMED,
         lambda f: _consumed(f) and f.func.startswith("__neigh_event_send"),
         lambda f: "parked by __neigh_event_send while ARP resolves; never sent", tag=PARKED, ends=CONSUME),
    Rule("consumed", ("end.func",), Outcome.CONSUMED, _consumed, lambda f: f"consumed by {_fn(f)}", ends=CONSUME),
)
RULES = RULES + GENERAL


def _guess_text(f: Facts) -> str:
    return f.guess.text if f.guess is not None else "no end seen"


def _lost_after(f: Facts) -> bool:
    """Did the kernel lose events after this journey was last seen (its end among them)?"""
    w = f.corr.losses
    return bool(w) and w.ends[-1] > f.j.last


# Checked before RULES when the kernel lost events: what was seen of a journey around a loss
# may miss hops or its end, so its verdict (the first of RULES, kept as the guess) is not
# shown as a success.
LOSSES: tuple[Rule, ...] = (
    Rule("events.lost", ("losses", "events.first", "guess"), Outcome.INCOMPLETE,
         lambda f: f.corr.lost_events(f.j),
         lambda f: f"incomplete: the kernel lost events meanwhile (ring buffer full); from what was seen: {_guess_text(f)}",
         lambda f: "trace again with a larger ring buffer (--buffer-mb) or a narrower filter",
         label=lambda f: "incomplete (events lost)"),
    Rule("events.lost.end", ("end", "live", "losses"), Outcome.INCOMPLETE,
         lambda f: (f.end is None or bool(f.j.live)) and _lost_after(f),
         lambda f: ("incomplete: no end seen, and the kernel lost events after it was last seen (ring buffer full): "
                    "its end may be among them"),
         lambda f: "trace again with a larger ring buffer (--buffer-mb) or a narrower filter",
         label=lambda f: "incomplete (events lost)"),
)


def _advert_text(k: Journey) -> str:
    sent = next((e for e in k.events if e.kind == "xmit" and e.dev), None)
    who = sent.dev if sent is not None else "the stack"
    return f"{who} advertised {k.pkt.nd_target} is-at {k.pkt.lladdr or '?'}"


@dataclass
class Match:
    rule: Rule
    facts: Facts
    text: str = ""
    advice: str = ""
    label: str = ""
    note: str = ""
    guess: "Match | None" = None  # a loss rule's: the verdict of what was seen


def _first(table: tuple[Rule, ...], f: Facts) -> Match | None:
    for rule in table:
        try:
            hit = rule.when(f)
        except (AttributeError, TypeError):  # a fact this journey lacks (no header, no end): not this rule
            continue
        if hit:
            return Match(rule, f, rule.text(f), rule.advice(f), rule.label(f), rule.note(f))
    return None


_CANDIDATES: dict[tuple, tuple[Rule, ...]] = {}  # (end kind, packet class) -> rules (at most 3 x 259 entries)


def candidates(kind: str, cls) -> tuple[Rule, ...]:
    """The rules of RULES, in order, whose `ends` and `packets` admit a journey that ended
    so (Facts.kind) with a packet of class `cls` (packet_class): the only ones that may
    hold for it: a ping's request is tried against 6 rules, not 32."""
    key = (kind, cls)
    table = _CANDIDATES.get(key)
    if table is None:
        table = _CANDIDATES[key] = tuple(r for r in RULES if kind in r.ends and (r.packets is None or cls in r.packets))
    return table


def evaluate(j: Journey, corr: Correlator) -> Match | None:
    """The first rule of RULES that holds for journey j, unless the kernel lost events
    around it (LOSSES, with that rule's verdict as the guess).  None only for a journey the
    general cases cannot place, which the correlator does not make."""
    f = Facts(j, corr)
    m = _first(candidates(f.kind, packet_class(f.pkt)), f)
    if corr.losses:
        f.guess = m
        try:
            lost = _first(LOSSES, f)
        finally:
            # m.facts is f: left in place, f <-> m would be a cycle holding the journey, its
            # events and the correlator until the collector runs (which replay pauses)
            f.guess = None
        if lost is not None:
            lost.guess = m
            return lost
    return m
