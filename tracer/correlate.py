"""Rebuilding journeys and conversations from a stream of events.

Journey: one packet's life, from first sighting to its end (freed, consumed, delivered).
  skb addresses and heads are reused as soon as they are freed, and many frees are never
  seen (lost events; TCP frees without the tracepoints), so nothing is believed on an
  address alone (`continues`, `_continuation`): an event at a live skb continues its
  journey only if the probes did not report it as a new packet (PF_NEW), the protocol is
  the same, and it is in the same namespace unless the last step was a transmit (into a
  veth peer).  The same packet can move to another skb: a clone shares skb->head (the
  raw-socket copy of an echo reply; the probes say PF_CLONED, and PF_LAST at the free that
  releases the head, after which the head is another packet's), a copy has the same
  content (`content`).  Both continue the
  journey they came from, in a namespace it was in.
Conversation: journeys linked by content, under a named key (`ConvKey`): echo request/reply
  by (addresses, id, seq), IPv4 and IPv6 alike; ARP request/reply by the address pair and
  neighbour solicitation/advertisement by the target (a new question after an answer starts
  a new conversation); one TCP connection by its 5-tuple in canonical order (handshake,
  data, close, and a RST that answers it; a new SYN after a FIN or RST starts another);
  a UDP flow by its 5-tuple; an ICMP or ICMPv6 error joins the conversation of the packet
  it quotes; IPv6 router discovery, multicast reports and duplicate-address probes fold into one conversation per
  sender.  Plus the route lookups and neighbour changes that decided them.
Hop: a place the packet passed, named as the article names it (`_add_hop`); a journey
  names its hops from its events when they are first asked for (`Journey.hops`).

The correlator works the same on a live stream and on a recording: it only sees Events.
"""
from __future__ import annotations

from collections import OrderedDict
from enum import StrEnum
from itertools import count, islice
from typing import NamedTuple

from .events import NEIGH_KINDS, PF_CLONED, PF_KNOWN, PF_LAST, PF_NEW, Event
from .netns import Namespaces
from .packet import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN

CLONE_WINDOW_NS = 1_000_000_000     # a clone shows up shortly after its original
COPY_WINDOW_NS = 5_000_000_000      # a packet parked for ARP waits up to 3 retries
ROUTE_WINDOW_NS = 1_000_000_000
OUT_ROUTES_KEPT = 8                 # output route lookups kept per destination
MAX_DESTINATIONS = 4096             # destinations whose lookups are kept (bounded memory)
LOOPBACK_IFINDEX = 1
MAX_ENDED = 50_000                  # ended journeys kept for look-ups (bounded memory)
STALE_NS = COPY_WINDOW_NS           # a journey quiet this long will not see its end: it was lost

UDP_IDLE_NS = 30_000_000_000       # a UDP flow quiet this long starts a new conversation

STACK_HANDLERS = {IPPROTO_ICMP: "icmp_rcv", IPPROTO_TCP: "tcp_v4_rcv", IPPROTO_UDP: "udp_rcv"}
STACK_HANDLERS6 = {IPPROTO_ICMPV6: "icmpv6_rcv", IPPROTO_TCP: "tcp_v6_rcv", IPPROTO_UDP: "udpv6_rcv"}


class ConvKind(StrEnum):
    """What a conversation is (a str, so it compares with the plain names)."""
    ECHO = "echo"
    ARP = "arp"
    ND = "nd"                  # IPv6 neighbour discovery: solicitation and advertisement
    TCP = "tcp"
    UDP = "udp"
    ROUTER = "router"          # IPv6 housekeeping: router discovery, multicast reports, DAD probes
    ICMP_ERROR = "icmp-error"  # an error about a packet whose conversation cannot be told
    OTHER = "other"


class Role(StrEnum):
    """A journey's part in its conversation.  TCP and UDP: REQUEST from the side that
    opened it (the client), REPLY from the other."""
    REQUEST = "request"
    REPLY = "reply"
    ERROR = "error"
    ARP_REQUEST = "arp request"
    ARP_REPLY = "arp reply"
    ARP = "arp"
    SOLICIT = "nd solicit"
    ADVERT = "nd advert"
    PACKET = "packet"


class HopKind(StrEnum):
    """What showed a hop: the kind of event that made it, or what the correlator learnt of
    it later (a str, so it compares with the event kinds)."""
    XMIT = "xmit"          # a device transmitted it
    FUNC = "func"          # a function probe saw it (fentry: veth_xmit, arp_rcv, icmp_rcv, ...)
    NETIF_RX = "netif_rx"  # it arrived on a device
    RECEIVE = "receive"    # the stack took it in (named for the handler it then reached)
    DELIVER = "deliver"    # a socket got it
    BRIDGE = "bridge"      # a bridge passed it from one of its ports to another
    FORWARD = "forward"    # IP forwarding sent it on from the namespace it came into


_HOP_KINDS = {k.value: k for k in HopKind}  # event kind -> hop kind (a dict: cheaper than HopKind(kind))


class ConvKey(NamedTuple):
    """A conversation's key.  `ends`: its two ends in a fixed order, the same whichever
    way a packet goes: addresses (echo, ARP) or (address, port) pairs (TCP, UDP); ND:
    (target,); `ident`/`seq`: the echo id and sequence, or what else tells two
    conversations of the same ends apart."""
    kind: ConvKind
    ends: tuple
    ident: object = None
    seq: object = None


class Hop:
    """A place the packet passed: `name` as printed, the device (`dev`, `ifindex`) and
    namespace it was in, and what showed it (HopKind).  A hop made by the stack
    taking a packet in (HopKind.RECEIVE) is named for what the packet was seen doing next
    (`_refine_receive`): a protocol handler only once the packet reached it."""
    __slots__ = ("name", "dev", "netns", "ts", "kind", "ifindex")

    def __init__(self, name: str, dev: str, netns: int, ts: int, kind: HopKind, ifindex: int = 0):
        self.name, self.dev, self.netns, self.ts, self.kind = name, dev, netns, ts, kind
        self.ifindex = ifindex

    @property
    def place(self) -> tuple[str, str]:
        """(kind, name) of the place: ("device", "veth0"), ("stack", "icmp_rcv"), ("socket", "ping")."""
        if self.name.startswith("stack: "):
            return "stack", self.name[7:]
        if self.name.startswith("socket ("):
            return "socket", self.name[8:-1]
        if self.kind == HopKind.BRIDGE:
            return "bridge", self.dev
        return "device", self.dev or self.name.split(" ", 1)[0]

    def __repr__(self) -> str:
        return f"Hop({self.name!r})"


class Journey:
    __slots__ = ("id", "events", "_hops", "_hopped", "pkt", "pkt_at", "live", "heads", "start", "last", "end",
                 "delivered", "frees", "routes", "out_routes", "icmp_errors", "conversation", "role", "netns",
                 "spaces", "verdict_memo", "_path")

    def __init__(self, jid: int, ev: Event, spaces: Namespaces | None = None):
        self.id = jid
        self.events: list[Event] = []
        self._hops: list[Hop] = []
        self._hopped = 0                # events already turned into hops
        self.pkt = ev.pkt
        self.pkt_at = 0 if ev.pkt is not None else -1  # index of the event that told what it carries
        self.live: set[int] = set()     # skb addresses carrying this packet now
        self.heads: set[int] = set()
        self.start = self.last = ev.ts
        self.end: Event | None = None   # the free that ended it
        self.delivered: list[Event] = []
        self.frees: list[Event] = []
        self.routes: list[Event] = []      # input route lookups that decided this packet
        self.out_routes: tuple = ()        # (lookups, n): output lookups to its destination before it
        self.icmp_errors: list[Event] = []  # icmp_send events about this packet
        self.conversation: Conversation | None = None
        self.role = ""
        self.netns = ev.netns
        self.spaces = spaces if spaces is not None else Namespaces()  # names, bridges of the namespaces
        self.verdict_memo: tuple | None = None  # (Correlator.version, verdict) once tracer.verdict made one
        self._path: tuple = (-1, 0, "")          # (events, namespaces known, path) when `path` was made

    @property
    def ended(self) -> bool:
        return self.end is not None and not self.live

    @property
    def cut(self) -> bool:
        """Over without an end seen: its skb went to another packet before its free was
        reported (the kernel lost events)."""
        return self.end is None and not self.live and bool(self.events)

    @property
    def hops(self) -> list[Hop]:
        """The places it passed, named from its events when asked (and kept): a view, like
        verdicts, so following thousands of packets costs nothing for the ones not shown."""
        n = len(self.events)
        if self._hopped < n:
            hops, at = self._hops, self.pkt_at
            for i in range(self._hopped, n):  # each event named with what was known by then
                _add_hop(hops, self.events[i], self.pkt if 0 <= at <= i else None, self.spaces)
            self._hopped = n
        return self._hops

    @property
    def namespaces(self) -> list[int]:
        """The namespaces its hops were in, in the order it entered them."""
        out: list[int] = []
        for h in self.hops:
            if h.netns and h.netns not in out:
                out.append(h.netns)
        return out

    @property
    def path(self) -> str:
        """The hops as text; when they cross namespaces, each namespace's name where the
        packet enters it: `ns-a: veth0 (veth_xmit) > ns-b: veth1 > stack: icmp_rcv`.  Made
        again only after new events (or namespaces, whose names it may show)."""
        n, known = len(self.events), len(self.spaces)
        if self._path[0] == n and self._path[1] == known:
            return self._path[2]
        hops = self.hops
        if len({h.netns for h in hops if h.netns}) <= 1:
            path = " > ".join(h.name for h in hops)
        else:
            parts, here = [], None
            for h in hops:
                if h.netns and h.netns != here:
                    here = h.netns
                    parts.append(f"{self.spaces.name(here)}: {h.name}")
                else:
                    parts.append(h.name)
            path = " > ".join(parts)
        self._path = (n, known, path)
        return path

    @property
    def summary(self) -> str:
        return self.pkt.summary() if self.pkt is not None else "packet"

    def __repr__(self) -> str:
        return f"Journey({self.id}, {self.summary!r}, {self.path!r})"


class Conversation:
    __slots__ = ("id", "kind", "key", "journeys", "start", "client", "last")

    def __init__(self, cid: int, kind: str, key, start: int):
        self.id, self.kind, self.key, self.start = cid, kind, key, start
        self.journeys: list[Journey] = []
        self.client: tuple | None = None  # TCP/UDP: (address, port) of the side that opened it
        self.last = start

    def with_role(self, role: str) -> list[Journey]:
        return [j for j in self.journeys if j.role == role]

    @property
    def title(self) -> str:
        first = self.journeys[0] if self.journeys else None
        if self.kind == "echo" and first is not None:
            req = next((j for j in self.journeys if j.role == "request"), first)
            p = req.pkt
            return f"ping {p.src} > {p.dst} id {p.icmp_id} seq {p.icmp_seq}"
        if self.kind == "arp":
            a, b = self.key[1]
            return f"ARP {a} <> {b}"
        if self.kind in (ConvKind.TCP, ConvKind.UDP) and self.client is not None:
            a, b = self.key.ends if self.key.ends[0] == self.client else self.key.ends[::-1]
            return f"{self.kind} {_endpoint(a)} > {_endpoint(b)}"
        if self.kind == ConvKind.ND:
            return f"neighbour discovery of {self.key.ends[0]}"
        if first is not None and first.delivered and (first.pkt is None or not first.pkt.is_ip) \
                and first.pkt is not None and first.pkt.l3 != "ARP":
            return f"error queue of {first.delivered[0].comm} (not a packet)"
        return first.summary if first else self.kind

    def __repr__(self) -> str:
        return f"Conversation({self.id}, {self.kind}, {len(self.journeys)} journeys)"


def same_packet(a, b) -> bool:
    """Could a and b be the same packet (as far as their headers tell)?"""
    if a is None or b is None or a is b:
        return True
    return (a.l3, a.src, a.dst, a.ip_proto, a.ip_id, a.arp_op, a.icmp_type, a.icmp_seq) == \
        (b.l3, b.src, b.dst, b.ip_proto, b.ip_id, b.arp_op, b.icmp_type, b.icmp_seq)


def _ends(p) -> tuple:
    """The packet's two addresses in a fixed order: the same for a request and its reply."""
    return (p.src, p.dst) if p.src <= p.dst else (p.dst, p.src)


def _closes(p) -> bool:
    """Does this TCP segment end its connection (FIN or RST)?"""
    return p is not None and p.tcp_flags is not None and bool(p.tcp_flags & (TCP_FIN | TCP_RST))


def _endpoint(e: tuple) -> str:
    addr, port = e
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def flow_ends(p) -> tuple:
    """A TCP/UDP packet's two (address, port) ends in a fixed order."""
    a, b = (p.src, p.sport), (p.dst, p.dport)
    return (a, b) if a <= b else (b, a)


def identity(p) -> tuple | None:
    """What makes two skbs carry the same IPv4 packet (see Packet.identity)."""
    return None if p is None else p.identity


def content(p) -> tuple | None:
    """What two skbs carrying the same packet agree on, whatever the protocol (None: not
    known); different protocols never agree."""
    if p is None:
        return None
    if p.l3 in ("IPv4", "IPv6"):  # identity covers both (addresses, ids, ports, ICMP/ICMPv6 type)
        return p.identity
    if p.l3 == "ARP":
        return ("ARP", p.arp_op, p.src, p.dst, p.sha)
    return (p.l3,)


PACKET_EVENT_KINDS = frozenset({"xmit", "netif_rx", "receive", "kfree", "consume", "icmp_send", "deliver", "func"})
XMIT_KINDS = frozenset({"xmit", "func"})  # a transmit: the next event may be in the peer's namespace


def continues(last: Event, ev: Event, pkt) -> bool:
    """Does ev, at the skb address `last` was reported at, carry the same packet (`pkt`, the
    journey's)?  Not if the probes say it is new; not if the protocol changed; not in another
    namespace unless `last` was a transmit (the device step into a veth peer); and not, at a
    transmit, if the headers say another packet (a tunnel decapsulates into the same skb and
    hands the inner packet to netif_rx/receive, so only a transmit is compared)."""
    if ev.arg2 & PF_KNOWN and ev.arg2 & PF_NEW:
        return False
    if last.protocol and ev.protocol and last.protocol != ev.protocol:
        return False
    if last.netns and ev.netns and last.netns != ev.netns and last.kind not in XMIT_KINDS:
        return False
    return ev.kind != "xmit" or ev.pkt is pkt or same_packet(ev.pkt, pkt)


_serials = count(1)


class Correlator:
    """Feed events in time order; read `journeys` and `conversations`."""

    def __init__(self, context: dict | None = None, keep: int | None = None, namespaces: Namespaces | None = None):
        self.serial = next(_serials)              # tells this correlator's `version` from another's
        self.context = context or {}              # the namespace vethtrace ran in (tracer.netns object)
        # every namespace of the trace; live commands add those they meet (Namespaces.learn)
        self.namespaces = namespaces if namespaces is not None else Namespaces([self.context])
        self.keep = keep                          # bound on journeys kept (long live runs)
        self.keep_events: int | None = None       # bound on events they hold (tracer.retention)
        self.held = 0                             # events fed since the last prune, roughly
        self.journeys: list[Journey] = []
        self.conversations: list[Conversation] = []
        self._neigh: dict[str, list[Event]] = {}   # neighbour changes by address (bounded)
        self._arp: dict[str, list[Conversation]] = {}  # ARP conversations by address
        self.events = 0
        self.pruned = 0                           # journeys forgotten by _prune
        self._next_journey = self._next_conv = 0
        self._live: dict[int, Journey] = {}
        self._last: dict[int, Event] = {}        # live skb -> its last event
        self._heads: dict[int, Journey] = {}
        self._parked: dict[tuple, Journey] = {}   # identity -> journey ended by consume
        self._conv: dict[tuple, Conversation] = {}
        # output route lookups by (netns, dst), in append-only lists replaced when long: a
        # journey keeps (list, length) as it was when it started (routes_before)
        self._out_routes: dict[tuple[int, str], list[Event]] = {}
        self._ended: OrderedDict[int, Journey] = OrderedDict()
        self.on_journey_end = None                # optional callback(journey)
        self.on_forget = None                     # optional callback(journeys, conversations) (retention)
        self.may_forget = None                    # optional predicate(journey): may _prune drop it yet?
        self.losses = None                        # optional tracer.losses.LossWindows (lost_events)

    @property
    def version(self) -> tuple:
        """Changes whenever what a verdict reads may have changed (events fed, journeys
        forgotten, namespaces met, events lost), so a verdict made at one version still
        holds at it."""
        w = self.losses
        lost = (id(w), len(w.starts), w.ends[-1] if w.ends else 0) if w is not None else None
        return self.serial, self.events, self.pruned, len(self.namespaces), lost

    # -- feeding ----------------------------------------------------------------------
    def feed(self, events) -> None:
        # The hot path of every command: one loop with locals; an event that only extends
        # a journey makes no call.
        live, heads, last_at = self._live, self._heads, self._last
        n = 0
        for ev in events:
            n += 1
            kind = ev.kind
            if kind == "fib":
                self._route(ev)
                continue
            if kind in NEIGH_KINDS:
                log = self._neigh.setdefault(ev.neigh["addr"], [])
                log.append(ev)
                del log[:-64]
                continue
            skb, pkt = ev.skb, ev.pkt
            j = live.get(skb)
            if j is not None and not continues(last_at[skb], ev, j.pkt):
                # The address carries another packet now: this journey's free was never seen.
                j.live.discard(skb)
                del live[skb]
                if j.cut and self.on_journey_end is not None:
                    self.on_journey_end(j)  # over, though its end was never seen
                j = None
            if j is None:
                j = self._continuation(ev) or self._new(ev)
                j.live.add(skb)
                live[skb] = j
            last_at[skb] = ev
            head = ev.head
            if head:
                j.heads.add(head)
                heads[head] = j
            j.events.append(ev)
            j.last = ev.ts
            if j.pkt is None and pkt is not None:
                j.pkt = pkt
                j.pkt_at = len(j.events) - 1
                self._classify(j, ev.ts)
            if kind == "kfree" or kind == "consume":
                j.frees.append(ev)
                j.end = ev
                j.live.discard(skb)
                del live[skb]
                del last_at[skb]
                if ev.arg2 & PF_LAST and heads.get(head) is j:
                    del heads[head]  # its data is freed: a later skb with this head is another packet
                if not j.live:
                    self._finish(j)
            elif kind == "deliver":
                j.delivered.append(ev)
            elif kind == "icmp_send":
                j.icmp_errors.append(ev)
        self.events += n
        self.held += n
        if self.keep is not None and (len(self.journeys) > self.keep * 1.25 or
                                      (self.keep_events is not None and self.held > self.keep_events * 1.25)):
            self._prune()  # journeys that lost their end never reach _finish

    def add(self, ev: Event) -> None:
        self.feed((ev,))

    def _new(self, ev: Event) -> Journey:
        self._next_journey += 1
        j = Journey(self._next_journey, ev, self.namespaces)
        self.journeys.append(j)
        if ev.pkt is not None:
            self._classify(j, ev.ts)
        return j

    def _continuation(self, ev: Event) -> Journey | None:
        """Is this new skb a clone or copy of a packet we already follow?  A clone shares
        its head (the probes say it is one; older recordings: seen soon after), a copy is
        parked while ARP resolves; either carries the same content, in a namespace the
        journey was in."""
        j = self._heads.get(ev.head) if ev.head else None
        if j is not None and (ev.arg2 & PF_CLONED if ev.arg2 & PF_KNOWN else ev.ts - j.last < CLONE_WINDOW_NS) \
                and _same_content(j, ev) and _was_in(j, ev.netns):
            return self._reopen(j)
        ident = identity(ev.pkt)
        if ident is not None:
            j = self._parked.get(ident)
            if j is not None and ev.ts - j.last < COPY_WINDOW_NS and _was_in(j, ev.netns):
                del self._parked[ident]
                return self._reopen(j)
        return None

    def _reopen(self, j: Journey) -> Journey:
        self._ended.pop(j.id, None)
        return j

    def _finish(self, j: Journey) -> None:
        if j.end.kind == "consume" and not j.delivered:
            ident = identity(j.pkt)
            if ident is not None:
                self._parked[ident] = j
        self._ended[j.id] = j
        while len(self._ended) > (MAX_ENDED if self.keep is None else min(MAX_ENDED, self.keep)):
            _, old = self._ended.popitem(last=False)
            for h in old.heads:
                if self._heads.get(h) is old:
                    del self._heads[h]
            ident = identity(old.pkt)
            if ident is not None and self._parked.get(ident) is old:
                del self._parked[ident]
        if self.on_journey_end is not None:
            self.on_journey_end(j)

    def _prune(self) -> None:
        """Forget the oldest journeys that ended or went quiet (their end was lost), and
        conversations none of whose journeys are kept; reference cycles are broken so no
        GC pass is needed (bounded memory)."""
        cut = len(self.journeys) - self.keep
        if self.keep_events is not None:  # also enough of the oldest to bring the events held under the bound
            excess, k = sum(len(j.events) for j in self.journeys) - self.keep_events, 0
            while excess > 0 and k < len(self.journeys):
                excess -= len(self.journeys[k].events)
                k += 1
            cut = max(cut, k)
        newest = self.journeys[-1].last if self.journeys else 0
        old = self.journeys[:cut]
        may = self.may_forget
        drop = {j.id for j in old if (j.ended or newest - j.last > STALE_NS) and (may is None or may(j))}
        for j in old:
            if j.id in drop and not j.ended:
                for skb in j.live:
                    if self._live.get(skb) is j:
                        del self._live[skb]
                        self._last.pop(skb, None)
                for h in j.heads:
                    if self._heads.get(h) is j:
                        del self._heads[h]
                self._ended.pop(j.id, None)
        self.journeys = [j for j in self.journeys if j.id not in drop]
        kept = {j.id for j in self.journeys}
        gone = [c for c in self.conversations if not any(j.id in kept for j in c.journeys)]
        if self.on_forget is not None:
            self.on_forget([j for j in old if j.id in drop], gone)
        gone_ids = {id(c) for c in gone}
        for c in gone:
            for j in c.journeys:
                j.conversation = None
        self.conversations = [c for c in self.conversations if id(c) not in gone_ids]
        self._conv = {k: c for k, c in self._conv.items() if id(c) not in gone_ids}
        self.pruned += len(drop)
        self.held = sum(len(j.events) for j in self.journeys)

    # -- conversations ----------------------------------------------------------------
    def _classify(self, j: Journey, ts: int) -> None:
        p = j.pkt
        if p.l3 == "IPv4":
            lookups = self._out_routes.get((j.netns, p.dst))
            if lookups:
                j.out_routes = (lookups, len(lookups))
        conv, role = self._link(j, p, ts)
        j.role = role
        conv.journeys.append(j)
        conv.last = ts
        j.conversation = conv

    def _link(self, j: Journey, p, ts: int) -> tuple[Conversation, Role]:
        """The conversation a packet belongs to (found or opened) and its role in it."""
        if p.l3 == "ARP" and p.src is not None:
            key = ConvKey(ConvKind.ARP, _ends(p))
            conv = self._conv.get(key)
            # A request after the last exchange was answered starts a new conversation.
            if conv is None or (p.is_arp_request and conv.with_role(Role.ARP_REPLY)):
                conv = self._open(key, ConvKind.ARP, ts)
            return conv, Role.ARP_REQUEST if p.is_arp_request else Role.ARP_REPLY if p.is_arp_reply else Role.ARP
        if not p.is_ip:
            return self._open(ConvKey(ConvKind.OTHER, (), j.id), ConvKind.OTHER, ts), Role.PACKET
        if p.is_echo:
            key = ConvKey(ConvKind.ECHO, _ends(p), p.icmp_id, p.icmp_seq)
            conv = self._conv.get(key) or self._open(key, ConvKind.ECHO, ts)
            return conv, Role.REQUEST if p.is_echo_request else Role.REPLY
        if p.is_icmp_error:
            q = p.inner
            conv = self._quoted(q, ts) if q is not None else None
            return conv or self._open(ConvKey(ConvKind.ICMP_ERROR, (), j.id), ConvKind.ICMP_ERROR, ts), Role.ERROR
        if (p.is_neighbor_solicit and p.src != "::") or p.is_neighbor_advert:
            key = ConvKey(ConvKind.ND, (p.nd_target,))
            conv = self._conv.get(key)
            if conv is None or (p.is_neighbor_solicit and conv.with_role(Role.ADVERT)):
                conv = self._open(key, ConvKind.ND, ts)
            return conv, Role.SOLICIT if p.is_neighbor_solicit else Role.ADVERT
        if p.is_router_discovery or (p.is_neighbor_solicit and p.src == "::"):
            # housekeeping of a fresh IPv6 interface: one conversation per sender and type
            key = ConvKey(ConvKind.ROUTER, (p.src,), p.icmp_type)
            return self._conv.get(key) or self._open(key, ConvKind.ROUTER, ts), Role.PACKET
        if p.is_tcp or p.is_udp:
            conv = self._flow(p, ts, opening=True)
            return conv, Role.REQUEST if (p.src, p.sport) == conv.client else Role.REPLY
        return self._open(ConvKey(ConvKind.OTHER, (), j.id), ConvKind.OTHER, ts), Role.PACKET

    def _flow(self, p, ts: int, opening: bool) -> Conversation:
        """The TCP connection or UDP flow of packet p (its own, or the one an ICMP error
        quotes: `opening` False, the error never starts a new connection)."""
        kind = ConvKind.TCP if p.ip_proto == IPPROTO_TCP else ConvKind.UDP
        key = ConvKey(kind, flow_ends(p))
        conv = self._conv.get(key)
        if opening and conv is not None:
            if kind == ConvKind.TCP:
                # A new SYN after this connection closed or was reset, or with another
                # initial sequence number, opens a new connection on the same ports.
                if p.tcp_flags is not None and p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN:
                    if any(_closes(k.pkt) for k in conv.journeys) or any(
                            k.pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN and k.pkt.tcp_seq != p.tcp_seq
                            for k in conv.journeys if k.pkt is not None and k.pkt.tcp_flags is not None):
                        conv = None
            elif ts - conv.last > UDP_IDLE_NS:
                conv = None
        if conv is None:
            conv = self._open(key, kind, ts)
            # The client is who sent the SYN; a SYN-ACK seen first was sent by the server;
            # otherwise (a UDP datagram, a connection seen midway) the first sender.
            if p.tcp_flags is not None and p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
                conv.client = (p.dst, p.dport)
            else:
                conv.client = (p.src, p.sport)
        return conv

    def _quoted(self, q, ts: int) -> Conversation | None:
        """The conversation of the packet an ICMP error quotes, if its header tells."""
        if q.src is not None and q.dst is None:
            return self._quoted_by_source(q, ts)
        if q.src is None or q.dst is None:
            return None
        if q.is_echo:
            key = ConvKey(ConvKind.ECHO, _ends(q), q.icmp_id, q.icmp_seq)
            return self._conv.get(key) or self._open(key, ConvKind.ECHO, ts)
        if q.ip_proto in (IPPROTO_TCP, IPPROTO_UDP) and q.sport is not None:
            return self._flow(q, ts, opening=False)
        return None

    def _quoted_by_source(self, q, ts: int) -> Conversation | None:
        """An IPv6 error whose quote was cut after its source: the 96 bytes the probes copy
        of an error sent over lo hold the quoted source, not its destination.  The stack
        sends "address unreachable" for a packet it gave up waiting for a neighbour for
        (ndisc_error_report) just before freeing it: the packet it is about is the recent
        one from that source that never reached a device."""
        for j in islice(reversed(self.journeys), 256):
            if ts - j.last > COPY_WINDOW_NS:
                break
            p = j.pkt
            if (p is not None and p.l3 == "IPv6" and p.src == q.src and j.conversation is not None
                    and not p.is_icmp_error and not any(h.kind == HopKind.XMIT for h in j.hops)):
                return j.conversation
        return None

    def _open(self, key, kind: str, ts: int) -> Conversation:
        self._next_conv += 1
        conv = Conversation(self._next_conv, kind, key, ts)
        self.conversations.append(conv)
        self._conv[key] = conv
        if kind == "arp":
            for addr in key[1]:
                convs = self._arp.setdefault(addr, [])
                convs.append(conv)
                del convs[:-64]
        return conv

    # -- routes -------------------------------------------------------------------------
    def _route(self, ev: Event) -> None:
        f = ev.fib
        if f["iif"] in (0, LOOPBACK_IFINDEX):
            # Output lookup: made before the packet exists; kept for the next packet to dst.
            key = (ev.netns, f["dst"])
            lookups = self._out_routes.get(key)
            if lookups is None or len(lookups) >= 4 * OUT_ROUTES_KEPT:
                # a fresh list: snapshots of the old one held by journeys stay as they were
                lookups = self._out_routes[key] = (lookups or [])[-OUT_ROUTES_KEPT:]
                if len(self._out_routes) > MAX_DESTINATIONS:
                    del self._out_routes[next(iter(self._out_routes))]
            lookups.append(ev)
            return
        # Input lookup: decides a packet just received on iif.
        for j in islice(reversed(self._live.values()), 16):  # the most recently started
            p = j.pkt
            if p is not None and p.src == f["src"] and p.dst == f["dst"]:
                j.routes.append(ev)
                return

    def routes_before(self, j: Journey) -> list[Event]:
        """Output route lookups that decided where journey j was sent."""
        p = j.pkt
        if p is None or p.l3 != "IPv4":
            return []
        if j.events and j.events[0].kind in ("netif_rx", "receive"):
            return []  # it arrived from elsewhere: no output lookup of this namespace sent it
        lookups, n = j.out_routes or ((), 0)
        start, src, latest = j.start, p.src, None
        for ev in reversed(lookups[max(0, n - OUT_ROUTES_KEPT):n]):  # newest first
            f = ev.fib
            if 0 <= start - ev.ts < ROUTE_WINDOW_NS and f["src"] in ("0.0.0.0", src):
                if f["oif"] not in (0, LOOPBACK_IFINDEX):
                    return [ev]  # a lookup constrained to an output device (ping -I) is the one that decided
                if latest is None:
                    latest = ev
        return [latest] if latest is not None else []

    def routes_of_task(self, pid: int, netns: int, before: int) -> list[Event]:
        """Output route lookups a task made in a namespace shortly before `before` (a send
        that never became a packet has only these), oldest first."""
        out = [ev for (ns, _), lookups in self._out_routes.items() if ns == netns for ev in lookups[-OUT_ROUTES_KEPT:]
               if ev.pid == pid and 0 <= before - ev.ts < ROUTE_WINDOW_NS]
        return sorted(out, key=lambda ev: ev.ts)

    # -- look-ups used by verdicts and renderers ---------------------------------------
    def lost_events(self, j: Journey) -> bool:
        """Did the kernel lose events while this journey was under way (so what was seen of
        it may miss hops or its end)?  Also when its own first event says so: the probes
        mark an skb's first report (PF_NEW), so a journey that starts without it has lost
        its beginning, however the loss windows were estimated while the reader lagged."""
        if not self.losses:
            return False
        first = j.events[0] if j.events else None
        if first is not None and first.arg2 & PF_KNOWN and not first.arg2 & PF_NEW and first.kind in PACKET_EVENT_KINDS:
            return True
        return self.losses.journey(j)

    def arp_for(self, target: str, netns: int | None = None, before: int | None = None) -> list[Conversation]:
        """Recent ARP conversations about `target` (most recent last)."""
        out = []
        for c in self._arp.get(target, []):
            if before is not None and c.start > before:
                continue
            if netns is not None and c.journeys and c.journeys[0].netns != netns:
                continue
            out.append(c)
        return out

    def echo(self, seq: int, dst: str | None = None) -> Conversation | None:
        for c in reversed(self.conversations):
            if c.kind == "echo" and c.key[3] == seq and (dst is None or dst in c.key[1]):
                return c
        return None

    def neigh_changes(self, addr: str) -> list[Event]:
        return list(self._neigh.get(addr, []))


def _same_content(j: Journey, ev: Event) -> bool:
    """Does ev's packet agree with journey j's (by headers, else by protocol number)?"""
    a, b = content(ev.pkt), content(j.pkt)
    if a is not None and b is not None:
        return a == b
    first = next((e.protocol for e in j.events if e.protocol), 0)
    return not (first and ev.protocol and first != ev.protocol)


def _was_in(j: Journey, netns: int) -> bool:
    """Was journey j lately in namespace netns (0: not known)?"""
    return not netns or any(e.netns == netns for e in j.events[-8:])


def _add_hop(hops: list[Hop], ev: Event, pkt, spaces: Namespaces) -> None:
    """The hop an event adds to a journey's hops, if any, in the article's vocabulary:
    `veth0 (veth_xmit)`, `veth1`, `stack: icmp_rcv`, `lo (loopback_xmit)`, `socket (ping)`,
    `br0 (bridge)`, `stack: ip_forward`.  Only events that happened name hops."""
    kind = ev.kind
    last = hops[-1] if hops else None
    if kind == "xmit" or (kind == "func" and ev.where.endswith("_xmit")):
        if last is not None and last.kind == HopKind.RECEIVE and last.netns == ev.netns:
            _forwarded(last, ev, spaces)  # taken in, then sent out again from this namespace
        name = _xmit_names.get((ev.dev, ev.where)) or _xmit_name(ev.dev, ev.where, kind)
    elif kind == "netif_rx":
        if last is not None and last.dev == ev.dev and last.netns == ev.netns:
            return  # lo hands the packet straight back: one hop
        name = ev.dev
    elif kind == "receive":
        # Named for now by the tracepoint that fired; what it reached next renames it.
        _arrived(hops, ev, Hop(RECEIVED, "", ev.netns, ev.ts, HopKind.RECEIVE, ev.ifindex))
        return
    elif kind == "kfree" or kind == "consume":
        hop = _waiting(hops, ev)
        if hop is not None:
            _refine_receive(hop, ev.func, pkt)
        return
    elif kind == "deliver":
        hop = _waiting(hops, ev)
        if hop is not None:
            hop.name = _STACK_HOPS[stack_handler(pkt)]  # a socket got it: it passed its handler
        name = f"socket ({ev.comm})"
    elif kind == "func":
        name = f"stack: {ev.where}"
        if last is not None and last.kind == HopKind.RECEIVE and last.name == RECEIVED:
            last.name = name  # the probe saw the handler itself
            return
    else:
        return
    if last is not None and last.name == name:
        return
    hops.append(Hop(name, ev.dev if kind != "deliver" else "", ev.netns, ev.ts, _HOP_KINDS[kind], ev.ifindex))


RECEIVED = "stack: netif_receive_skb"  # the stack took it in; nothing seen of it yet beyond that
_TAKEN_IN = frozenset({HopKind.RECEIVE, HopKind.BRIDGE, HopKind.FORWARD})  # what the stack's intake hop becomes


def _arrived(hops: list[Hop], ev: Event, hop: Hop) -> None:
    """Put the stack's intake of a packet after the hop where it reached that device: the
    last hop, or, for a copy that went another way meanwhile (a bridge floods a broadcast to
    every port), that device's earlier arrival; else after a new hop for the device."""
    for i in range(len(hops) - 1, -1, -1):
        h = hops[i]
        if h.netns == ev.netns and h.dev == ev.dev:
            if i == len(hops) - 1:
                hops.append(hop)
                return
            if h.kind == HopKind.NETIF_RX and hops[i + 1].kind not in _TAKEN_IN:
                hops.insert(i + 1, hop)
                return
            break
    hops.append(Hop(ev.dev, ev.dev, ev.netns, ev.ts, HopKind.NETIF_RX, ev.ifindex))
    hops.append(hop)


def _waiting(hops: list[Hop], ev: Event) -> Hop | None:
    """The latest intake hop, in ev's namespace (and on its device, when it has one), that
    nothing has named yet."""
    for h in reversed(hops):
        if h.kind == HopKind.RECEIVE and h.name == RECEIVED and h.netns == ev.netns \
                and (not ev.ifindex or h.ifindex == ev.ifindex):
            return h
    return None

# Where a packet was freed -> the handler it must have reached to be freed there.
_FREED_IN = (("arp_", "arp_rcv"), ("icmp_", "icmp_rcv"), ("ping_", "icmp_rcv"), ("tcp_", "tcp_v4_rcv"),
             ("udp", "udp_rcv"), ("raw_", "icmp_rcv"),
             ("ip_rcv", "ip_rcv"), ("ip_route", "ip_rcv"), ("ip_local_deliver", "ip_rcv"),
             ("ip_forward", "ip_forward"), ("ip_list_rcv", "ip_rcv"), ("ip_sublist", "ip_rcv"),
             ("ip6_", "ipv6_rcv"), ("ipv6_", "ipv6_rcv"), ("icmpv6_", "icmpv6_rcv"), ("ndisc_", "icmpv6_rcv"))


def _refine_receive(hop: Hop, func: str, pkt) -> None:
    """A received packet freed at `func`: name the handler that freeing proves it reached
    (arp_process -> arp_rcv, icmp_rcv, ping_rcv -> icmp_rcv, ip_rcv_finish -> ip_rcv); a
    free anywhere else (the neighbour code, a bridge, the core) names no handler."""
    if hop.name != RECEIVED:
        return
    for prefix, handler in _FREED_IN:
        if func.startswith(prefix):
            if handler == "icmp_rcv" and prefix == "raw_" and (pkt is None or pkt.ip_proto != IPPROTO_ICMP):
                return
            if pkt is not None and pkt.l3 == "IPv6":  # ping_rcv, tcp_*, udp* serve both families
                handler = _V6_HANDLER.get(handler, handler)
            hop.name = f"stack: {handler}"
            return


_V6_HANDLER = {"icmp_rcv": "icmpv6_rcv", "tcp_v4_rcv": "tcp_v6_rcv", "udp_rcv": "udpv6_rcv"}


def _forwarded(hop: Hop, ev: Event, spaces: Namespaces) -> None:
    """A packet taken in on one device and transmitted on another of the same namespace
    was forwarded: by the bridge both are ports of, else by IP forwarding."""
    if hop.name != RECEIVED or hop.ifindex == ev.ifindex:
        return
    ifs = {i.get("ifindex"): i for i in spaces.get(ev.netns).get("interfaces", [])}
    master = (ifs.get(hop.ifindex) or {}).get("master")
    if master and master == (ifs.get(ev.ifindex) or {}).get("master"):
        hop.name, hop.dev, hop.kind = f"{master} (bridge)", master, HopKind.BRIDGE
    else:
        hop.name, hop.kind = "stack: ip_forward", HopKind.FORWARD


_STACK_HOPS = {h: f"stack: {h}" for h in (*STACK_HANDLERS.values(), *STACK_HANDLERS6.values(), "arp_rcv", "ip_rcv",
                                           "ipv6_rcv",
                                           "netif_receive_skb")}  # every stack_handler() answer
_xmit_names: dict[tuple[str, str], str] = {}


def _xmit_name(dev: str, where: str, kind: str) -> str:
    """`veth0 (veth_xmit)`: the device and the function that transmitted (made once per pair)."""
    fn = where.split("+", 1)[0] if kind == "xmit" else where
    if len(_xmit_names) > 1024:
        _xmit_names.clear()
    name = _xmit_names[(dev, where)] = f"{dev} ({fn})" if fn else dev
    return name


def stack_handler(p) -> str:
    """The protocol handler a received packet is given to."""
    if p is None:
        return "netif_receive_skb"
    if p.l3 == "ARP":
        return "arp_rcv"
    if p.l3 == "IPv4":
        return STACK_HANDLERS.get(p.ip_proto, "ip_rcv")
    if p.l3 == "IPv6":
        return STACK_HANDLERS6.get(p.ip_proto, "ipv6_rcv")
    return "netif_receive_skb"


def device_crossings(events) -> dict[str, list[tuple[str, str]]]:
    """What crossed each device of ONE namespace, by device name (the article's traces):
    `namespace_crossings` is the general form.  Returns dev -> [(direction, packet summary)]."""
    return {dev: rows for (_, _, dev), rows in namespace_crossings(events).items()}


def namespace_crossings(events) -> dict[tuple[int, int, str], list[tuple[str, str]]]:
    """What crossed each device, as a packet capture on it would show: a transmit on a
    device is an outgoing packet there; a hand-over to the stack by a device (netif_rx) is
    an incoming one, except on lo, where the same packet is both and is captured once; the
    stack taking in a packet no device handed over (a bridge's own device) is incoming too.
    Devices are (namespace inode, ifindex, name): two namespaces' veth0 are never merged.
    Returns (netns, ifindex, dev) -> [(direction, packet summary)] in time order."""
    out: dict[tuple[int, int, str], list[tuple[str, str]]] = {}
    handed: set[tuple[int, int, int]] = set()  # (skb, netns, ifindex) handed over by netif_rx
    for ev in events:
        if ev.pkt is None or not ev.dev:
            continue
        kind = ev.kind
        if kind == "xmit":
            out.setdefault((ev.netns, ev.ifindex, ev.dev), []).append(("out", ev.pkt.summary()))
            if ev.dev == "lo":
                handed.add((ev.skb, ev.netns, ev.ifindex))
        elif kind == "netif_rx":
            handed.add((ev.skb, ev.netns, ev.ifindex))
            if ev.dev != "lo":
                out.setdefault((ev.netns, ev.ifindex, ev.dev), []).append(("in", ev.pkt.summary()))
        elif kind == "receive":
            # A receive no device handed over: a bridge passing a frame up to its own device
            # (br0), which a capture on br0 shows as incoming.
            if (ev.skb, ev.netns, ev.ifindex) in handed:
                handed.discard((ev.skb, ev.netns, ev.ifindex))
            else:
                out.setdefault((ev.netns, ev.ifindex, ev.dev), []).append(("in", ev.pkt.summary()))
    return out
