"""Which conversations become rows of the list, and which rows are worked out again, each
tick; and what is dropped to keep memory bounded.

New conversations wait in a backlog and are turned into rows at most ROWS_PER_TICK a tick
and within a time budget, so keys stay prompt in a flood.  When the backlog overflows
the oldest are skipped (counted), except those that might be failures, which wait in a
line of their own: drops stay visible when not everything can be.  Rows whose
conversation changed are redone, the selected one first.  At most MAX_ROWS rows are kept
(the oldest roll off, never the selected one); with a filter the matching rows are kept
apart, so a rare match in a flood stays listed.  No toolkit here: the app draws `matched`.
"""
from __future__ import annotations

import bisect
import heapq
import time
from collections import deque

from vethtrace.tracer.correlate import Conversation, Correlator
from vethtrace.tracer.verdict import IN_FLIGHT, INCOMPLETE
from vethtrace.ui.labels import might_fail
from vethtrace.ui.tui.rows import Row

MAX_ROWS = 1_000         # rows in the list; the oldest roll off (each pins its conversation: ~6 KB a ping)
BACKLOG = 2_000          # conversations waiting to be shown; beyond this the oldest are skipped
FAIL_BACKLOG = 500       # failures waiting to be shown (kept when the backlog overflows)
ROWS_PER_TICK = 60       # conversations turned into rows per tick (600/s: more than anyone reads)
TICK_BUDGET_S = 0.010    # and at most this long per tick on rows, so keys are handled promptly
LOST_REFRESH_S = 1.0     # with events lost, unfinished rows are looked at again this often


def _row_key(row: Row) -> int:
    return row.conv.id


class RowSchedule:
    """The rows of the list and the conversations waiting to become rows."""

    def __init__(self):
        self.filter = None                 # a query.Filter, or None: everything
        self.rows: list[Row] = []          # every evaluated conversation, by id (bounded)
        self.matched: list[Row] = []       # rows matching the filter (bounded; = rows without one)
        self.by_id: dict[int, Row] = {}
        self.backlog: deque[Conversation] = deque()
        self.fail_backlog: deque[Conversation] = deque()
        self.queued: set[int] = set()
        self.dirty: dict[int, Conversation] = {}  # listed rows whose conversation changed
        self.shown_total = 0               # rows ever added
        self.skipped = 0                   # conversations never shown (flood)
        self.rolled_off = 0                # rows removed to bound memory
        self.events_shown = 0              # events of the conversations shown
        self._last_lost_refresh = 0.0

    @property
    def waiting(self) -> bool:
        """Conversations are waiting to become rows."""
        return bool(self.backlog or self.fail_backlog)

    def apply(self, corr: Correlator, t0: int, lost: int | None, new, touched, overflow,
              selected: Row | None = None) -> set[int]:
        """Fold what the feed took (new conversations, those whose journeys ended, whether
        notifications overflowed) into rows; returns the ids of rows that changed.
        lost: not None once the kernel lost events; selected: redone first, never trimmed."""
        changed: set[int] = set()
        deadline = time.perf_counter() + TICK_BUDGET_S
        for cid, conv in touched.items():
            if cid in self.by_id:
                self.dirty[cid] = conv
            elif cid not in self.queued and (self.filter is not None or might_fail(conv)):
                self._enqueue(conv)
        # Rows whose conversation changed; what the budget leaves waits for the next tick.
        chosen = selected.conv.id if selected is not None else None
        for cid in sorted(self.dirty, key=lambda c: c != chosen):
            if time.perf_counter() > deadline and cid != chosen:
                break
            self.dirty.pop(cid)
            row = self.by_id.get(cid)
            if row is not None:
                self.events_shown += row.update(corr, t0)
                changed.add(cid)
        now = time.monotonic()
        if overflow or (lost is not None and now - self._last_lost_refresh > LOST_REFRESH_S):
            # Notifications were dropped (long pause) or rows may have become "incomplete".
            self._last_lost_refresh = now
            for row in self.rows:
                if row.outcome in (IN_FLIGHT, INCOMPLETE):
                    self.events_shown += row.update(corr, t0)
                    changed.add(row.conv.id)
        for conv in new:
            self._enqueue(conv)
        changed.update(self._evaluate(corr, t0, deadline + TICK_BUDGET_S / 2))
        self._trim(selected)
        return changed

    def _enqueue(self, conv: Conversation) -> None:
        self.backlog.append(conv)
        self.queued.add(conv.id)
        while len(self.backlog) > BACKLOG:
            old = self.backlog.popleft()
            if might_fail(old) and len(self.fail_backlog) < FAIL_BACKLOG:
                self.fail_backlog.append(old)  # failures wait in their own line
            else:
                self.queued.discard(old.id)
                self.skipped += 1

    def _evaluate(self, corr: Correlator, t0: int, deadline: float) -> set[int]:
        added: set[int] = set()
        budget = ROWS_PER_TICK
        while budget and (self.fail_backlog or self.backlog) and (
                time.perf_counter() < deadline or budget == ROWS_PER_TICK):
            conv = (self.fail_backlog or self.backlog).popleft()
            self.queued.discard(conv.id)
            if conv.id in self.by_id:
                continue
            budget -= 1
            row = Row(conv)
            delta = row.update(corr, t0)
            if self.filter is not None and not row.matches(self.filter) and not row.failure:
                continue  # not worth a row now; shown if it changes and matches later
            bisect.insort(self.rows, row, key=_row_key)
            self.by_id[conv.id] = row
            self.events_shown += delta
            self.shown_total += 1
            added.add(conv.id)
        return added

    def _trim(self, keep: Row | None) -> None:
        if len(self.rows) <= MAX_ROWS and len(self.matched) <= MAX_ROWS:
            return
        same = self.matched is self.rows
        for name in ("rows", "matched"):
            rows = getattr(self, name)
            excess = len(rows) - MAX_ROWS
            if excess <= 0:
                continue
            out = []
            for r in rows:
                if excess > 0 and r is not keep:
                    excess -= 1
                    if name == "rows":
                        self.rolled_off += 1
                    continue
                out.append(r)
            setattr(self, name, out)
            if same:
                self.matched = self.rows
                break
        self.by_id = {r.conv.id: r for r in self.rows}
        self.by_id.update((r.conv.id, r) for r in self.matched)
        for cid in [c for c in self.dirty if c not in self.by_id]:
            del self.dirty[cid]

    def set_filter(self, flt) -> list[Row]:
        """Show what matches flt (None: everything); returns the rows to list."""
        self.filter = flt
        if flt is None:
            self.matched = self.rows
        return self.refresh()

    def refresh(self) -> list[Row]:
        """The rows to list now, oldest first."""
        if self.filter is None:
            self.matched = self.rows
        else:
            # Matching rows outlive the unfiltered ones (a rare match in a flood stays listed).
            merged = heapq.merge(self.rows, self.matched, key=_row_key)
            out, last = [], None
            for r in merged:
                if (last is None or r.conv.id != last.conv.id) and r.matches(self.filter):
                    out.append(r)
                last = r
            self.matched = out[-MAX_ROWS:]
        return self.matched

    def update_all(self, corr: Correlator, t0: int) -> None:
        """Bring every row still kept up to date (before counting what was shown)."""
        for row in list(self.by_id.values()):
            self.events_shown += row.update(corr, t0)
