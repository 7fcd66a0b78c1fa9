"""A live event source: probes loaded with the user's filters, records decoded in batches.

Used by every live command; recordings are the other source, and both yield Events.
"""
from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Sequence
from collections import deque
import signal

from . import kernel
from .ksyms import KernelSymbols
from .counters import KernelCounts
from .losses import LossWindows
from .loader import POLL_BATCH, FilterConfig, Probes, ProbeError
from .pcapfilter import FilterError, compile_filter
from .record import SCOPE_MAX, Decoder
from .kernel import SetupError


def build_filters(interface: str | None = None, host: str | None = None,
                  all_netns: bool = False, ipv6: bool = False, netns: Sequence[str] = (),
                  expression=None) -> FilterConfig:
    """Validate user filters; bad input raises SetupError with a one-line message.
    The scope: the namespaces named with `netns` (`ip netns` names), else the one we run
    in; none with all_netns (every namespace).  `expression`: a pcap-filter expression
    (words or one string), evaluated in the kernel."""
    v6_host = None
    if host is not None and ":" in host:
        # The probes' own host filter is IPv4; an IPv6 host is the expression `host ADDR`.
        try:
            v6_host = ipaddress.IPv6Address(host)
        except ValueError:
            raise SetupError(f"bad address {host!r}: give an IPv4 or IPv6 address such as 192.168.2.1 or fd00::1") from None
        words = " ".join(expression) if isinstance(expression, (list, tuple)) else (expression or "")
        expression = f"({words}) and host {v6_host}" if words.strip() else f"host {v6_host}"
    pcap = pcap_expression(expression)
    here = kernel.netns_inode()
    if all_netns and netns:
        raise SetupError("--all-netns and --netns exclude each other: give one of them")
    scope = () if all_netns else tuple(dict.fromkeys(netns_by_name(n) for n in netns)) or (here,)
    if len(scope) > SCOPE_MAX:
        raise SetupError(f"{len(scope)} namespaces given with --netns; at most {SCOPE_MAX} (or --all-netns)")
    # IPv6 housekeeping is hidden by default; an expression says itself what it wants.
    cfg = FilterConfig(scope=scope, skip_ipv6=not ipv6 and pcap is None, pcap=pcap)
    if interface is not None:
        try:
            cfg.ifindex = socket_ifindex(interface)
        except OSError:
            names = ", ".join(sorted(i["name"] for i in kernel.interfaces() if i.get("name"))) or "none"
            raise SetupError(f"unknown interface {interface!r} in this network namespace "
                             f"(interfaces here: {names})") from None
        cfg.ifindex_netns = here
    if host is not None and v6_host is None:
        try:
            addr = ipaddress.IPv4Address(host)
        except ValueError:
            raise SetupError(f"bad address {host!r}: give an IPv4 or IPv6 address such as 192.168.2.1 or fd00::1") from None
        cfg.host = addr.packed
    return cfg


def pcap_expression(expression):
    """The compiled expression, or None; libpcap's complaint as a SetupError (one line)."""
    try:
        return compile_filter(expression)
    except FilterError as exc:
        raise SetupError(str(exc)) from None


NETNS_DIR = "/run/netns"


def netns_by_name(name: str) -> int:
    """The inode of the namespace `ip netns` calls `name` (/run/netns/NAME, a bind mount of
    the namespace: checked to be one, not just any file there)."""
    if not name or "/" in name or name in (".", "..") or len(name) > 255:
        raise SetupError(f"bad namespace name {name!r}: give a name `ip netns list` shows")
    try:
        st = os.stat(os.path.join(NETNS_DIR, name))
        ns_dev = os.stat("/proc/self/ns/net").st_dev
    except OSError:
        try:
            known = ", ".join(sorted(os.listdir(NETNS_DIR))) or "none"
        except OSError:
            known = "none"
        raise SetupError(f"no network namespace named {name!r} (ip netns list: {known})") from None
    if st.st_dev != ns_dev:
        raise SetupError(f"{NETNS_DIR}/{name} is not a network namespace (not mounted by `ip netns add`)")
    return st.st_ino


def socket_ifindex(name: str) -> int:
    import socket
    return socket.if_nametoindex(name)


RECORD_BYTES = 200    # a record in the ring buffer: 192 bytes and its 8-byte header
# The ring's default size.  tracer.ring maps its pages once, and the kernel makes them all
# resident at once, so it is most of a flood's memory; the kernel's exact counts
# (tracer.counters) keep summaries exact when a flood outruns it, and --buffer-mb buys more
# detail (bench/scale.py: peak RSS and events lost).
DEFAULT_RING_MB = 32
# The spool holds half what the ring holds: a spooled record (a bytes object) costs more
# memory than the same record in the ring, and only the ring is counted at its size.
SPOOL_RATIO = 0.5
CHUNK = 4096          # records decoded per poll, so the ring buffer is emptied often
DRAIN_LIMIT = 32768   # records moved from the ring buffer to the spool per poll, at most


class LazySymbols:
    """/proc/kallsyms parsed in a thread while the probes load (it takes ~0.1 s);
    the first name look-up waits for it."""

    def __init__(self):
        self._ks = None
        self._thread = threading.Thread(target=self._load, daemon=True)
        self._thread.start()

    def _load(self):
        self._ks = KernelSymbols()

    def resolve(self, addr: int) -> str:
        if self._ks is None:
            self._thread.join()
        return self._ks.resolve(addr)


class LiveSource:
    """Context manager: probes attached on enter, detached on exit (also on errors).

    Reading is split in two so floods lose as little as possible: every poll first empties
    the ring buffer into a spool of raw records (cheap), then decodes at most CHUNK of them.
    The spool holds SPOOL_RATIO times what the ring buffer holds, at least 2 * DRAIN_LIMIT
    records (so --buffer-mb 32 buffers about 48 MB of records in all; tracer.ring maps the
    ring's pages once, so they count 32 MB in the resident size).  A full spool leaves records in the
    ring instead of dropping them, so a larger buffer always loses fewer (the kernel counts
    what the ring could not take)."""

    def __init__(self, filters: FilterConfig, want_fentry: bool | str = "auto", ring_mb: int = DEFAULT_RING_MB):
        """want_fentry: "auto" tries fentry unless this kernel refused it earlier since boot
        (loader.fentry_refused_this_boot), True always tries, False never does."""
        if not 1 <= ring_mb <= 1024 or ring_mb & (ring_mb - 1):
            raise SetupError(f"--buffer-mb {ring_mb}: give a power of two between 1 and 1024")
        kernel.require_root()
        self.btf = kernel.open_btf()
        self.filters = filters
        self.want_fentry = want_fentry
        self.ring_bytes = ring_mb << 20
        self.probes: Probes | None = None
        self.decoder: Decoder | None = None
        self._old_term = None
        self._spool: deque[bytes] = deque()
        self.spool_max = max(int(SPOOL_RATIO * self.ring_bytes) // RECORD_BYTES, 2 * DRAIN_LIMIT)
        self.overflow = 0  # records read but not spooled (should stay 0: reads leave room)
        self.losses = LossWindows()  # when the kernel lost events (tracer.losses)

    def __enter__(self) -> "LiveSource":
        # SIGTERM and SIGHUP unwind like Ctrl-C, so the links are destroyed on the way out.
        self._old_term = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
        try:
            self.decoder = Decoder(kernel.drop_reasons(self.btf), LazySymbols())
            self.probes = Probes(self.filters, self.btf, self.want_fentry, ring_bytes=self.ring_bytes)
            self.probes.start()
            self.losses.observe(0, time.monotonic_ns())
        except OSError as exc:
            self.close()
            if exc.errno == 1:
                raise SetupError("the kernel refused to load the probes (EPERM): run as root with "
                                 "CAP_BPF/CAP_PERFMON, and check kernel.unprivileged_bpf_disabled "
                                 "and lockdown") from None
            raise SetupError(f"could not start the probes: {exc}") from None
        except ProbeError as exc:
            self.close()
            raise SetupError(str(exc)) from None
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.probes is not None:
            self.probes.close()
            self.probes = None
        self.btf.close()
        if self._old_term:
            for s, h in self._old_term.items():
                signal.signal(s, h)
            self._old_term = None

    @property
    def mechanism(self) -> str:
        return self.probes.report.mechanism if self.probes else ""

    @property
    def report(self):
        return self.probes.report

    def _fill(self, raws: list[bytes]) -> None:
        room = self.spool_max - len(self._spool)
        if len(raws) > room:
            self.overflow += len(raws) - room
            raws = raws[:room]
        self._spool.extend(raws)

    def _take(self, n: int | None) -> list:
        spool = self._spool
        if n is None or n >= len(spool):
            batch = list(spool)
            spool.clear()
        else:
            batch = [spool.popleft() for _ in range(n)]
        return self.decoder.decode_batch(batch)

    def poll(self, timeout_ms: int = 100):
        """Events ready now (waiting up to timeout_ms when there are none), at most CHUNK.
        The ring buffer is emptied into the spool first (bounded per call), so a burst
        waits in the spool instead of overflowing the ring."""
        room = self.spool_max - len(self._spool)
        self.losses.observe(self.lost(), time.monotonic_ns())
        if room >= POLL_BATCH:  # else the records wait in the ring (a read returns up to POLL_BATCH)
            raws = self.probes.poll(0 if self._spool else timeout_ms)
            room -= len(raws) + POLL_BATCH  # drain(limit) may return one batch more than limit
            if len(raws) >= POLL_BATCH and room > 0:
                raws += self.probes.drain(limit=min(DRAIN_LIMIT, room))
            self._fill(raws)
        return self._take(CHUNK)

    def drain(self):
        """Every event the kernel has written so far (decoded at once: for small batches;
        `drain_chunks` keeps memory bounded)."""
        return [e for chunk in self.drain_chunks() for e in chunk]

    def drain_chunks(self):
        """Every event the kernel has written so far, decoded CHUNK at a time, so a caller
        that writes or summarises each chunk never holds the whole backlog as Events."""
        while True:
            if len(self._spool) < CHUNK:
                room = self.spool_max - len(self._spool) - POLL_BATCH
                if room > 0:
                    self.losses.observe(self.lost(), time.monotonic_ns())
                    self._fill(self.probes.drain(limit=min(DRAIN_LIMIT, room)))
            if not self._spool:
                return
            yield self._take(CHUNK)

    @property
    def backlog(self) -> int:
        """Records read from the kernel but not decoded yet."""
        return len(self._spool)

    def lost(self) -> int:
        """Events lost: the ring buffer was full, or the spool was."""
        return (self.probes.lost() if self.probes else 0) + self.overflow

    def kernel_counts(self) -> KernelCounts:
        """The probes' exact counts so far (tracer.counters), named like decoded events."""
        if self.probes is None:
            return KernelCounts()
        return KernelCounts.from_maps(self.probes.counts(), self.decoder.names)

    def epoll_fd(self) -> int:
        return self.probes.epoll_fd()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
