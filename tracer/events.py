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
        self.pkt = parse_cached(data, protocol, l2) if data else None

    @property
    def func(self) -> str:
        """The function name of `where`, without the offset."""
        return self.where.split("+", 1)[0]

    def to_json(self) -> dict:
        out = {"ts": self.ts, "kind": self.kind, "cpu": self.cpu, "netns": self.netns}
        if self.ifindex:
            out["ifindex"], out["dev"] = self.ifindex, self.dev
        if self.skb:
            out["skb"], out["head"], out["len"] = f"{self.skb:x}", f"{self.head:x}", self.len
            out["protocol"] = self.protocol
        for name in ("pid", "comm", "where", "reason", "arg", "arg2", "fib", "neigh"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.data:
            out["data"] = self.data.hex()
            out["l2"] = self.l2
        if self.pkt is not None:
            out["summary"] = self.pkt.summary()  # for people and jq; readers re-parse `data`
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Event":
        # Hot path of every replay: fill the slots directly instead of going through kwargs.
        e = cls.__new__(cls)
        g = d.get
        e.ts, e.kind = d["ts"], d["kind"]
        e.cpu, e.netns, e.ifindex, e.dev = g("cpu", 0), g("netns", 0), g("ifindex", 0), g("dev", "")
        skb = g("skb")
        if skb:
            e.skb, e.head, e.len, e.protocol = int(skb, 16), int(d["head"], 16), d["len"], d["protocol"]
        else:
            e.skb = e.head = e.len = e.protocol = 0
        e.pid, e.comm, e.where, e.reason = g("pid", 0), g("comm", ""), g("where", ""), g("reason", "")
        e.arg, e.arg2, e.fib, e.neigh = g("arg", 0), g("arg2", 0), g("fib"), g("neigh")
        data = g("data")
        if data:
            e.data, e.l2 = _hex.get(data) or _unhex(data), d["l2"]
        else:
            e.data, e.l2 = b"", False
        # A damaged file must fail here, with a line number, not deep in the correlator.
        if (type(e.ts) is not int or type(e.kind) is not str or e.kind not in KIND_IDS
                or type(e.where) is not str or type(e.dev) is not str or type(e.comm) is not str
                or type(e.reason) is not str or type(e.arg) is not int or type(e.arg2) is not int
                or type(e.len) is not int or type(e.protocol) is not int or type(e.l2) is not bool
                or type(e.netns) is not int or type(e.ifindex) is not int or type(e.cpu) is not int
                or type(e.pid) is not int):
            raise TypeError("a field has the wrong type or the kind is unknown")
        if e.fib is not None and not _valid(e.fib, FIB_TYPES):
            raise TypeError("malformed fib")
        if e.neigh is not None and not _valid(e.neigh, NEIGH_TYPES):
            raise TypeError("malformed neigh")
        e.pkt = parse_cached(e.data, e.protocol, e.l2) if e.data else None
        return e

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


def _valid(d, types: dict) -> bool:
    return isinstance(d, dict) and all(type(d.get(k)) is t for k, t in types.items())


_hex: dict[str, bytes] = {}


def _unhex(text: str) -> bytes:
    """The same packet bytes appear at several hops: convert them once."""
    if len(_hex) > 4096:
        _hex.clear()
    b = _hex[text] = bytes.fromhex(text)
    return b


_cache: dict[tuple, pk.Packet | None] = {}


def parse_cached(data: bytes, protocol: int, l2: bool):
    """The same bytes are seen at several hops; parse them once."""
    key = (data, protocol, l2)
    p = _cache.get(key, _cache)
    if p is _cache:
        if len(_cache) > 4096:
            _cache.clear()
        p = _cache[key] = pk.parse(data, protocol, l2)
    return p
