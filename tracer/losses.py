"""When the kernel lost events, so journeys around those times are shown as incomplete.

The probes count the records the ring buffer had no room for; the counter is read before
each read of the ring buffer (LiveSource).  If it grew between two reads at T1 and T2
(CLOCK_MONOTONIC, the probes' own clock), every record lost since was lost in (T1, T2]:
a journey whose events span a moment in such a window, give or take MARGIN_NS (what was
lost may be its first or last event, just outside what was seen), may miss hops or its
end, so no verdict drawn from what survived is shown as a success.
"""
from __future__ import annotations

import bisect

MARGIN_NS = 1_000_000   # a journey's unseen first or last event is this close to what was seen
MAX_WINDOWS = 4096      # beyond this, neighbouring windows are merged (coarser, still covering)


class LossWindows:
    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []
        self._lost = 0
        self._t: int | None = None

    def observe(self, lost: int, now_ns: int) -> None:
        """The lost counter read at now_ns."""
        if lost > self._lost:
            start = self._t if self._t is not None else 0
            if self.ends and start <= self.ends[-1] + MARGIN_NS:
                self.ends[-1] = now_ns
            else:
                self.starts.append(start)
                self.ends.append(now_ns)
                if len(self.starts) > MAX_WINDOWS:
                    self._coarsen()
        self._lost = max(self._lost, lost)
        self._t = now_ns

    def add(self, start: int, end: int) -> None:
        """A window known beforehand (from a recording's footer), in time order."""
        self.starts.append(start)
        self.ends.append(end)

    def _coarsen(self) -> None:
        s, e = self.starts, self.ends
        self.starts = [s[i] for i in range(0, len(s), 2)]
        self.ends = [e[min(i + 1, len(e) - 1)] for i in range(0, len(e), 2)]

    def __bool__(self) -> bool:
        return bool(self.starts)

    def touches(self, start: int, end: int) -> bool:
        """Could events between start and end (ns) have been lost?"""
        i = bisect.bisect_left(self.ends, start - MARGIN_NS)
        return i < len(self.starts) and self.starts[i] <= end + MARGIN_NS

    def journey(self, j) -> bool:
        return self.touches(j.start, j.last)

    def as_list(self, at_most: int | None = None) -> list[list[int]]:
        """[[start, end], ...]; with at_most, neighbours merged until that few remain (a
        recording's footer must stay one short line)."""
        w = LossWindows()
        w.starts, w.ends = list(self.starts), list(self.ends)
        while at_most is not None and len(w.starts) > at_most:
            w._coarsen()
        return [[a, b] for a, b in zip(w.starts, w.ends)]


FOOTER_WINDOWS = 256  # windows a recording's footer keeps (recording.MAX_LINE: 16 KiB)


def from_footer(windows) -> LossWindows:
    """A recording footer's "lost_windows", checked: pairs of integers, in order."""
    w = LossWindows()
    if windows is None:
        return w
    if not isinstance(windows, list) or len(windows) > FOOTER_WINDOWS:
        raise TypeError("footer's lost_windows is not a list of windows")
    last = -1
    for pair in windows:
        if not (isinstance(pair, list) and len(pair) == 2 and all(type(t) is int and t >= 0 for t in pair)
                and last <= pair[0] <= pair[1]):
            raise TypeError("footer's lost_windows has a malformed window")
        w.add(*pair)
        last = pair[1]
    return w
