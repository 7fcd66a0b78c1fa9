"""Event sources for long-running views (the TUI): one interface for live probes and
recordings, so a view is built from either and tests build it from recorded traces.

A source has: `poll(timeout_ms) -> list[Event]`, `lost() -> int | None`, `mechanism`,
`context` (the namespace vethtrace ran in), `namespaces` (every namespace met, with names
and context for verdicts), `live` (bool), `close()`.

`replay(path)` is the one-shot form the other commands use (show, render, export).
"""
from __future__ import annotations

import gc
import time
from contextlib import contextmanager

from . import kernel, recording
from .correlate import Correlator
from .events import PACKET_KINDS
from .live import LiveSource
from .netns import Namespaces


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for a bulk replay.  While a recording is read
    and correlated, everything made stays reachable until the end (events, packets,
    journeys) or dies by reference count (parsed lines), so there is no cyclic garbage to
    find, and each collection would rescan hundreds of thousands of live objects for
    nothing (bench/run.py measures the difference).

    Afterwards the objects made are moved to the oldest generation without being scanned
    (freeze + unfreeze): otherwise the first allocation after the pause would start a
    young collection over all of them (about 0.25 s for 260k events).  They stay
    collectable: a full collection still finds their cycles once they are dropped."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was:
            gc.enable()


def replay(path: str, pcap=None) -> tuple[recording.Recording, Correlator]:
    """Read a recording and correlate it: what `vethtrace show` does before printing.
    With `pcap` (a pcapfilter.PcapFilter), only the conversations that have a matching
    packet are kept (`matching`), and correlated again on their own."""
    with collector_paused():
        reader = recording.Reader(path)
        corr = Correlator(reader.context, namespaces=reader.namespaces)
        events = []
        for chunk in reader.chunks():  # correlated while the rest is parsed (Reader)
            events += chunk
            corr.feed(chunk)
        if pcap is not None:
            events = matching(corr, events, pcap)
            corr = Correlator(reader.context, namespaces=reader.namespaces)
            corr.feed(events)
    corr.losses = reader.losses  # the footer's: journeys around lost events are incomplete
    return recording.Recording(reader.header, events, reader.lost, reader.warning, reader.namespaces,
                               reader.counts), corr


def matching(corr: Correlator, events: list, pcap) -> list:
    """The events of every conversation (or lone journey) with a packet the expression
    matches, as the probes would judge it (pcapfilter.PcapFilter.matches_event): a packet
    is kept with the packets that answer it (reply, ARP exchange, ICMP error).  Route and
    neighbour events are kept with them: they only explain the packets kept."""
    keep: set[int] = set()
    for group in [c.journeys for c in corr.conversations] + [[j] for j in corr.journeys if j.conversation is None]:
        if any(pcap.matches_event(ev) for j in group for ev in j.events):
            keep.update(id(ev) for j in group for ev in j.events)
    if not keep:
        return []
    return [ev for ev in events if id(ev) in keep or ev.kind not in PACKET_KINDS]


class ReplaySource:
    """A recording, handed out in batches (all at once by default)."""

    live = False

    def __init__(self, path: str, batch: int | None = None, pcap=None):
        self.path, self.pcap = path, pcap
        with collector_paused():
            self.rec = recording.read(path)
            if pcap is not None:
                corr = Correlator(self.rec.context, namespaces=self.rec.namespaces)
                corr.feed(self.rec.events)
                self.rec.events = matching(corr, self.rec.events, pcap)
        self.batch = batch or len(self.rec.events) or 1
        self._pos = 0
        self.mechanism = self.rec.header.get("mechanism", "recording")
        self.context = self.rec.context
        self.namespaces = self.rec.namespaces

    def poll(self, timeout_ms: int = 100):
        if self._pos >= len(self.rec.events):
            time.sleep(timeout_ms / 1000)
            return []
        out = self.rec.events[self._pos:self._pos + self.batch]
        self._pos += len(out)
        return out

    @property
    def exhausted(self) -> bool:
        return self._pos >= len(self.rec.events)

    def lost(self):
        return self.rec.lost

    def kernel_counts(self):
        """The footer's kernel counts; None when filtered (they count the whole recording)
        or when the recording has none."""
        return self.rec.counts if self.pcap is None else None

    def close(self) -> None:
        pass


class LiveEvents:
    """Live probes as a source; enter/exit attach and detach them."""

    live = True

    def __init__(self, filters, ring_mb: int = 32):
        self._src = LiveSource(filters, ring_mb=ring_mb)
        self.context = {}
        self.namespaces = Namespaces()
        self.mechanism = ""

    def __enter__(self) -> "LiveEvents":
        self._src.__enter__()
        self.mechanism = self._src.mechanism
        self.context = kernel.context()
        self.namespaces.add(self.context)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def poll(self, timeout_ms: int = 100):
        events = self._src.poll(timeout_ms)
        self.namespaces.learn(events)  # namespaces met for the first time get their names now
        return events

    def lost(self):
        return self._src.lost()

    def kernel_counts(self):
        """The probes' exact counts so far (tracer.counters.KernelCounts)."""
        return self._src.kernel_counts()

    def close(self) -> None:
        self._src.close()
