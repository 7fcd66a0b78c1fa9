"""Summaries that stay exact when the ring buffer lost events: the summary rows counted from
the kernel's own counts (tracer.counters), and its drops by place and reason.  One code path
for every view: the live commands, `show` and `render` of a recording (its footer's counts),
and the TUI."""
from __future__ import annotations

from collections import Counter

from ..tracer.counters import ExactPaths, KernelCounts, journey_key
from ..tracer.verdict import ANSWERED, CONSUMED, DROPPED
from .text import INCOMPLETE, path_key

# the row of packets whose path no journey showed in full
UNSEEN = ("packets", "on paths not seen in detail (their events were lost)", INCOMPLETE, INCOMPLETE)


def _better(old):
    """A request consumed without an answer seen: another journey of its path may show the
    reply (its events were not lost), and so that it was answered."""
    return (lambda new: new[3] == ANSWERED) if old[3] == CONSUMED else None


def exact_paths(corr) -> ExactPaths:
    """Rows learnt from journeys: each named as it would be if nothing had been lost (a
    journey whose path hash the kernel counted was seen in full)."""
    def row(j):
        losses, corr.losses = corr.losses, None
        try:
            return path_key(j, corr)
        finally:
            corr.losses = losses
    return ExactPaths(row, _better)


def noting(exact: ExactPaths, key):
    """A summary key function (tracer.retention) that also teaches `exact` each journey's row."""
    def keyed(j):
        exact.note(j)
        return key(j)
    return keyed


def summary_counts(kc: KernelCounts | None, exact: ExactPaths, counts: Counter,
                   lost: int | None) -> tuple[Counter, list[str]]:
    """(rows to print, lines to add under them).  Nothing lost, or no kernel counts (kc
    None: a recording made before they were kept): the journeys' own counts.  Events lost:
    the kernel's count of every packet on each path, and of every drop."""
    if not lost or kc is None or not kc.paths:
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


def exact_journeys(kc: KernelCounts | None, journeys, lost: int | None):
    """For an aggregated diagram of a recording that lost events: (journeys to draw, their
    weights by journey id, packets on paths no journey showed), one journey seen in full
    standing for every packet the kernel counted on its path; None when nothing was lost
    or there are no kernel counts.  Journeys of conversations that showed more of the
    counted paths are chosen first, so a request and its reply come from one conversation
    (the diagram's dashed links join the two)."""
    if not lost or kc is None or not kc.paths:
        return None
    keyed = [(j, k) for j in journeys if (k := journey_key(j)) in kc.paths]
    cover: dict[int, set] = {}
    for j, k in keyed:
        cover.setdefault(id(j.conversation), set()).add(k)
    chosen: dict[tuple, object] = {}
    for j, k in sorted(keyed, key=lambda jk: -len(cover[id(jk[0].conversation)])):
        chosen.setdefault(k, j)
    weights = {j.id: kc.paths[k] for k, j in chosen.items()}
    unseen = sum(n for k, n in kc.paths.items() if k not in chosen)
    drawn = sorted(chosen.values(), key=lambda j: j.start)  # the layout follows the order packets came
    return drawn, weights, unseen
