"""pcapng export: one interface block per (namespace, device, link type), named
`NAMESPACE/DEVICE` (the namespace as the trace names it), one packet record per hop where
the packet was seen, each with a comment naming the hop, the packet's journey and its verdict.

The packet bytes are the ones the probes copied (up to 96 bytes per event), so records are
truncated captures (captured length < original length), which Wireshark shows as such.
Nothing is made up:
- frees (kfree, consume) are not records: a capture lists packets seen on their way, and a
  free's copy is the buffer's last state, not a frame; the verdict in every comment of
  that journey names where it ended;
- copies that start at the network header (a delivery to a socket, an ICMP error being
  built) go to a LINKTYPE_RAW interface of that device, not behind an invented Ethernet header;
- the direction (epb_flags) is set where the hop says it: a transmit is outbound on its
  device, netif_rx and receive are inbound; other hops leave it unknown.
"""
from __future__ import annotations

import struct

from . import safefile
from .correlate import Correlator
from .verdict import verdict

LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101  # RAW: the bytes start at an IPv4 or IPv6 header
SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
OPT_END, OPT_COMMENT, IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 0, 1, 2, 3, 9
EPB_FLAGS = 2
INBOUND, OUTBOUND = 0b01, 0b10  # epb_flags bits 0-1
HOP_KINDS = ("xmit", "netif_rx", "receive", "deliver", "func", "icmp_send")  # not the frees: see above
DIRECTION = {"xmit": OUTBOUND, "netif_rx": INBOUND, "receive": INBOUND}


def _opt(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def _shb() -> bytes:
    body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _opt(4, b"vethtrace") + _opt(OPT_END, b"")
    return _block(SHB, body)


def _idb(name: str, description: str, linktype: int = LINKTYPE_ETHERNET) -> bytes:
    body = struct.pack("<HHI", linktype, 0, 0)
    body += _opt(IF_NAME, name.encode()) + _opt(IF_DESCRIPTION, description.encode())
    body += _opt(IF_TSRESOL, bytes([9])) + _opt(OPT_END, b"")  # nanoseconds
    return _block(IDB, body)


def _epb(iface: int, ts_ns: int, data: bytes, orig_len: int, comment: str, flags: int = 0) -> bytes:
    orig_len = min(max(orig_len, len(data)), 0xFFFFFFFF)  # the field is 32 bits wide
    body = struct.pack("<IIIII", iface, ts_ns >> 32, ts_ns & 0xFFFFFFFF, len(data), orig_len)
    body += data + b"\0" * ((-len(data)) % 4)
    body += _opt(OPT_COMMENT, comment.encode())
    if flags:
        body += _opt(EPB_FLAGS, struct.pack("<I", flags))
    body += _opt(OPT_END, b"")
    return _block(EPB, body)


def frame(ev) -> tuple[bytes, int, int]:
    """(bytes, original length, link type) of the packet as the probe copied it."""
    if ev.l2:
        return ev.data, ev.len + (14 if ev.kind in ("netif_rx", "receive") else 0), LINKTYPE_ETHERNET
    return ev.data, ev.len, LINKTYPE_RAW


def export(path: str, corr: Correlator, wall_offset_ns: int = 0) -> int:
    """Write every packet event of every journey to `path` ('-': standard output);
    returns the number of records."""
    ifaces: dict[tuple[int, str, int], int] = {}
    blocks = [_shb()]
    records = []
    for j in corr.journeys:
        v = verdict(j, corr)
        for ev in j.events:
            if ev.kind not in HOP_KINDS or not ev.data:
                continue
            dev = ev.dev or "(socket)"
            data, orig, linktype = frame(ev)
            key = (ev.netns, dev, linktype)
            if key not in ifaces:
                ifaces[key] = len(ifaces)
                where = corr.namespaces.name(ev.netns) if ev.netns else "?"
                layer = "" if linktype == LINKTYPE_ETHERNET else ", copies from the IP header on"
                blocks.append(_idb(f"{where}/{dev}", f"{dev} in network namespace {where} (inode {ev.netns}){layer}",
                                   linktype))
            where = f" at {ev.where}" if ev.where else ""
            reason = f" reason {ev.reason}" if ev.reason else ""
            comment = (f"vethtrace: {ev.kind} {dev}{where}{reason} | packet {j.id} ({j.role}): {j.summary} "
                       f"| path: {j.path or '-'} | verdict: {v.text}")
            records.append((ev.ts, _epb(ifaces[key], ev.ts + wall_offset_ns, data, orig, comment,
                                        DIRECTION.get(ev.kind, 0))))
    records.sort(key=lambda r: r[0])
    safefile.write_bytes(path, b"".join(blocks) + b"".join(r for _, r in records), stdout_ok=True)
    return len(records)
