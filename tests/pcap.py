"""Reading the classic pcap files tcpdump writes (enough for the tests' comparisons)."""
from __future__ import annotations

import struct

from vethtrace.tracer.packet import parse


def read(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    assert linktype == 1, f"expected Ethernet captures, got link type {linktype}"
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(endian + "IIII", data, off)
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def summaries(path: str) -> list[str]:
    """Each captured frame as tracer.packet summarises it (IPv6 left out)."""
    out = []
    for frame in read(path):
        p = parse(frame, 0, True)
        if p is not None and p.l3 != "IPv6":
            out.append(p.summary())
    return out
