"""Loading, configuring and attaching the probes, and reading their ring buffer.

`Probes` is a context manager: leaving it (normally, on Ctrl-C, or on an exception)
destroys every link and closes the object, so nothing stays attached.  All links are
file-descriptor based, so even a killed process leaves nothing behind.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import abi, cbpf, libbpf, ring, safefile
from .libbpf import check_int, check_ptr
from .record import CONFIG, END_KEY, EVENT_SIZE, LOST_RING, LOST_UNCOUNTED, PATH_KEY, SCOPE_MAX

OBJECT_NAME = "vethtrace.bpf.o"
# Programs to use where the kernel permits fentry (BPF trampolines).
FENTRY_PROGRAMS = ("fe_veth_xmit", "fe_loopback_xmit", "fe_arp_rcv", "fe_icmp_rcv")
# Arity variants: (program, tracepoint, arguments it needs) -> fallback with fewer.
VARIANTS = {"tp_kfree_skb": ("tp_kfree_skb_noreason", 3), "tp_consume_skb": ("tp_consume_skb_noloc", 2)}


POLL_BATCH = 4096  # records per poll; libbpf 1.1's ring_buffer__poll otherwise loops while producers write
EAGAIN = 11


# Whether this kernel permits fentry programs at all (EPERM here: no BPF trampolines) does
# not change until reboot, and trying costs a whole extra load of the object (about 0.07 s
# of 0.19 s to attach, bench/run.py), so such a refusal is remembered in /run (a tmpfs,
# emptied at boot), keyed by the boot, the kernel and the probe object.  Other load errors
# (a verifier rejection, say) are not remembered: the next run tries again.
FENTRY_MEMO = Path("/run/vethtrace/fentry-refused")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
REFUSALS = {errno.EPERM, errno.EOPNOTSUPP, 524}  # 524: the kernel's ENOTSUPP


def _memo_key(obj_path: Path) -> str:
    try:
        boot = BOOT_ID.read_text().strip()
        digest = hashlib.sha256(obj_path.read_bytes()).hexdigest()[:16]
    except OSError:
        return ""
    return f"{boot} {os.uname().release} {digest}" if boot else ""


def fentry_refused_this_boot(obj_path: Path) -> str | None:
    """The reason this kernel refused these fentry probes earlier since boot, if it did."""
    key = _memo_key(obj_path)
    try:
        remembered, _, reason = FENTRY_MEMO.read_text().partition("\n")
    except (OSError, ValueError):  # missing, unreadable, or not text
        return None
    if not key or remembered != key:
        return None
    return reason.strip() or "refused"


def remember_fentry_refusal(obj_path: Path, exc: OSError) -> None:
    key = _memo_key(obj_path)
    if not key or exc.errno not in REFUSALS:
        return
    try:
        FENTRY_MEMO.parent.mkdir(mode=0o755, exist_ok=True)
        st = os.lstat(FENTRY_MEMO.parent)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return  # not our own private directory: write nothing there
        safefile.write_bytes(str(FENTRY_MEMO), f"{key}\n{exc.strerror or exc}\n".encode())
    except (OSError, safefile.OutputError):
        pass  # only a shortcut: without it the next run tries again


def forget_fentry_refusal() -> None:
    try:
        FENTRY_MEMO.unlink()
    except OSError:
        pass


class ProbeError(RuntimeError):
    """A problem the user can act on; the message is one line."""


def object_path() -> Path:
    """The compiled probes shipped in the package (VETHTRACE_BPF_OBJ overrides, for tests)."""
    env = os.environ.get("VETHTRACE_BPF_OBJ")
    if env:
        return Path(env)
    return Path(str(resources.files("vethtrace.probes").joinpath(OBJECT_NAME)))


def ensure_built() -> Path:
    """The compiled probes.  Never built at run time: an installed vethtrace carries them."""
    obj = object_path()
    if not obj.is_file():
        where = "VETHTRACE_BPF_OBJ" if "VETHTRACE_BPF_OBJ" in os.environ else "this installation"
        raise ProbeError(f"the compiled probes are missing from {where} ({obj}); in a checkout run "
                         "`make setup`, otherwise reinstall vethtrace from a wheel")
    try:
        abi.check(obj)
    except abi.ABIMismatch as exc:
        raise ProbeError(str(exc)) from None
    except OSError as exc:
        raise ProbeError(f"cannot read the compiled probes {obj}: {exc.strerror or exc}") from None
    return obj


@dataclass
class FilterConfig:
    """What the probes trace (struct vtr_config).  scope: the namespace inodes whose packets
    are traced and followed wherever they go, empty = every namespace."""
    scope: tuple[int, ...] = ()
    ifindex: int = 0
    ifindex_netns: int = 0  # the namespace of ifindex
    host: bytes = b"\0\0\0\0"
    skip_ipv6: bool = False
    pcap: object = None  # a pcapfilter.PcapFilter, spliced into the programs (not in .rodata)

    def pack(self) -> bytes:
        if len(self.scope) > SCOPE_MAX:
            raise ProbeError(f"at most {SCOPE_MAX} namespaces can be traced by name; use --all-netns")
        scope = list(self.scope) + [0] * (SCOPE_MAX - len(self.scope))
        return CONFIG.pack(*scope, self.ifindex, self.ifindex_netns, self.host, len(self.scope),
                           int(self.skip_ipv6), b"\0\0")


@dataclass
class LoadReport:
    mechanism: str = ""
    attached: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "program: why"


class Probes:
    """The loaded and attached probe object and its ring buffer."""

    def __init__(self, config: FilterConfig, btf: libbpf.BTF, want_fentry: bool | str = "auto",
                 obj_path: Path | None = None, ring_bytes: int = 16 << 20):
        self.config = config
        self.ring_bytes = ring_bytes
        self.btf = btf
        self.want_fentry = want_fentry
        self.obj_path = obj_path or ensure_built()
        self.lib = libbpf.lib()
        self.obj = None
        self.links: list[int] = []
        self.rb = None
        self.reader: ring.RingReader | None = None  # bulk reads where supported, else libbpf's rb
        self.report = LoadReport()
        self._pending: list[bytes] = []
        self._error: BaseException | None = None
        self._cb = libbpf.RingCallback(self._on_record)  # kept alive as long as rb
        self._lost_fd = -1

    # -- set-up ---------------------------------------------------------------------------
    def __enter__(self) -> "Probes":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        libbpf.capture_messages()
        remembered = fentry_refused_this_boot(self.obj_path) if self.want_fentry == "auto" else None
        if remembered:
            self._load(fentry=False)
            self.report.skipped.insert(0, f"fentry probes: refused by this kernel ({remembered}; remembered "
                                          "from an earlier run since boot, `vethtrace doctor` tries again)")
            self.report.mechanism = "tp_btf"
        elif self.want_fentry:
            try:
                self._load(fentry=True)
                self.report.mechanism = "fentry + tp_btf"
                forget_fentry_refusal()
            except OSError as exc:
                self._close_object()
                self.report = LoadReport(skipped=[f"fentry probes: refused by this kernel ({exc.strerror})"])
                self._load(fentry=False)
                self.report.mechanism = "tp_btf"
                remember_fentry_refusal(self.obj_path, exc)  # only once tp_btf alone loaded
        else:
            self._load(fentry=False)
            self.report.mechanism = "tp_btf"
        self._attach()
        if ring.supported():
            self.reader = ring.RingReader(self._map_fd("events"), self.ring_bytes, EVENT_SIZE)
        else:
            self.rb = check_ptr(self.lib.ring_buffer__new(self._map_fd("events"), self._cb, None, None),
                                "creating the ring buffer")
        self._lost_fd = self._map_fd("lost")

    def _map_fd(self, name: str) -> int:
        return check_int(self.lib.bpf_object__find_map_fd_by_name(self.obj, name.encode()), f"map {name}")

    def _programs(self):
        prog = self.lib.bpf_object__next_program(self.obj, None)
        while prog:
            yield prog, self.lib.bpf_program__name(prog).decode(), self.lib.bpf_program__section_name(prog).decode()
            prog = self.lib.bpf_object__next_program(self.obj, prog)

    def _load(self, fentry: bool) -> None:
        path = str(self.obj_path).encode()
        self.obj = check_ptr(self.lib.bpf_object__open_file(path, None), f"opening {self.obj_path}")
        fallbacks = {fb: (main, need) for main, (fb, need) in VARIANTS.items()}
        for prog, name, section in self._programs():
            kind, _, target = section.lstrip("?").partition("/")
            enable = self.lib.bpf_program__autoload(prog)
            if kind == "fentry":
                enable = fentry and name in FENTRY_PROGRAMS
                if enable and not self.btf.find(target, 12):  # BTF_KIND_FUNC
                    enable = False
                    self.report.skipped.append(f"{name}: {target} not in this kernel")
            elif kind == "tp_btf":
                arity = self.btf.tracepoint_arity(target)
                if arity is None:
                    enable = False
                    if name not in fallbacks:
                        self.report.skipped.append(f"{name}: tracepoint {target} not in this kernel")
                elif name in VARIANTS:
                    enable = arity >= VARIANTS[name][1]
                elif name in fallbacks:
                    enable = arity < fallbacks[name][1]
            check_int(self.lib.bpf_program__set_autoload(prog, enable), f"configuring {name}")
        self._set_config()
        if self.config.pcap is not None:
            self._splice_filter()
        ring = check_ptr(self.lib.bpf_object__find_map_by_name(self.obj, b"events"), "finding the ring buffer")
        check_int(self.lib.bpf_map__set_max_entries(ring, self.ring_bytes), "sizing the ring buffer")
        rc = self.lib.bpf_object__load(self.obj)
        if rc < 0:
            raise OSError(-rc, f"loading probes: {os.strerror(-rc)}")

    def _splice_filter(self) -> None:
        """The pcap-filter expression translated into every program that has its
        placeholder (tracer/cbpf.py), between open and load: libpcap's L2 program where the
        probes copy from the Ethernet header, its L3 program where they copy an IPv4 or IPv6
        packet from the network header, the L2 one behind a virtual header for the other
        network-header copies and for expressions DLT_RAW cannot express (see
        tracer/pcapfilter.py)."""
        flt = self.config.pcap
        programs = {cbpf.KIND_L2: (flt.l2.insns, False),
                    cbpf.KIND_L3: (flt.l3.insns, False) if flt.l3 is not None else (flt.l2.insns, True),
                    cbpf.KIND_L3_OTHER: (flt.l2.insns, True)}
        for prog, name, _ in self._programs():
            if not self.lib.bpf_program__autoload(prog):
                continue
            n = self.lib.bpf_program__insn_cnt(prog)
            raw = ctypes.string_at(self.lib.bpf_program__insns(prog), n * 8)
            try:
                spliced = cbpf.splice(raw, programs)
            except cbpf.TranslateError as exc:
                raise ProbeError(f"filter {flt.expression!r}: {exc}") from None
            if spliced is not None:
                buf = ctypes.create_string_buffer(spliced, len(spliced))
                check_int(self.lib.bpf_program__set_insns(prog, buf, len(spliced) // 8), f"filtering {name}")

    def _set_config(self) -> None:
        blob = self.config.pack()
        m = self.lib.bpf_object__next_map(self.obj, None)
        while m:
            if self.lib.bpf_map__name(m).decode().endswith(".rodata"):
                buf = ctypes.create_string_buffer(blob, len(blob))
                check_int(self.lib.bpf_map__set_initial_value(m, buf, len(blob)), "writing filters")
                return
            m = self.lib.bpf_object__next_map(self.obj, m)
        raise ProbeError("the probe object has no .rodata section: rebuild the probes")

    def _attach(self) -> None:
        for prog, name, _ in self._programs():
            if not self.lib.bpf_program__autoload(prog):
                continue
            link = self.lib.bpf_program__attach(prog)
            if not link:
                err = ctypes.get_errno()
                raise OSError(err, f"attaching {name}: {os.strerror(err)}")
            self.links.append(link)
            self.report.attached.append(name)

    # -- reading --------------------------------------------------------------------------
    def _on_record(self, _ctx, data, size) -> int:
        try:
            self._pending.append(ctypes.string_at(data, size))
            # A negative return stops libbpf after this record (which counts as consumed).
            return -EAGAIN if len(self._pending) >= POLL_BATCH else 0
        except BaseException as exc:  # an exception would be swallowed by ctypes
            self._error = exc
            return -1

    def poll(self, timeout_ms: int = 100) -> list[bytes]:
        """Wait up to timeout_ms for records; return every record that is ready.  The probes
        wake the reader only once the ring is filling up (RING_WAKE_SHARE in the probes), so
        whatever a trickle left in the ring is collected when the wait ends."""
        if self.reader is not None:
            self.reader.wait(timeout_ms)
            return self.reader.read(POLL_BATCH)
        rc = self.lib.ring_buffer__poll(self.rb, timeout_ms)
        if rc == 0 and not self._pending:
            rc = self.lib.ring_buffer__consume(self.rb)
        return self._take(rc)

    def drain(self, limit: int | None = None) -> list[bytes]:
        """Records ready now, without waiting: all of them, or about `limit` (in a flood the
        producers may outpace us, so an unbounded drain would never end)."""
        out: list[bytes] = []
        while limit is None or len(out) < limit:
            if self.reader is not None:
                batch = self.reader.read(POLL_BATCH)
            else:
                batch = self._take(self.lib.ring_buffer__consume(self.rb))
            out += batch
            if len(batch) < POLL_BATCH:
                break
        return out

    def _take(self, rc: int) -> list[bytes]:
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        if rc < 0 and rc not in (-4, -EAGAIN):  # -EINTR: a signal; -EAGAIN: our batch is full
            raise OSError(-rc, f"reading the ring buffer: {os.strerror(-rc)}")
        out, self._pending = self._pending, []
        return out

    def epoll_fd(self) -> int:
        if self.reader is not None:
            return self.reader.fileno()
        return self.lib.ring_buffer__epoll_fd(self.rb)

    def lost(self) -> int:
        """Records the kernel could not write because the ring buffer was full."""
        return self._lost_slot(LOST_RING)

    def counts(self) -> dict:
        """The kernel's exact counts (probes/vethtrace.h): {"ends": {END_KEY fields: n},
        "paths": {PATH_KEY fields: n}, "uncounted": n}, each per-CPU value summed."""
        out = {"ends": {}, "paths": {}, "uncounted": self._lost_slot(LOST_UNCOUNTED)}
        if not self.obj:
            return out
        for name, fmt in (("ends", END_KEY), ("paths", PATH_KEY)):
            out[name] = {key[:-1]: n for key, n in self._percpu_items(self._map_fd(name), fmt)}  # [-1]: pad
        return out

    def _percpu_items(self, fd: int, fmt):
        """(unpacked key, sum over CPUs) of every entry of a per-CPU hash map of __u64."""
        ncpu = self.lib.libbpf_num_possible_cpus()
        if ncpu <= 0:
            raise OSError(-ncpu or errno.EINVAL, "counting the CPUs")
        key, nxt = ctypes.create_string_buffer(fmt.size), ctypes.create_string_buffer(fmt.size)
        values = (ctypes.c_uint64 * ncpu)()
        prev = None
        while self.lib.bpf_map_get_next_key(fd, prev, nxt) == 0:
            ctypes.memmove(key, nxt, fmt.size)
            prev = key
            if self.lib.bpf_map_lookup_elem(fd, key, values) == 0:  # else deleted meanwhile
                yield fmt.unpack(key.raw), sum(values)

    def _lost_slot(self, index: int) -> int:
        key, value = ctypes.c_uint32(index), ctypes.c_uint64(0)
        if self._lost_fd < 0 or self.lib.bpf_map_lookup_elem(self._lost_fd, ctypes.byref(key), ctypes.byref(value)):
            return 0
        return value.value

    # -- tear-down ------------------------------------------------------------------------
    def _close_object(self) -> None:
        for link in self.links:
            self.lib.bpf_link__destroy(link)
        self.links = []
        if self.obj:
            self.lib.bpf_object__close(self.obj)
            self.obj = None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.rb:
            self.lib.ring_buffer__free(self.rb)
            self.rb = None
        self._close_object()


assert EVENT_SIZE == 192
