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
# enum vtr_pkt_flags: Event.arg2 of packet events, what the probes decided (0 in older recordings)
PF_KNOWN, PF_NEW, PF_CLONED, PF_ANSWER, PF_LAST = 1, 2, 4, 8, 16
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
        return from_rows([object_row(d)])[0]

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


class RowDecoder:
    """JSON rows (Event.to_row's form) -> Events, in two stages that may run in two
    processes (recording.Reader): `prepare` checks and converts a row in place (skb and
    head to numbers, the packet bytes to a packet number), `events` builds the Events.

    Packet numbers: the same bytes show up at several hops, so `prepare` gives each
    distinct copy a number and sends its bytes only the first time (in the summary
    column, which readers do not need); `events` keeps what each number stands for.
    Numbers are slots of a table of TABLE entries, reused in order after a reset, so
    memory stays bounded and both sides agree without talking."""

    TABLE = 8192

    def __init__(self):
        self._numbers: dict[tuple, int] = {}   # prepare's side: (hex, protocol, l2) -> number
        self._addrs: dict[str, int] = {}
        self._table: list = [None] * self.TABLE  # events' side: number -> (bytes, Packet)

    def reset(self) -> None:
        """Forget every packet number (after a row that failed half-way, say)."""
        self._numbers.clear()

    def decode(self, rows: list[list]) -> list[Event]:
        return self.events(self.prepare(rows))

    def prepare(self, rows: list[list]) -> list[list]:
        """Check and convert rows in place.  A damaged row raises ValueError, TypeError or
        KeyError: a file must fail here, where the reader knows the line, not deep in the
        correlator."""
        numbers, addrs = self._numbers, self._addrs
        fromhex, valid_fib = bytes.fromhex, _valid_fib
        try:
            for row in rows:
                (ts, kind, cpu, netns, ifindex, dev, skb, head, length, protocol, pid, comm, where, reason,
                 arg, arg2, data, l2, _summary, fib, neigh) = row
                if (type(ts) is not int or type(kind) is not str or type(cpu) is not int
                        or type(netns) is not int or type(ifindex) is not int or type(dev) is not str
                        or type(length) is not int or type(protocol) is not int or type(pid) is not int
                        or type(comm) is not str or type(where) is not str or type(reason) is not str
                        or type(arg) is not int or type(arg2) is not int or type(l2) is not bool
                        or kind not in KIND_IDS):
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
                if skb:
                    row[6] = addrs.get(skb) or self._addr(skb)
                    row[7] = addrs.get(head) or self._addr(head)
                else:
                    row[6] = row[7] = 0
                if data:
                    key = (data, protocol, l2)
                    n = numbers.get(key)
                    if n is None:
                        n = len(numbers)
                        if n == self.TABLE:
                            numbers.clear()
                            n = 0
                        row[18] = fromhex(data)  # first sight: the bytes travel along
                        numbers[key] = n
                    else:
                        row[18] = None
                    row[16] = n
                else:
                    row[16], row[18] = -1, None
        except BaseException:
            self.reset()  # numbers given to rows that will not reach `events`
            raise
        return rows

    def events(self, rows: list[list]) -> list[Event]:
        """Events from prepared rows: one loop that fills the slots directly."""
        out = []
        append = out.append
        new = Event.__new__
        table, cached = self._table, pk.cached
        for (ts, kind, cpu, netns, ifindex, dev, skb, head, length, protocol, pid, comm, where, reason,
             arg, arg2, number, l2, first, fib, neigh) in rows:
            e = new(Event)
            e.ts = ts
            e.kind = kind
            e.cpu = cpu
            e.netns = netns
            e.ifindex = ifindex
            e.dev = dev
            e.skb = skb
            e.head = head
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
            if number < 0:
                e.data = b""
                e.pkt = None
            else:
                if first is not None:
                    table[number] = (first, cached(first, protocol, l2))
                e.data, e.pkt = table[number]
            append(e)
        return out

    def _addr(self, text: str) -> int:
        """A kernel address in hex; skb addresses are reused all the time, so convert once."""
        if len(self._addrs) > 8192:
            self._addrs.clear()
        n = self._addrs[text] = int(text, 16)
        return n


def object_row(d: dict) -> list:
    """An event object (format 1, `--json`) as a row."""
    if not isinstance(d, dict):
        raise TypeError("not a JSON object")
    if "ts" not in d or "kind" not in d:
        raise KeyError("ts and kind are required")
    return [d.get(k, v) for k, v in DEFAULTS.items()]


_one_by_one = RowDecoder()  # for from_rows: prepare and events always run together on it


def from_rows(rows: list[list]) -> list[Event]:
    """Events from rows (left as they are; RowDecoder converts its rows in place).  Not
    for several threads at once."""
    return _one_by_one.decode([list(r) for r in rows])


def clear_caches() -> None:
    """Forget every parsed packet (benchmarks start cold)."""
    pk.clear_caches()
