"""The raw record layout (mirror of struct vtr_event in probes/vethtrace.h) and its
decoding into `Event`s.  Only this module knows the byte layout; a test compiles the C
header and compares sizes and offsets with the tables here.
"""
from __future__ import annotations

import socket
import struct

from . import packet as pk
from . import untrusted
from .events import FUNCS, KINDS, Event

RECORD_VERSION = 1
DATA_MAX = 96

# (field, struct code) in C order; offsets follow from native alignment ("=" + explicit pads)
EVENT_FIELDS = [
    ("ts_ns", "Q"), ("skb", "Q"), ("head", "Q"), ("location", "Q"),
    ("netns", "I"), ("ifindex", "I"), ("len", "I"), ("arg", "I"), ("arg2", "I"), ("pid", "I"),
    ("protocol", "H"), ("kind", "B"), ("data_kind", "B"), ("cpu", "H"), ("data_len", "B"),
    ("pad0", "B"), ("ifname", "16s"), ("comm", "16s"), ("data", f"{DATA_MAX}s"),
]
EVENT = struct.Struct("=" + "".join(code for _, code in EVENT_FIELDS))
EVENT_SIZE = EVENT.size  # 192

FIB_FIELDS = [("saddr", "4s"), ("daddr", "4s"), ("iif", "i"), ("oif", "i"), ("proto", "B"), ("pad", "3s")]
FIB = struct.Struct("=" + "".join(code for _, code in FIB_FIELDS))
NEIGH_FIELDS = [("key", "4s"), ("lladdr", "6s"), ("pad", "2s")]
NEIGH = struct.Struct("=" + "".join(code for _, code in NEIGH_FIELDS))
SCOPE_MAX = 16  # VTR_SCOPE_MAX
CONFIG_FIELDS = [("scope", f"{SCOPE_MAX}I"), ("ifindex", "I"), ("ifindex_netns", "I"), ("host", "4s"),
                 ("n_scope", "B"), ("skip_ipv6", "B"), ("pad", "2s")]
CONFIG = struct.Struct("=" + "".join(code for _, code in CONFIG_FIELDS))

# keys of the exact-count maps `ends` and `paths` (struct vtr_end_key, vtr_path_key)
END_KEY_FIELDS = [("location", "Q"), ("reason", "I"), ("netns", "I"), ("ifindex", "I"), ("kind", "B"),
                  ("pad", "3s")]
END_KEY = struct.Struct("=" + "".join(code for _, code in END_KEY_FIELDS))
PATH_KEY_FIELDS = [("path", "Q"), ("location", "Q"), ("reason", "I"), ("kind", "B"), ("pad", "3s")]
PATH_KEY = struct.Struct("=" + "".join(code for _, code in PATH_KEY_FIELDS))
LOST_RING, LOST_UNCOUNTED = 0, 1  # enum vtr_lost_index

DATA_NONE, DATA_L2, DATA_L3, DATA_FIB, DATA_NEIGH = 0, 1, 2, 3, 4
KIND_KFREE, KIND_FUNC = 4, 11


def offsets(fields) -> dict[str, int]:
    """Field offsets implied by a field table (for the layout test)."""
    out, off = {}, 0
    for name, code in fields:
        out[name] = off
        off += struct.calcsize("=" + code)
    return out


class RecordError(ValueError):
    pass


def _cstr(b: bytes) -> str:
    """A kernel name (comm, ifname) as text safe to display: any process can name itself."""
    return untrusted.term(b.split(b"\0", 1)[0].decode(errors="replace"))


class Decoder:
    """Turns raw ring-buffer records into Events, naming what the kernel gives as numbers:
    drop reasons (from the running kernel's BTF), code locations (kallsyms)."""

    def __init__(self, drop_reasons: dict[int, str], symbols):
        self.drop_reasons = drop_reasons
        self.symbols = symbols
        self._names: dict[bytes, str] = {}
        self._wheres: dict[tuple, tuple[str, str, str]] = {}
        self._copies: dict[tuple, tuple] = {}

    def decode(self, raw: bytes) -> Event:
        return self.decode_batch([raw])[0]

    def decode_batch(self, raws) -> list[Event]:
        """Decode records; the hot path of every live command, so one C-level unpack for the
        batch and the Event's slots filled directly (names repeat, so they are cached)."""
        if not raws:
            return []
        sizes = set(map(len, raws))
        if sizes != {EVENT_SIZE}:
            bad = next(n for n in sizes if n != EVENT_SIZE)
            raise RecordError(f"record of {bad} bytes, expected {EVENT_SIZE}: "
                              "probes and tracer are from different builds")
        out = []
        append = out.append
        new = Event.__new__
        names = self._names
        name_of = self._name
        wheres = self._wheres
        copies = self._copies
        for (ts, skb, head, location, netns, ifindex, length, arg, arg2, pid, protocol, kind,
             data_kind, cpu, data_len, _, ifname, comm, data) in EVENT.iter_unpack(b"".join(raws)):
            e = new(Event)
            e.ts = ts
            e.cpu = cpu
            e.netns = netns
            e.ifindex = ifindex
            e.dev = names.get(ifname) or name_of(ifname)
            e.comm = names.get(comm) or name_of(comm)
            e.skb = skb
            e.head = head
            e.len = length
            e.protocol = protocol
            e.pid = pid
            e.arg = arg
            e.arg2 = arg2
            # what names a kind, a location and a drop reason: cached per (kind, location, arg)
            kind_where = wheres.get((kind, location, arg)) or self._where(kind, location, arg)
            e.kind, e.where, e.reason = kind_where
            if data_kind == DATA_L2 or data_kind == DATA_L3:
                # the same copy arrives again and again (one per hop): slice and parse it once
                copy = copies.get((data, data_len, data_kind, protocol)) or self._copy(data, data_len, data_kind,
                                                                                         protocol)
                e.data, e.l2, e.pkt = copy
                e.fib = e.neigh = None
            else:
                e.data = b""
                e.l2 = False
                e.pkt = e.fib = e.neigh = None
                if data_kind == DATA_FIB:
                    saddr, daddr, iif, oif, proto, _ = FIB.unpack_from(data)
                    e.fib = {"src": socket.inet_ntoa(saddr), "dst": socket.inet_ntoa(daddr),
                             "iif": iif, "oif": oif, "proto": proto}
                elif data_kind == DATA_NEIGH:
                    key, lladdr, _ = NEIGH.unpack_from(data)
                    e.neigh = {"addr": socket.inet_ntoa(key), "lladdr": lladdr.hex(":")}
            append(e)
        return out

    def names(self, kind: int, location: int, arg: int) -> tuple[str, str, str]:
        """(kind name, where, drop reason) as a record with these numbers is decoded."""
        return self._wheres.get((kind, location, arg)) or self._where(kind, location, arg)

    def _where(self, kind: int, location: int, arg: int) -> tuple[str, str, str]:
        """(kind name, where, drop reason) of a record."""
        name = KINDS.get(kind)
        if name is None:
            raise RecordError(f"unknown event kind {kind}")
        if kind == KIND_FUNC:
            where = FUNCS.get(arg, f"fn{arg}")
        else:
            where = self.symbols.resolve(location) if location else ""
        reason = self.drop_reasons.get(arg, str(arg)).removeprefix("SKB_DROP_REASON_") if kind == KIND_KFREE else ""
        if len(self._wheres) > 8192:
            self._wheres.clear()
        entry = self._wheres[(kind, location, arg)] = (name, where, reason)
        return entry

    def _copy(self, data: bytes, data_len: int, data_kind: int, protocol: int) -> tuple:
        """(bytes, l2, Packet) of a packet copy."""
        payload = data[:data_len]
        l2 = data_kind == DATA_L2
        if len(self._copies) > 8192:
            self._copies.clear()
        entry = self._copies[(data, data_len, data_kind, protocol)] = (payload, l2, pk.cached(payload, protocol, l2))
        return entry

    def _name(self, raw: bytes) -> str:
        name = self._names.get(raw)
        if name is None:
            if len(self._names) > 4096:
                self._names.clear()
            name = self._names[raw] = _cstr(raw)
        return name

