"""The kernel/user contract, checked against the compiled probes before they are used.

probes/vethtrace.h is the one definition of the event record and its constants.  The
compiled object carries that header's types in its BTF (the `vtr_abi` anchor), so at
load we read the enums (kinds, functions, data kinds, the record version) and the struct
layouts from the object itself and compare them with the Python mirror in
tracer/record.py and tracer/events.py.  A renumbered enum or a moved field is reported
as one line before a single record is misread.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

from . import libbpf
from .events import FUNCS, KINDS, PF_ANSWER, PF_CLONED, PF_KNOWN, PF_LAST, PF_NEW
from .record import (CONFIG_FIELDS, DATA_FIB, DATA_L2, DATA_L3, DATA_NEIGH, DATA_NONE, END_KEY_FIELDS, EVENT_FIELDS,
                     FIB_FIELDS, LOST_RING, LOST_UNCOUNTED, NEIGH_FIELDS, PATH_KEY_FIELDS, RECORD_VERSION, offsets)

BTF_KIND_STRUCT = 4


class ABIMismatch(RuntimeError):
    """The probe object and this tracer disagree on the record; the message is one line."""


def expected_enums() -> dict[str, dict[str, int]]:
    """What the Python side believes each enum of vethtrace.h holds, C names -> values."""
    return {
        "vtr_kind": {f"VTR_EV_{name.upper()}": value for value, name in KINDS.items()},
        "vtr_func": {f"VTR_FN_{name.upper()}": value for value, name in FUNCS.items()},
        "vtr_data_kind": {"VTR_DATA_NONE": DATA_NONE, "VTR_DATA_L2": DATA_L2, "VTR_DATA_L3": DATA_L3,
                          "VTR_DATA_FIB": DATA_FIB, "VTR_DATA_NEIGH": DATA_NEIGH},
        "vtr_pkt_flags": {"VTR_PF_KNOWN": PF_KNOWN, "VTR_PF_NEW": PF_NEW, "VTR_PF_CLONED": PF_CLONED,
                          "VTR_PF_ANSWER": PF_ANSWER, "VTR_PF_LAST": PF_LAST},
        "vtr_abi_version": {"VTR_RECORD_VERSION": RECORD_VERSION},
        "vtr_lost_index": {"VTR_LOST_RING": LOST_RING, "VTR_LOST_UNCOUNTED": LOST_UNCOUNTED},
    }


def expected_structs() -> dict[str, tuple[int, dict[str, int]]]:
    """struct name -> (size, field offsets), padding fields left out."""
    out = {}
    for name, fields in (("vtr_event", EVENT_FIELDS), ("vtr_fib", FIB_FIELDS), ("vtr_neigh", NEIGH_FIELDS),
                         ("vtr_config", CONFIG_FIELDS), ("vtr_end_key", END_KEY_FIELDS),
                         ("vtr_path_key", PATH_KEY_FIELDS)):
        offs = offsets(fields)
        size = offs[fields[-1][0]] + _size(fields[-1][1])
        out[name] = (size, {f: o for f, o in offs.items() if not f.startswith("pad")})
    return out


def _size(code: str) -> int:
    import struct
    return struct.calcsize("=" + code)


class _Member(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32), ("offset", ctypes.c_uint32)]


def read(obj_path: Path) -> tuple[dict[str, dict[str, int]], dict[str, tuple[int, dict[str, int]]]]:
    """(enums, structs) of vethtrace.h as compiled into the object, from its BTF."""
    enums: dict[str, dict[str, int]] = {}
    structs: dict[str, tuple[int, dict[str, int]]] = {}
    with libbpf.BTF(str(obj_path)) as btf:
        for name in expected_enums():
            enums[name] = {sym: value for value, sym in btf.enum_values(name).items()}
        for name in expected_structs():
            tid = btf.find(name, BTF_KIND_STRUCT)
            if not tid:
                continue
            t = btf.type(tid)
            first = ctypes.addressof(t) + ctypes.sizeof(libbpf.BTFType)
            members = {}
            for i in range(t.vlen):
                m = _Member.from_address(first + i * ctypes.sizeof(_Member))
                members[btf.name(m.name_off)] = (m.offset & 0xFFFFFF) // 8  # bit offset (kind_flag: low 24 bits)
            structs[name] = (t.size_or_type, {f: o for f, o in members.items() if not f.startswith("pad")})
    return enums, structs


def differences(obj_path: Path) -> list[str]:
    """Every disagreement between the object and the Python mirror, as short phrases."""
    enums, structs = read(obj_path)
    out = []
    for name, want in expected_enums().items():
        have = enums.get(name)
        if not have:
            out.append(f"enum {name} is missing from the object's BTF")
            continue
        for sym in sorted(set(want) | set(have)):
            if want.get(sym) != have.get(sym):
                out.append(f"{sym} is {have.get(sym, 'absent')} in the probes, {want.get(sym, 'absent')} in the tracer")
    for name, (size, fields) in expected_structs().items():
        if name not in structs:
            out.append(f"struct {name} is missing from the object's BTF")
            continue
        have_size, have_fields = structs[name]
        if have_size != size:
            out.append(f"struct {name} is {have_size} bytes in the probes, {size} in the tracer")
        for f in sorted(set(fields) | set(have_fields)):
            if fields.get(f) != have_fields.get(f):
                out.append(f"{name}.{f} is at {have_fields.get(f, 'absent')} in the probes, "
                           f"{fields.get(f, 'absent')} in the tracer")
    return out


_checked: set[tuple[str, float]] = set()


def check(obj_path: Path) -> None:
    """Raise ABIMismatch (one line) unless the object and the tracer agree (once per file)."""
    st = obj_path.stat()
    key = (str(obj_path), st.st_mtime)
    if key in _checked:
        return
    diff = differences(obj_path)
    if diff:
        shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
        raise ABIMismatch(f"the probes ({obj_path}) and this tracer disagree on the event record: {shown}; "
                          "they are from different builds (rebuild and reinstall vethtrace)")
    _checked.add(key)
