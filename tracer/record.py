"""The raw record layout (mirror of struct vtr_event in probes/vethtrace.h) and its
decoding into `Event`s.  Only this module knows the byte layout; a test compiles the C
header and compares sizes and offsets with the tables here.
"""
from __future__ import annotations

import socket
import struct

from .events import KINDS, FUNCS, Event

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

    def decode(self, raw: bytes) -> Event:
        if len(raw) != EVENT_SIZE:
            raise RecordError(f"record of {len(raw)} bytes, expected {EVENT_SIZE}: "
                              "probes and tracer are from different builds")
        (ts, skb, head, location, netns, ifindex, length, arg, arg2, pid, protocol, kind,
         data_kind, cpu, data_len, _, ifname, comm, data) = EVENT.unpack(raw)
        name = KINDS.get(kind)
        if name is None:
            raise RecordError(f"unknown event kind {kind}")
        fib = neigh = None
        where = reason = ""
        payload = b""
        l2 = False
        if data_kind == DATA_FIB:
            saddr, daddr, iif, oif, proto, _ = FIB.unpack_from(data)
            fib = {"src": socket.inet_ntoa(saddr), "dst": socket.inet_ntoa(daddr),
                   "iif": iif, "oif": oif, "proto": proto}
        elif data_kind == DATA_NEIGH:
            key, lladdr, _ = NEIGH.unpack_from(data)
            neigh = {"addr": socket.inet_ntoa(key), "lladdr": lladdr.hex(":")}
        elif data_kind in (DATA_L2, DATA_L3):
            payload = data[:data_len]
            l2 = data_kind == DATA_L2
        if kind == KIND_FUNC:
            where = FUNCS.get(arg, f"fn{arg}")
        elif location:
            where = self.symbols.resolve(location)
        if kind == KIND_KFREE:
            reason = self.drop_reasons.get(arg, str(arg)).removeprefix("SKB_DROP_REASON_")
        return Event(ts, name, cpu=cpu, netns=netns, ifindex=ifindex, dev=_cstr(ifname), skb=skb,
                     head=head, len=length, protocol=protocol, pid=pid, comm=_cstr(comm),
                     where=where, reason=reason, arg=arg, arg2=arg2, data=payload, l2=l2,
                     fib=fib, neigh=neigh)

    def decode_batch(self, raws) -> list[Event]:
        return [self.decode(r) for r in raws]
