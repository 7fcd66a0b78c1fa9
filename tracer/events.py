"""The user-facing event: what one probe saw, with names instead of numbers.

Live records (tracer/record.py) and recorded JSON lines (tracer/recording.py) both
become `Event`s; everything after this point is one code path.
"""
from __future__ import annotations

from . import packet as pk

# enum vtr_kind in probes/vethtrace.h, by value
KINDS = {1: "xmit", 2: "netif_rx", 3: "receive", 4: "kfree", 5: "consume", 6: "fib",
         7: "neigh_create", 8: "neigh_update", 9: "icmp_send", 10: "deliver", 11: "func"}
KIND_IDS = {v: k for k, v in KINDS.items()}
# enum vtr_func
FUNCS = {1: "veth_xmit", 2: "arp_rcv", 3: "icmp_rcv", 4: "loopback_xmit"}
# NUD_* states of a neighbour entry
NUD = {0x00: "NONE", 0x01: "INCOMPLETE", 0x02: "REACHABLE", 0x04: "STALE", 0x08: "DELAY",
       0x10: "PROBE", 0x20: "FAILED", 0x40: "NOARP", 0x80: "PERMANENT"}
NEIGH_KINDS = frozenset({"neigh_create", "neigh_update"})
PACKET_KINDS = frozenset({"xmit", "netif_rx", "receive", "kfree", "consume", "icmp_send", "deliver", "func"})


def nud_name(state: int) -> str:
    return NUD.get(state) or "|".join(n for bit, n in NUD.items() if bit and state & bit) or str(state)


class Event:
    """One thing a probe saw.  `where` is a kernel function (free site, transmit
    function, or probed function); `reason` a drop reason name; `arg` the kind's number
    (ICMP type<<8|code for icmp_send, bytes for deliver, new NUD state for neigh_update)."""

    __slots__ = ("ts", "kind", "cpu", "netns", "ifindex", "dev", "skb", "head", "len", "protocol",
                 "pid", "comm", "where", "reason", "arg", "arg2", "data", "l2", "pkt", "fib", "neigh")

    def __init__(self, ts: int, kind: str, *, cpu: int = 0, netns: int = 0, ifindex: int = 0,
                 dev: str = "", skb: int = 0, head: int = 0, len: int = 0, protocol: int = 0,
                 pid: int = 0, comm: str = "", where: str = "", reason: str = "", arg: int = 0,
                 arg2: int = 0, data: bytes = b"", l2: bool = False, fib: dict | None = None,
                 neigh: dict | None = None):
        self.ts, self.kind, self.cpu, self.netns = ts, kind, cpu, netns
        self.ifindex, self.dev, self.skb, self.head = ifindex, dev, skb, head
        self.len, self.protocol, self.pid, self.comm = len, protocol, pid, comm
        self.where, self.reason, self.arg, self.arg2 = where, reason, arg, arg2
        self.data, self.l2, self.fib, self.neigh = data, l2, fib, neigh
        self.pkt = pk.cached(data, protocol, l2) if data else None

    @property
    def func(self) -> str:
        """The function name of `where`, without the offset."""
        return self.where.split("+", 1)[0]

    # -- the two JSON forms: a row (recordings, format 2) and an object (format 1, --json)
    def to_row(self) -> list:
        """The event as a JSON array, in FIELDS order (skb and head as hex strings, empty
        strings and zeros for what the kind does not have)."""
        skb = self.skb
        return [self.ts, self.kind, self.cpu, self.netns, self.ifindex, self.dev,
                f"{skb:x}" if skb else "", f"{self.head:x}" if skb else "", self.len, self.protocol,
                self.pid, self.comm, self.where, self.reason, self.arg, self.arg2,
                self.data.hex(), self.l2, self.pkt.summary() if self.pkt is not None else "",
                self.fib, self.neigh]

    def to_json(self) -> dict:
        """The event as a JSON object, leaving out what the kind does not have."""
        return {k: v for k, v in zip(FIELDS, self.to_row()) if v or k in ("ts", "kind", "cpu", "netns")
                or (k == "l2" and self.data)}

    @classmethod
    def from_json(cls, d: dict) -> "Event":
        if not isinstance(d, dict):
            raise TypeError("not a JSON object")
        if "ts" not in d or "kind" not in d:
            raise KeyError("ts and kind are required")
        return from_rows([[d.get(k, v) for k, v in DEFAULTS.items()]])[0]

    def describe(self) -> str:
        """One readable line, for listings and --verbose output."""
        parts = [f"{self.kind:<12}"]
        if self.dev:
            parts.append(f"{self.dev:<8}")
        if self.kind == "fib" and self.fib:
            f = self.fib
            res = f"dev {self.dev}" if not self.arg else f"error {self.arg}"
            return f"fib          table {self.arg2} iif={f['iif']} {f['src']} -> {f['dst']} ==> {res}"
        if self.neigh:
            n = self.neigh
            text = f"{self.kind:<12} {self.dev:<8} {n['addr']}"
            if self.kind == "neigh_update":
                text += f" {nud_name(self.arg2)} -> {nud_name(self.arg)}"
            return text
        if self.skb:
            parts.append(f"skb={self.skb:x}")
        if self.pkt is not None:
            parts.append(self.pkt.summary())
        if self.where:
            parts.append(f"at {self.where}")
        if self.reason:
            parts.append(f"reason={self.reason}")
        if self.kind == "icmp_send":
            parts.append(f"type={self.arg >> 8} code={self.arg & 0xff}")
        if self.kind == "deliver":
            parts.append(f"to {self.comm} ({self.pid}) {self.arg} bytes")
        return " ".join(parts)


FIB_TYPES = {"src": str, "dst": str, "iif": int, "oif": int, "proto": int}
NEIGH_TYPES = {"addr": str, "lladdr": str}

# The event's JSON fields, in the order of a recording row (format 2); DEFAULTS gives what
# an object (format 1) leaves out.  `summary` is for people and jq: readers re-parse `data`.
DEFAULTS = {"ts": 0, "kind": "", "cpu": 0, "netns": 0, "ifindex": 0, "dev": "", "skb": "", "head": "",
            "len": 0, "protocol": 0, "pid": 0, "comm": "", "where": "", "reason": "", "arg": 0,
            "arg2": 0, "data": "", "l2": False, "summary": "", "fib": None, "neigh": None}
FIELDS = tuple(DEFAULTS)


def _valid(d, types: dict) -> bool:
    return isinstance(d, dict) and all(type(d.get(k)) is t for k, t in types.items())


def _valid_fib(d) -> bool:
    """_valid(d, FIB_TYPES), spelled out: a quarter of all events are route lookups."""
    if type(d) is not dict:
        return False
    g = d.get
    return (type(g("src")) is str and type(g("dst")) is str and type(g("iif")) is int
            and type(g("oif")) is int and type(g("proto")) is int)


def from_rows(rows) -> list[Event]:
    """Events from JSON rows (Event.to_row's form).  The hot path of every replay, so one
    loop fills the slots directly.  A damaged row raises ValueError, TypeError or KeyError:
    a file must fail here, where the reader knows the line, not deep in the correlator."""
    out = []
    append = out.append
    new = Event.__new__
    packets, packet_entry = _packets, _packet_entry
    addrs, addr, valid_fib = _addrs, _addr, _valid_fib
    for (ts, kind, cpu, netns, ifindex, dev, skb, head, length, protocol, pid, comm, where, reason,
         arg, arg2, data, l2, _summary, fib, neigh) in rows:
        if (type(ts) is not int or type(kind) is not str or type(cpu) is not int or type(netns) is not int
                or type(ifindex) is not int or type(dev) is not str or type(length) is not int
                or type(protocol) is not int or type(pid) is not int or type(comm) is not str
                or type(where) is not str or type(reason) is not str or type(arg) is not int
                or type(arg2) is not int or type(l2) is not bool or kind not in KIND_IDS):
            raise TypeError("a field has the wrong type or the kind is unknown")
        if fib is not None:
            if not valid_fib(fib):
                raise TypeError("malformed fib")
        elif kind == "fib":
            raise TypeError("a route lookup without its fib")
        if neigh is not None:
            if not _valid(neigh, NEIGH_TYPES):
                raise TypeError("malformed neigh")
        elif kind in NEIGH_KINDS:
            raise TypeError("a neighbour event without its neigh")
        e = new(Event)
        e.ts = ts
        e.kind = kind
        e.cpu = cpu
        e.netns = netns
        e.ifindex = ifindex
        e.dev = dev
        e.len = length
        e.protocol = protocol
        e.pid = pid
        e.comm = comm
        e.where = where
        e.reason = reason
        e.arg = arg
        e.arg2 = arg2
        e.l2 = l2
        e.fib = fib
        e.neigh = neigh
        if skb:
            e.skb = addrs.get(skb) or addr(skb)
            e.head = addrs.get(head) or addr(head)
        else:
            e.skb = e.head = 0
        if data:
            e.data, e.pkt = packets.get((data, protocol, l2)) or packet_entry(data, protocol, l2)
        else:
            e.data = b""
            e.pkt = None
        append(e)
    return out


_packets: dict[tuple, tuple] = {}
_addrs: dict[str, int] = {}


def _addr(text: str) -> int:
    """A kernel address in hex; skb addresses are reused all the time, so convert once."""
    if len(_addrs) > 8192:
        _addrs.clear()
    n = _addrs[text] = int(text, 16)
    return n


def _packet_entry(text: str, protocol: int, l2: bool) -> tuple:
    """Hex text -> (bytes, Packet): the same packet appears at several hops, in a row."""
    if len(_packets) > 8192:
        _packets.clear()
    data = bytes.fromhex(text)
    entry = _packets[(text, protocol, l2)] = (data, pk.shared(data, protocol, l2))
    return entry


def clear_caches() -> None:
    """Forget every converted and parsed packet (benchmarks start cold)."""
    _packets.clear()
    _addrs.clear()
    pk.clear_caches()
