"""`vethtrace ping`'s view: ping's own lines, and under each the conversations that explain it."""
from __future__ import annotations

import re
import sys

from ..tracer.correlate import Correlator
from ..tracer.verdict import conversation_outcome
from .text import Style, conversation_lines

SEQ_RE = re.compile(rb"icmp_seq=(\d+)")
TARGET_RE = re.compile(rb"^PING \S+ \(([0-9.]+)\)")


class PingView:
    """Prints ping's lines, and under each one the conversations that explain it."""

    def __init__(self, corr: Correlator, style: Style):
        self.corr, self.style = corr, style
        self.target: str | None = None
        self.shown: set[int] = set()
        self.kept_failures: list[list[str]] = []  # failures forgotten by the correlator before rest()
        self.unlisted = 0                          # other conversations forgotten unshown

    def forgotten(self, convs, limit: int = 12) -> None:
        """Conversations the correlator lets go (tracer.retention) before ping printed a
        line for them: the first `limit` failures are rendered now for rest(), the others
        only counted."""
        for conv in convs:
            if conv.id in self.shown:
                continue
            self.shown.add(conv.id)
            if len(self.kept_failures) < limit and conversation_outcome(conv, self.corr).failure:
                self.kept_failures.append(conversation_lines(conv, self.corr, self.style))
            else:
                self.unlisted += 1

    def line(self, raw: bytes) -> None:
        if raw.startswith(b"--- ") and b"statistics" in raw:
            self.rest()  # explain what ping never printed a line for, before its summary
        print(raw.decode(errors="replace"), flush=True)
        m = TARGET_RE.match(raw)
        if m:
            self.target = m.group(1).decode()
        m = SEQ_RE.search(raw)
        if not m:
            return
        conv = self.corr.echo(int(m.group(1)), self.target)
        self.show_background(before=conv.start if conv else None)
        if conv is not None:
            self.show(conv)

    def explained(self, raw: bytes) -> bool:
        """Has the packet behind a line of ping's (a reply or an error) been seen arriving?"""
        m = SEQ_RE.search(raw)
        if not m:
            return True
        conv = self.corr.echo(int(m.group(1)), self.target)
        return conv is not None and any(j.delivered for j in conv.journeys if j.role in ("reply", "error"))

    def show_background(self, before: int | None = None) -> None:
        """ARP exchanges and other packets that happened before, not yet shown."""
        for conv in self.corr.conversations:
            if conv.id in self.shown or conv.kind == "echo":
                continue
            if before is not None and conv.start > before and conv.kind != "arp":
                continue
            self.show(conv)

    def show(self, conv) -> None:
        self.shown.add(conv.id)
        for text in conversation_lines(conv, self.corr, self.style):
            print(text)
        sys.stdout.flush()

    def rest(self, limit: int = 12) -> None:
        """What ping printed no line for; a flood would print thousands, so beyond `limit`
        only the failures are shown (up to `limit`) and the rest is counted."""
        todo = [c for c in self.corr.conversations if c.id not in self.shown]
        kept, self.kept_failures = self.kept_failures, []
        if len(todo) + len(kept) + self.unlisted > limit:
            for block in kept:
                print("\n".join(block))
            failed = [c for c in todo if conversation_outcome(c, self.corr).failure][:max(0, limit - len(kept))]
            for conv in failed:
                self.show(conv)
            print(self.style.dim(f"    ({len(todo) - len(failed) + self.unlisted} more conversations not listed; "
                                 f"the summary below counts every path, `--record FILE` keeps them all)"))
            self.unlisted = 0
            self.shown.update(c.id for c in todo)
            return
        for block in kept:
            print("\n".join(block))
        for conv in todo:
            self.show(conv)
