"""The raw record layout (mirror of struct vtr_event in probes/vethtrace.h) and its
decoding into `Event`s.  Only this module knows the byte layout; a test compiles the C
header and compares sizes and offsets with the tables here.
"""
from __future__ import annotations

import socket
import struct

from .events import FUNCS, KINDS, Event, parse_cached

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
CONFIG_FIELDS = [("netns", "I"), ("ifindex", "I"), ("host", "4s"), ("skip_ipv6", "B"), ("pad", "3s")]
CONFIG = struct.Struct("=" + "".join(code for _, code in CONFIG_FIELDS))

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
    return b.split(b"\0", 1)[0].decode(errors="replace")


class Decoder:
    """Turns raw ring-buffer records into Events, naming what the kernel gives as numbers:
    drop reasons (from the running kernel's BTF), code locations (kallsyms)."""

    def __init__(self, drop_reasons: dict[int, str], symbols):
        self.drop_reasons = drop_reasons
        self.symbols = symbols
        self._names: dict[bytes, str] = {}

    def decode(self, raw: bytes) -> Event:
        if len(raw) != EVENT_SIZE:
            raise RecordError(f"record of {len(raw)} bytes, expected {EVENT_SIZE}: "
                              "probes and tracer are from different builds")
        (ts, skb, head, location, netns, ifindex, length, arg, arg2, pid, protocol, kind,
         data_kind, cpu, data_len, _, ifname, comm, data) = EVENT.unpack(raw)
        name = KINDS.get(kind)
        if name is None:
            raise RecordError(f"unknown event kind {kind}")
        # Hot path: fill the Event's slots directly; names repeat, so they are cached.
        e = Event.__new__(Event)
        e.ts, e.kind, e.cpu, e.netns, e.ifindex = ts, name, cpu, netns, ifindex
        e.dev, e.comm = self._name(ifname), self._name(comm)
        e.skb, e.head, e.len, e.protocol, e.pid, e.arg, e.arg2 = skb, head, length, protocol, pid, arg, arg2
        e.fib = e.neigh = e.pkt = None
        e.data, e.l2, e.reason = b"", False, ""
        if data_kind == DATA_L2 or data_kind == DATA_L3:
            e.data = data[:data_len]
            e.l2 = data_kind == DATA_L2
            e.pkt = parse_cached(e.data, protocol, e.l2)
        elif data_kind == DATA_FIB:
            saddr, daddr, iif, oif, proto, _ = FIB.unpack_from(data)
            e.fib = {"src": socket.inet_ntoa(saddr), "dst": socket.inet_ntoa(daddr),
                     "iif": iif, "oif": oif, "proto": proto}
        elif data_kind == DATA_NEIGH:
            key, lladdr, _ = NEIGH.unpack_from(data)
            e.neigh = {"addr": socket.inet_ntoa(key), "lladdr": lladdr.hex(":")}
        if kind == KIND_FUNC:
            e.where = FUNCS.get(arg, f"fn{arg}")
        else:
            e.where = self.symbols.resolve(location) if location else ""
        if kind == KIND_KFREE:
            e.reason = self.drop_reasons.get(arg, str(arg)).removeprefix("SKB_DROP_REASON_")
        return e

    def _name(self, raw: bytes) -> str:
        name = self._names.get(raw)
        if name is None:
            if len(self._names) > 4096:
                self._names.clear()
            name = self._names[raw] = _cstr(raw)
        return name

    def decode_batch(self, raws) -> list[Event]:
        return [self.decode(r) for r in raws]
