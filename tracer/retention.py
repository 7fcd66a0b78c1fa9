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

KEEP_JOURNEYS = 4_000   # journeys a live command keeps (a view shows far fewer)
KEEP_EVENTS = 40_000    # events held by those journeys, at most (~1 KB each with packets)


class Retention:
    """Bounds a Correlator and keeps an exact count of the journeys it forgets."""

    def __init__(self, corr, key: Callable, keep_journeys: int = KEEP_JOURNEYS, keep_events: int = KEEP_EVENTS,
                 on_conversations: Callable | None = None):
        self.corr, self.key = corr, key
        self.forgotten: Counter = Counter()  # summary key -> journeys forgotten
        self.on_conversations = on_conversations
        corr.keep, corr.keep_events = keep_journeys, keep_events
        corr.on_forget = self._forget

    def _forget(self, journeys, conversations) -> None:
        key = self.key
        self.forgotten.update(key(j) for j in journeys)
        if conversations and self.on_conversations is not None:
            self.on_conversations(conversations)

    def counts(self) -> Counter:
        """Every journey seen, by summary key: the forgotten and the ones still kept."""
        out = Counter(self.forgotten)
        out.update(self.key(j) for j in self.corr.journeys)
        return out
