"""A small ctypes binding to the system libbpf (1.1 or newer): just what vethtrace uses.

Opening, configuring, loading and attaching an object; map look-ups; the ring buffer;
BTF look-ups.  libbpf 1.x returns NULL + errno for pointers and -errno for ints; the
wrappers here turn both into OSError.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

_lib = None

# libbpf's print levels
LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2

RingCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
# The print callback's va_list is passed through to vsnprintf in libc.
PrintCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class BTFType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32), ("size_or_type", ctypes.c_uint32)]

    @property
    def kind(self) -> int:
        return (self.info >> 24) & 0x1F

    @property
    def vlen(self) -> int:
        return self.info & 0xFFFF


class BTFEnum(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("val", ctypes.c_int32)]


class BTFParam(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32)]


BTF_KIND_PTR, BTF_KIND_ENUM, BTF_KIND_TYPEDEF, BTF_KIND_FUNC_PROTO, BTF_KIND_ENUM64 = 2, 6, 8, 13, 19

_P = ctypes.c_void_p
_SIGNATURES = {
    "libbpf_set_print": (_P, [PrintCallback]),
    "bpf_object__open_file": (_P, [ctypes.c_char_p, _P]),
    "bpf_object__load": (ctypes.c_int, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__next_program": (_P, [_P, _P]),
    "bpf_object__next_map": (_P, [_P, _P]),
    "bpf_object__find_map_fd_by_name": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "bpf_program__name": (ctypes.c_char_p, [_P]),
    "bpf_program__section_name": (ctypes.c_char_p, [_P]),
    "bpf_program__set_autoload": (ctypes.c_int, [_P, ctypes.c_bool]),
    "bpf_program__autoload": (ctypes.c_bool, [_P]),
    "bpf_program__attach": (_P, [_P]),
    "bpf_program__insns": (_P, [_P]),
    "bpf_program__insn_cnt": (ctypes.c_size_t, [_P]),
    "bpf_program__set_insns": (ctypes.c_int, [_P, ctypes.c_void_p, ctypes.c_size_t]),
    "bpf_link__destroy": (ctypes.c_int, [_P]),
    "bpf_map__name": (ctypes.c_char_p, [_P]),
    "bpf_map__set_initial_value": (ctypes.c_int, [_P, ctypes.c_void_p, ctypes.c_size_t]),
    "bpf_map__set_max_entries": (ctypes.c_int, [_P, ctypes.c_uint32]),
    "bpf_object__find_map_by_name": (_P, [_P, ctypes.c_char_p]),
    "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, _P, _P]),
    "bpf_map_get_next_key": (ctypes.c_int, [ctypes.c_int, _P, _P]),
    "libbpf_num_possible_cpus": (ctypes.c_int, []),
    "ring_buffer__new": (_P, [ctypes.c_int, RingCallback, _P, _P]),
    "ring_buffer__poll": (ctypes.c_int, [_P, ctypes.c_int]),
    "ring_buffer__consume": (ctypes.c_int, [_P]),
    "ring_buffer__epoll_fd": (ctypes.c_int, [_P]),
    "ring_buffer__free": (None, [_P]),
    "btf__parse": (_P, [ctypes.c_char_p, _P]),
    "btf__free": (None, [_P]),
    "btf__find_by_name_kind": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_uint32]),
    "btf__type_by_id": (ctypes.POINTER(BTFType), [_P, ctypes.c_uint32]),
    "btf__name_by_offset": (ctypes.c_char_p, [_P, ctypes.c_uint32]),
    "btf__type_cnt": (ctypes.c_uint32, [_P]),
}


class LibbpfMissing(RuntimeError):
    pass


def lib() -> ctypes.CDLL:
    """The loaded libbpf with every signature declared (pointers must not truncate to int)."""
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("bpf") or "libbpf.so.1"
        try:
            handle = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise LibbpfMissing(f"libbpf is not installed ({exc}); install libbpf1") from exc
        for fn, (restype, argtypes) in _SIGNATURES.items():
            try:
                f = getattr(handle, fn)
            except AttributeError as exc:
                raise LibbpfMissing(f"libbpf lacks {fn}; vethtrace needs libbpf 1.1 or newer") from exc
            f.restype, f.argtypes = restype, argtypes
        _lib = handle
    return _lib


def check_ptr(ptr, what: str):
    if not ptr:
        err = ctypes.get_errno() or errno.EINVAL
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ptr


def check_int(rc: int, what: str) -> int:
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}")
    return rc


# --- libbpf's own messages ------------------------------------------------------------
_libc = ctypes.CDLL(None)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_print_messages: list[str] = []


def _on_print(level, fmt, va_list):
    try:
        buf = ctypes.create_string_buffer(1024)
        _libc.vsnprintf(buf, len(buf), fmt, va_list)
        if level <= LIBBPF_INFO:
            _print_messages.append(buf.value.decode(errors="replace").rstrip())
            del _print_messages[:-200]
    except Exception:  # never let an exception cross into C
        pass
    return 0


_print_cb = PrintCallback(_on_print)  # kept alive for the process lifetime


def capture_messages() -> None:
    """Route libbpf's messages into a buffer instead of stderr (read with messages())."""
    lib().libbpf_set_print(_print_cb)


def messages(clear: bool = True) -> list[str]:
    out = list(_print_messages)
    if clear:
        _print_messages.clear()
    return out


# --- BTF -------------------------------------------------------------------------------
class BTF:
    """Read-only access to a BTF file (normally the running kernel's vmlinux BTF)."""

    def __init__(self, path: str):
        self._lib = lib()
        self.ptr = check_ptr(self._lib.btf__parse(path.encode(), None), f"reading BTF {path}")

    def close(self) -> None:
        if self.ptr:
            self._lib.btf__free(self.ptr)
            self.ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def find(self, name: str, kind: int) -> int:
        rc = self._lib.btf__find_by_name_kind(self.ptr, name.encode(), kind)
        return rc if rc > 0 else 0

    def type(self, type_id: int) -> BTFType:
        return self._lib.btf__type_by_id(self.ptr, type_id).contents

    def name(self, off: int) -> str:
        s = self._lib.btf__name_by_offset(self.ptr, off)
        return s.decode() if s else ""

    def tracepoint_arity(self, tracepoint: str) -> int | None:
        """Arguments a tp_btf program gets for this tracepoint (without the context), or
        None when the running kernel does not have it."""
        tid = self.find(f"btf_trace_{tracepoint}", BTF_KIND_TYPEDEF)
        if not tid:
            return None
        t = self.type(tid)
        ptr = self.type(t.size_or_type)  # typedef -> pointer
        if ptr.kind != BTF_KIND_PTR:
            return None
        proto = self.type(ptr.size_or_type)
        if proto.kind != BTF_KIND_FUNC_PROTO:
            return None
        return max(proto.vlen - 1, 0)  # the first parameter is the tracepoint's context

    def enum_values(self, name: str) -> dict[int, str]:
        tid = self.find(name, BTF_KIND_ENUM)
        if not tid:
            return {}
        t = self.type(tid)
        first = ctypes.addressof(t) + ctypes.sizeof(BTFType)
        out = {}
        for i in range(t.vlen):
            e = BTFEnum.from_address(first + i * ctypes.sizeof(BTFEnum))
            out[e.val] = self.name(e.name_off)
        return out
