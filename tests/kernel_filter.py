"""A witness for tracer/cbpf.py: the translated filter loaded into the running kernel and
run there (BPF_PROG_TEST_RUN) on given bytes, so its verdicts can be compared with
libpcap's own.

The harness program is raw eBPF written here, with the same placeholder the probes carry
(the bytes in r1, how many in r2, the scratch area in r3, the marker), and is spliced by the
same `cbpf.splice` the loader uses.  The bytes come from an array map, whose value is laid
out as the probes' copy would be: [caplen, wirelen, ethertype, 0] then the bytes.
"""
from __future__ import annotations

import ctypes
import os
import struct

from vethtrace.tracer import cbpf
from vethtrace.tracer.cbpf import ALU64, ADD, DW, IMM, JEQ, JMP, K, LD, LDX, MEM, MOV, STX, W, X, Ins

SYS_BPF = 321  # x86-64
BPF_MAP_CREATE, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD, BPF_PROG_TEST_RUN = 0, 2, 5, 10
BPF_MAP_TYPE_ARRAY = 2
BPF_PROG_TYPE_SOCKET_FILTER = 1
HEAD = 16
REGION = 96  # as the probes: VTR_DATA_MAX

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, 128)
    rc = _libc.syscall(SYS_BPF, cmd, buf, 128)
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc, buf


def _marker(kind: int, region: int) -> list[Ins]:
    lo = (kind << 16) | region
    return [Ins(LD | DW | IMM, 0, 0, 0, cbpf._s32(lo)), Ins(0, 0, 0, 0, cbpf._s32(cbpf.MARKER_MAGIC))]


class KernelFilter:
    """One translated program, loaded; `run(data, wirelen, ethertype)` is its verdict."""

    def __init__(self, insns, virtual_eth: bool = False, region: int = REGION):
        self.region = region
        self.map_fd, _ = _bpf(BPF_MAP_CREATE, struct.pack("<IIIII", BPF_MAP_TYPE_ARRAY, 4, HEAD + region, 1, 0))
        prog = [
            Ins(cbpf.ST | MEM | W, 10, 0, -4, 0),                      # key 0 on the stack
            Ins(ALU64 | MOV | X, 2, 10), Ins(ALU64 | ADD | K, 2, 0, 0, -4),
            Ins(LD | DW | IMM, 1, 1, 0, self.map_fd), Ins(0),             # r1 = the map
            Ins(JMP | 0x80, 0, 0, 0, 1),                                # bpf_map_lookup_elem
            Ins(JMP | JEQ | K, 0, 0, 0, 0, "out"),
            Ins(ALU64 | MOV | X, 7, 0),
        ]
        for off in range(-80, 0, 8):                                      # scratch area zeroed
            prog.append(Ins(cbpf.ST | MEM | DW, 10, 0, off, 0))
        prog += [
            Ins(LDX | MEM | W, 1, 7, 4), Ins(STX | MEM | W, 10, 1, -80 + 4 * cbpf.MEM_LEN),
            Ins(LDX | MEM | W, 1, 7, 8), Ins(STX | MEM | W, 10, 1, -80 + 4 * cbpf.MEM_ETHERTYPE),
            Ins(LDX | MEM | W, 2, 7, 0),
            Ins(ALU64 | MOV | X, 1, 7), Ins(ALU64 | ADD | K, 1, 0, 0, HEAD),
            Ins(ALU64 | MOV | X, 3, 10), Ins(ALU64 | ADD | K, 3, 0, 0, -80),
            *_marker(cbpf.KIND_L2, region),
            Ins(JMP | 0x90),                                             # exit: r0 is the verdict
            ("label", "out"),
            Ins(cbpf.ALU | MOV | K, 0, 0, 0, 0), Ins(JMP | 0x90),
        ]
        raw = cbpf.encode(cbpf.assemble(prog, 0))
        spliced = cbpf.splice(raw, {cbpf.KIND_L2: (insns, virtual_eth)})
        assert spliced is not None
        code = ctypes.create_string_buffer(spliced, len(spliced))
        lic = ctypes.create_string_buffer(b"GPL")
        self.log = ctypes.create_string_buffer(1 << 20)
        attr = struct.pack("<IIQQIIQ", BPF_PROG_TYPE_SOCKET_FILTER, len(spliced) // 8, ctypes.addressof(code),
                           ctypes.addressof(lic), 1, len(self.log), ctypes.addressof(self.log))
        try:
            self.prog_fd, _ = _bpf(BPF_PROG_LOAD, attr)
        except OSError as exc:
            os.close(self.map_fd)
            raise OSError(exc.errno, f"verifier: {self.log.value.decode(errors='replace')[-2000:]}") from None

    def run(self, data: bytes, wirelen: int | None = None, ethertype: int = 0) -> int:
        data = data[:self.region]
        value = struct.pack("<IIII", len(data), wirelen if wirelen is not None else len(data), ethertype, 0)
        value = ctypes.create_string_buffer(value + data.ljust(self.region, b"\0"), HEAD + self.region)
        key = ctypes.c_uint32(0)
        _bpf(BPF_MAP_UPDATE_ELEM, struct.pack("<IIQQQ", self.map_fd, 0, ctypes.addressof(key),
                                              ctypes.addressof(value), 0))
        pkt = ctypes.create_string_buffer(b"\0" * 64, 64)  # the socket filter's own skb: unused
        attr = bytearray(struct.pack("<IIIIQQII", self.prog_fd, 0, 64, 0, ctypes.addressof(pkt), 0, 1, 0))
        _, out = _bpf(BPF_PROG_TEST_RUN, bytes(attr))
        return struct.unpack_from("<I", out.raw, 4)[0]

    def close(self) -> None:
        os.close(self.prog_fd)
        os.close(self.map_fd)
