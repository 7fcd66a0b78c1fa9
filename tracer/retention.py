"""What long-running commands keep in memory, and the exact summary of what they let go.

A live command may follow millions of packets; only what a view can still show is kept.
`Retention` sets the correlator's bounds (journeys and events held) and, through its
`on_forget` hook, counts every journey the correlator forgets by a summary key (path and
verdict, given by the caller: the key is a presentation matter), so a summary printed at
the end counts every packet although most journeys are long gone.  Conversations
forgotten before a view showed them are handed to `on_conversations`, so the view can
count them or keep the few it still wants to show (ping keeps failures).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

KEEP_JOURNEYS = 2_000   # journeys a live command keeps (a view shows far fewer)
KEEP_EVENTS = 16_000    # events held by those journeys, at most (~0.9 KB each with packets)


class Retention:
    """Bounds a Correlator and keeps an exact count of the journeys it forgets."""

    def __init__(self, corr, key: Callable, keep_journeys: int = KEEP_JOURNEYS, keep_events: int = KEEP_EVENTS,
                 on_conversations: Callable | None = None):
        self.corr, self.key = corr, key
        self.forgotten: Counter = Counter()  # summary key -> journeys forgotten
        self._shown: dict[int, object] = {}  # journey id -> its key as a view showed it (`shown`)
        self.on_conversations = on_conversations
        corr.keep, corr.keep_events = keep_journeys, keep_events
        corr.on_forget = self._forget

    def shown(self, journeys) -> None:
        """These journeys are being shown now: count each by its key as it is now, made
        while the view makes its text (the verdict is made once for both, tracer.verdict)."""
        key = self.key
        for j in journeys:
            self._shown[j.id] = key(j)

    def _key(self, j):
        k = self._shown.pop(j.id, _NONE)
        return self.key(j) if k is _NONE else k

    def _forget(self, journeys, conversations) -> None:
        self.forgotten.update(map(self._key, journeys))
        if conversations and self.on_conversations is not None:
            self.on_conversations(conversations)

    def counts(self) -> Counter:
        """Every journey seen, by summary key: the forgotten and the ones still kept."""
        out = Counter(self.forgotten)
        shown, key = self._shown, self.key
        out.update(shown[j.id] if j.id in shown else key(j) for j in self.corr.journeys)
        return out


_NONE = object()


CLOSE_NS = 1_000_000_000       # an answered exchange is closed once quiet this long (a clone comes sooner)
CLOSE_AFTER = 256              # or once this many conversations started after it (a flood's 1 s is long)
OPEN_NS = 6_000_000_000        # any other once quiet this long (ARP retries, parked copies: 5 s)


class ConversationStream:
    """Conversations handed out in order (by id) as soon as nothing more can join them, and
    then let go: how `show` prints a long recording in bounded memory.  A conversation is
    done when none of its journeys is in flight and it has been quiet for CLOSE_NS or
    CLOSE_AFTER newer conversations started (an echo or ARP exchange with its answer: only
    a raw-socket clone of the answer can still come, microseconds later), or quiet for
    OPEN_NS (anything else: an ICMP error comes after ARP gave up), in the recording's own
    time.  The summary stays exact through the Retention it installs, and counts each
    journey by its key as it was handed out (Retention.shown): as it was printed."""

    def __init__(self, corr, key: Callable, keep_journeys: int = KEEP_JOURNEYS // 2,
                 keep_events: int = KEEP_EVENTS // 2):
        self.corr = corr
        self.retention = Retention(corr, key, keep_journeys, keep_events)
        self.done_id = 0  # conversations up to this id have been handed out
        corr.may_forget = lambda j: j.conversation is None or j.conversation.id <= self.done_id

    def ready(self, now: int | None = None):
        """Conversations done by `now` (ns, the last event's time), in order; None: all the rest."""
        out = []
        for conv in self.corr.conversations:
            if conv.id <= self.done_id:
                continue
            if now is not None and not _done(conv, now, self.corr.conversations[-1].id - conv.id):
                break
            out.append(conv)
            self.done_id = conv.id
        self.retention.shown(j for conv in out for j in conv.journeys)
        return out

    def counts(self) -> Counter:
        return self.retention.counts()


def _done(conv, now: int, newer: int) -> bool:
    last = conv.start
    for j in conv.journeys:
        if j.live and now - j.last <= OPEN_NS:  # in flight (unless its end was lost long ago)
            return False
        last = max(last, j.last)
    answered = any(j.role in ("reply", "error", "arp reply") for j in conv.journeys)
    if answered and newer >= CLOSE_AFTER:
        return True
    return now - last > (CLOSE_NS if answered else OPEN_NS)
