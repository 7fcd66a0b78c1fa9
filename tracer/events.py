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

    # -- the two JSON forms: a row (recordings, format 2) and an object (format 1, --json).
    # to_row is made from COLUMNS below (_make_to_row), like RowDecoder's stages.
    def to_row(self) -> list:  # replaced by the generated version at import
        raise NotImplementedError

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

U16, U32, U64 = (1 << 16) - 1, (1 << 32) - 1, (1 << 64) - 1


class Column:
    """One column of a recording row: its name, what it holds (`form`), the range of an
    integer, and what it means.  COLUMNS is the one definition of an event row: writing
    (Event.to_row), reading and checking (RowDecoder), format 1 objects (DEFAULTS) and the
    JSON schema (tracer/schema.py) are all made from it."""

    __slots__ = ("name", "form", "lo", "hi", "doc")
    DEFAULTS = {"int": 0, "str": "", "kind": "", "hex": "", "bytes": "", "bool": False, "summary": "",
                "fib": None, "neigh": None}

    def __init__(self, name: str, form: str, doc: str, lo: int = 0, hi: int = U32):
        self.name, self.form, self.lo, self.hi, self.doc = name, form, lo, hi, doc

    @property
    def default(self):
        return self.DEFAULTS[self.form]


COLUMNS = (
    Column("ts", "int", "CLOCK_MONOTONIC, ns (bpf_ktime_get_ns)", hi=(1 << 63) - 1),
    Column("kind", "kind", "xmit: a device is asked to transmit; netif_rx: a device hands the packet to the "
                           "stack; receive: the stack takes it in; kfree: dropped; consume: freed after "
                           "processing; fib: route lookup; neigh_*: neighbour table; icmp_send: an ICMP "
                           "error about this packet; deliver: copied to a socket; func: fentry probe"),
    Column("cpu", "int", "CPU the probe ran on", hi=U16),
    Column("netns", "int", "network namespace inode"),
    Column("ifindex", "int", "interface index, within its namespace"),
    Column("dev", "str", "interface name"),
    Column("skb", "hex", "sk_buff address (reused after free)"),
    Column("head", "hex", "skb->head (shared by clones)"),
    Column("len", "int", "skb->len"),
    Column("protocol", "int", "ethertype", hi=U16),
    Column("pid", "int", "tgid of the task the probe ran in"),
    Column("comm", "str", "its command name"),
    Column("where", "str", "kernel function: free site, transmit function or probe"),
    Column("reason", "str", "drop reason name (kfree)"),
    Column("arg", "int", "per kind: icmp type<<8|code, bytes delivered, new NUD state, fib error"),
    Column("arg2", "int", "per kind: old NUD state, fib table id; packet events: the probes' flags (PF_*)"),
    Column("data", "bytes", "first packet bytes copied by the probe"),
    Column("l2", "bool", "data starts at the Ethernet header"),
    Column("summary", "summary", "the packet in one line (tcpdump style), for people and jq; readers re-parse data"),
    Column("fib", "fib", "route lookup: src, dst, iif, oif, proto"),
    Column("neigh", "neigh", "neighbour entry: addr, lladdr"),
)
FIELDS = tuple(c.name for c in COLUMNS)
# What an object (format 1, --json) leaves out.
DEFAULTS = {c.name: c.default for c in COLUMNS}
_AT = {name: i for i, name in enumerate(FIELDS)}


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
        self._strings: dict = {}               # prepare's: one object per distinct name or number (bounded)
        self._fibs: dict[tuple, dict] = {}     # and per distinct route lookup (never modified)
        self._table: list = [None] * self.TABLE  # events' side: number -> (bytes, Packet)

    def reset(self) -> None:
        """Forget every packet number (after a row that failed half-way, say)."""
        self._numbers.clear()

    def decode(self, rows: list[list]) -> list[Event]:
        return self.events(self.prepare(rows))

    # prepare(rows) and events(rows) are made from COLUMNS at import (_make_stages below):
    # one unrolled loop each, since they run once per recorded event.

    def _addr(self, text: str) -> int:
        """A kernel address in hex; skb addresses are reused all the time, so convert once."""
        if len(self._addrs) > 8192:
            self._addrs.clear()
        n = self._addrs[text] = int(text, 16)
        return n


# -- the row code, made from COLUMNS ------------------------------------------------------------
# Each stage is written out as one loop with a local per column (no call or lookup per
# field), compiled once here; the checks and conversions per column form are below.
_CHECK = {  # form -> a condition true when column value `v` is damaged
    "int": "type({v}) is not int or not {lo} <= {v} <= {hi}",
    "str": "type({v}) is not str",
    "bool": "type({v}) is not bool",
    "kind": "type({v}) is not str or {v} not in KIND_IDS",
    "hex": "type({v}) is not str",
    "bytes": "type({v}) is not str",
    "summary": "False",
    "fib": "({v} is not None and not valid_fib({v})) or ({v} is None and kind == 'fib')",
    "neigh": "({v} is not None and not valid_neigh({v})) or ({v} is None and kind in NEIGH_KINDS)",
}


def _compile(src: str, name: str):
    scope = {"KIND_IDS": KIND_IDS, "NEIGH_KINDS": NEIGH_KINDS, "Event": Event, "pk": pk,
             "_valid_fib": _valid_fib, "_valid": _valid, "NEIGH_TYPES": NEIGH_TYPES}
    exec(compile(src, f"<vethtrace.tracer.events.{name}: made from COLUMNS>", "exec"), scope)
    return scope[name]


def _make_stages():
    names = ", ".join("_" + c.name for c in COLUMNS)
    checks = " or ".join(f"({_CHECK[c.form].format(v='_' + c.name, lo=c.lo, hi=c.hi)})" for c in COLUMNS)
    checks = checks.replace("kind ==", "_kind ==").replace("kind in NEIGH", "_kind in NEIGH")
    skb, head, data, summary, fib = _AT["skb"], _AT["head"], _AT["data"], _AT["summary"], _AT["fib"]
    # names, functions, kinds, namespaces and pids repeat in every row: one object each, so
    # the pipe between the two stages carries a reference instead of the value (marshal) and
    # the events share them
    share = "\n".join(f"            row[{i}] = share(_{c.name}, _{c.name})"
                      for i, c in enumerate(COLUMNS) if c.form in ("str", "kind") or c.name in ("netns", "pid"))
    prepare = f"""
def prepare(self, rows):
    numbers, addrs = self._numbers, self._addrs
    fromhex, valid_fib = bytes.fromhex, _valid_fib
    valid_neigh = lambda d: _valid(d, NEIGH_TYPES)
    if len(self._strings) > self.TABLE:
        self._strings.clear()
    share = self._strings.setdefault
    if len(self._fibs) > self.TABLE:
        self._fibs.clear()
    share_fib = self._fibs.setdefault
    try:
        for row in rows:
            ({names},) = row
            if {checks}:
                raise TypeError("a field has the wrong type or is out of range, or the kind is unknown")
{share}
            if _fib is not None and len(_fib) == 5:  # a quarter of all events: the same few lookups
                g = _fib.get
                row[{fib}] = share_fib((g("src"), g("dst"), g("iif"), g("oif"), g("proto")), _fib)
            if _skb:
                row[{skb}] = addrs.get(_skb) or self._addr(_skb)
                row[{head}] = addrs.get(_head) or self._addr(_head)
            else:
                row[{skb}] = row[{head}] = 0
            if _data:
                key = (_data, _protocol, _l2)
                n = numbers.get(key)
                if n is None:
                    n = len(numbers)
                    if n == self.TABLE:
                        numbers.clear()
                        n = 0
                    row[{summary}] = fromhex(_data)  # first sight: the bytes travel along
                    numbers[key] = n
                else:
                    row[{summary}] = None
                row[{data}] = n
            else:
                row[{data}], row[{summary}] = -1, None
    except BaseException:
        self.reset()  # numbers given to rows that will not reach `events`
        raise
    return rows
"""
    sets = "\n".join(f"        e.{c.name} = _{c.name}" for c in COLUMNS if c.form not in ("bytes", "summary"))
    events = f"""
def events(self, rows):
    out = []
    append = out.append
    new = Event.__new__
    table, cached = self._table, pk.cached
    for ({names},) in rows:
        e = new(Event)
{sets}
        if _data < 0:
            e.data = b""
            e.pkt = None
        else:
            if _summary is not None:
                table[_data] = (_summary, cached(_summary, _protocol, _l2))
            e.data, e.pkt = table[_data]
        append(e)
    return out
"""
    encode = {"hex": "f'{{self.{n}:x}}' if self.skb else ''", "bytes": "self.{n}.hex()",
              "summary": "self.pkt.summary() if self.pkt is not None else ''"}
    items = ", ".join(encode.get(c.form, "self.{n}").format(n=c.name) for c in COLUMNS)
    to_row = f"""
def to_row(self):
    return [{items}]
"""
    RowDecoder.prepare = _compile(prepare, "prepare")
    RowDecoder.prepare.__doc__ = ("Check and convert rows in place.  A damaged row raises ValueError, TypeError "
                                  "or KeyError: a file must fail here, where the reader knows the line.")
    RowDecoder.events = _compile(events, "events")
    RowDecoder.events.__doc__ = "Events from prepared rows."
    Event.to_row = _compile(to_row, "to_row")
    Event.to_row.__doc__ = ("The event as a JSON array, in FIELDS order (skb and head as hex strings, empty "
                            "strings and zeros for what the kind does not have).")


_make_stages()


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


# -- the --json form of `show` and `trace` -----------------------------------------------------------
JSON_EXTRA = ("journey", "conversation", "wall_ns")


def json_object(e: Event, journey: int | None, conversation: int | None, wall_offset_ns: int) -> dict:
    """An event for scripts (`show --json`, `trace --json`): every column of a recording
    row, always present, then the ids of the journey and conversation it belongs to (null
    for route and neighbour events) and `wall_ns`, its Unix time in ns (`ts` is
    CLOCK_MONOTONIC)."""
    d = dict(zip(FIELDS, e.to_row()))
    d["journey"], d["conversation"], d["wall_ns"] = journey, conversation, e.ts + wall_offset_ns
    return d
