"""Summaries that stay exact when the ring buffer lost events: the summary rows counted from
the kernel's own counts (tracer.counters), and its drops by place and reason."""
from __future__ import annotations

from collections import Counter

from ..tracer.counters import ExactPaths
from ..tracer.verdict import DROPPED
from ..ui.text import INCOMPLETE, path_key

# the row of packets whose path no journey showed in full
UNSEEN = ("packets", "on paths not seen in detail (their events were lost)", INCOMPLETE, INCOMPLETE)


def exact_paths(corr) -> ExactPaths:
    """Rows learnt from journeys: each named as it would be if nothing had been lost (a
    journey whose path hash the kernel counted was seen in full)."""
    def row(j):
        losses, corr.losses = corr.losses, None
        try:
            return path_key(j, corr)
        finally:
            corr.losses = losses
    return ExactPaths(row)


def noting(exact: ExactPaths, key):
    """A summary key function (tracer.retention) that also teaches `exact` each journey's row."""
    def keyed(j):
        exact.note(j)
        return key(j)
    return keyed


def summary_counts(src, exact: ExactPaths, counts: Counter, lost: int | None) -> tuple[Counter, list[str]]:
    """(rows to print, lines to add under them).  Nothing lost: the journeys' own counts.
    Events lost: the kernel's count of every packet on each path, and of every drop."""
    if not lost:
        return counts, []
    kc = src.kernel_counts()
    if not kc.paths:
        return counts, []
    lines = [f"counted in the kernel (exact, whatever was lost): {kc.packets()} packets ended"]
    for n, func, reason in kc.drops():
        line = f"{n:>5}x  dropped at {func}" + (f" ({reason})" if reason else "")
        seen = exact.at_drop.get((func, reason or ""))
        if seen is not None and seen[3] != DROPPED:  # a copy's free inside a journey that went on
            line = (f"{n:>5}x  freed at {func}" + (f" ({reason})" if reason else "")
                    + f", within: {seen[0]} {seen[2]}")
        lines.append(line)
    if kc.uncounted:
        lines.append(f"WARNING: {kc.uncounted} ends were not counted (the kernel's count tables were full)")
    return exact.counts(kc, UNSEEN), lines
