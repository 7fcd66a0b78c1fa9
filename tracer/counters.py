"""The kernel's exact counts, and the summary rows they make when the ring buffer lost events.

The probes count in two per-CPU maps whatever the ring buffer could take (probes/vethtrace.h):
`ends`, every admitted drop by place and reason; `paths`, every packet whose data was
released, by a path hash (the sum of vtr_hop_hash() over the events of all the skbs that
carried the data) and how it ended.  `KernelCounts` is one
reading of both, named like decoded events.

`ExactPaths` learns which summary row each path hash stands for from the journeys that
were seen (journey_key(): the same sum over a journey's events, and its free flagged
PF_LAST).  Rows then count the kernel's packets, not the survivors; packets whose path was
never seen in full are counted apart ("on paths not seen in detail").  A journey that is
made of two data buffers (a packet copied to new memory) sums both, which no single kernel
entry does: such packets are counted, under "not seen in detail".

A recording keeps the final reading in its footer ("counts": `KernelCounts.to_json`); read
back it is untrusted input (`KernelCounts.from_json`: sizes bounded, types checked, strings
made safe for a terminal).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from . import untrusted
from .events import KIND_IDS, PF_LAST

M64 = (1 << 64) - 1
MAX_ROWS = 4096  # path hashes remembered (the kernel's map holds as many)
MAX_ENTRIES = 8192  # entries of each map a recording may hold (the kernel's hold 4096)
MAX_NAME = 256  # characters of a recorded where/reason (a symbol+offset, a drop reason's name)


def hop_hash(kind: int, ifindex: int, netns: int, protocol: int) -> int:
    """vtr_hop_hash() of probes/vethtrace.h."""
    x = ((((netns << 32) | ifindex) * 0x9E3779B97F4A7C15) & M64) ^ ((kind << 16) | protocol)
    x ^= x >> 31
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 29
    return x


def journey_key(j) -> tuple | None:
    """(path hash, end kind, where, drop reason) as the kernel counts the journey, or None
    when it has not exactly one free that released its data."""
    last = [e for e in j.frees if e.arg2 & PF_LAST]
    if len(last) != 1:
        return None
    end = last[0]
    path = sum(hop_hash(KIND_IDS[e.kind], e.ifindex, e.netns, e.protocol) for e in j.events) & M64
    return path, end.kind, end.where, end.reason


@dataclass
class KernelCounts:
    """One reading of the maps.  ends: (kind, where, reason, netns, ifindex) -> n; paths:
    (path hash, kind, where, reason) -> n; uncounted: counts the full maps had no room for."""
    ends: Counter = field(default_factory=Counter)
    paths: Counter = field(default_factory=Counter)
    uncounted: int = 0

    @classmethod
    def from_maps(cls, raw: dict, names) -> "KernelCounts":
        """raw: Probes.counts(); names(kind, location, arg) -> (kind, where, reason), the
        decoder's, so keys read like decoded events."""
        out = cls(uncounted=raw.get("uncounted", 0))
        for (location, reason, netns, ifindex, kind), n in raw.get("ends", {}).items():
            k, where, why = names(kind, location, reason)
            out.ends[(k, where, why, netns, ifindex)] += n
        for (path, location, reason, kind), n in raw.get("paths", {}).items():
            k, where, why = names(kind, location, reason)
            out.paths[(path, k, where, why)] += n
        return out

    def to_json(self) -> dict:
        """The footer's "counts": {"ends": [[kind, where, reason, netns, ifindex, n], ...],
        "paths": [[path hash, kind, where, reason, n], ...], "uncounted": n}."""
        return {"ends": [[*k, n] for k, n in sorted(self.ends.items())],
                "paths": [[*k, n] for k, n in sorted(self.paths.items())], "uncounted": self.uncounted}

    @classmethod
    def from_json(cls, d) -> "KernelCounts":
        """A footer's "counts" read back; ValueError says what is wrong with it."""
        if not isinstance(d, dict):
            raise ValueError("the footer's counts is not an object")
        out = cls(uncounted=_count(d.get("uncounted", 0), "uncounted"))
        for name, target, form in (("ends", out.ends, ("kind", "str", "str", "u32", "u32")),
                                   ("paths", out.paths, ("u64", "kind", "str", "str"))):
            rows = d.get(name, [])
            if not isinstance(rows, list) or len(rows) > MAX_ENTRIES:
                raise ValueError(f"the footer's counts.{name} is not a list of at most {MAX_ENTRIES} entries")
            for row in rows:
                if not isinstance(row, list) or len(row) != len(form) + 1:
                    raise ValueError(f"an entry of the footer's counts.{name} is not [{', '.join(form)}, n]")
                key = tuple(_field(v, f, name) for v, f in zip(row, form))
                target[key] += _count(row[-1], name)
        return out

    def drops(self) -> list[tuple[int, str, str]]:
        """(n, function, reason) of every drop (kfree), most first."""
        c: Counter = Counter()
        for (kind, where, why, _netns, _ifindex), n in self.ends.items():
            if kind == "kfree":
                c[(where.split("+", 1)[0], why)] += n
        return sorted(((n, f, r) for (f, r), n in c.items()), key=lambda x: (-x[0], x[1], x[2]))

    def packets(self) -> int:
        return sum(self.paths.values())


def _count(v, what: str) -> int:
    if type(v) is not int or not 0 <= v <= M64:
        raise ValueError(f"the footer's counts.{what} has a count that is not a number of packets")
    return v


def _field(v, form: str, what: str):
    if form == "kind":
        if type(v) is not str or v not in KIND_IDS:
            raise ValueError(f"the footer's counts.{what} has an entry whose kind is not an event kind")
        return v
    if form == "str":
        if not isinstance(v, str) or len(v) > MAX_NAME:
            raise ValueError(f"the footer's counts.{what} has a name that is not a string of at most {MAX_NAME}")
        return untrusted.term(v)
    top = M64 if form == "u64" else 0xFFFFFFFF
    if type(v) is not int or not 0 <= v <= top:
        raise ValueError(f"the footer's counts.{what} has a number out of range")
    return v


class ExactPaths:
    """Summary rows by path hash, learnt from journeys as they are counted."""

    RETRIES = 32  # journeys tried per path for a better row

    def __init__(self, row, better=None):
        """row(journey) -> its summary key as if nothing was lost (the caller's; a
        presentation matter).  better(old row) -> a test of a new row, or None: while
        a path's row may improve (an echo request whose answer was lost with the events
        read), later journeys of the path are tried, up to RETRIES of them."""
        self.row = row
        self.better = better
        self.rows: dict[tuple, tuple] = {}
        self._tries: Counter = Counter()
        self.at_drop: dict[tuple, tuple] = {}  # (function, reason) -> the row of a journey freed there

    def note(self, j) -> None:
        k = journey_key(j)
        if k is not None and k not in self.rows and len(self.rows) < MAX_ROWS:
            self.rows[k] = self.row(j)
        elif k in self.rows and self.better is not None and self._tries[k] < self.RETRIES:
            test = self.better(self.rows[k])
            if test is not None:
                self._tries[k] += 1
                new = self.row(j)
                if test(new):
                    self.rows[k] = new
        for ev in j.frees:  # a drop site's count is read with the journeys seen ending there
            if ev.kind == "kfree":
                site = (ev.func.split("+", 1)[0], ev.reason or "")
                if site not in self.at_drop and len(self.at_drop) < MAX_ROWS:
                    self.at_drop[site] = self.rows.get(k) if k is not None else self.row(j)

    def counts(self, kernel: KernelCounts, unseen_row: tuple) -> Counter:
        """The kernel's packets by summary row; those on paths never seen as unseen_row."""
        out: Counter = Counter()
        for k, n in kernel.paths.items():
            out[self.rows.get(k, unseen_row)] += n
        return out
