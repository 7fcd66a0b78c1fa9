"""`vethtrace ping`'s view: ping's own lines, and under each the conversations that explain it."""
from __future__ import annotations

import re
import sys

from ..tracer.correlate import Correlator
from ..tracer.verdict import conversation_outcome, verdict
from .text import Style, conversation_lines

SEQ_RE = re.compile(rb"icmp_seq=(\d+)")
# "PING 192.168.2.1 (192.168.2.1) 56(84) bytes ...", "PING fd07::2(fd07::2) 56 data bytes"
TARGET_RE = re.compile(rb"^PING \S+? ?\(([0-9a-fA-F.:]+)\)")
# Background conversations that are normal and say nothing about the ping: without --verbose
# they are one line saying how many, not a block each (the summary still counts their paths).
FOLDED_RULES = {"ipv6.housekeeping": "IPv6 housekeeping of fresh interfaces (multicast listener reports, "
                                     "router solicitations), normal"}


class PingView:
    """Prints ping's lines, and under each one the conversations that explain it."""

    def __init__(self, corr: Correlator, style: Style):
        self.corr, self.style = corr, style
        self.target: str | None = None
        self.shown: set[int] = set()
        self.kept_failures: list[list[str]] = []  # failures forgotten by the correlator before rest()
        self.unlisted = 0                          # other conversations forgotten unshown
        self.folded: dict[str, int] = {}           # FOLDED_RULES id -> packets not listed

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

    def _folded_rule(self, conv) -> str | None:
        """The FOLDED_RULES id that decided all of conv's journeys, if any (never under -v)."""
        if self.style.verbose or conv.kind == "echo" or not conv.journeys:
            return None
        rules = {verdict(j, self.corr).rule for j in conv.journeys}
        rule = rules.pop() if len(rules) == 1 else None
        return rule if rule in FOLDED_RULES else None

    def show(self, conv) -> None:
        self.shown.add(conv.id)
        rule = self._folded_rule(conv)
        if rule is not None:
            self.folded[rule] = self.folded.get(rule, 0) + len(conv.journeys)
            return
        for text in conversation_lines(conv, self.corr, self.style):
            print(text)
        sys.stdout.flush()

    def rest(self, limit: int = 12) -> None:
        """What ping printed no line for; a flood would print thousands, so beyond `limit`
        only the failures are shown (up to `limit`) and the rest is counted."""
        try:
            self._rest(limit)
        finally:
            self._say_folded()

    def _say_folded(self) -> None:
        for rule, n in self.folded.items():
            packets = "1 packet" if n == 1 else f"{n} packets"
            print("\n".join(self.style.wrap("    ", (f"({FOLDED_RULES[rule]}: {packets} not listed; --verbose "
                                                    f"lists them)", "2"))))
        self.folded = {}

    def _rest(self, limit: int) -> None:
        todo = [c for c in self.corr.conversations if c.id not in self.shown]
        kept, self.kept_failures = self.kept_failures, []
        if len(todo) + len(kept) + self.unlisted > limit:
            for block in kept:
                print("\n".join(block))
            failed = [c for c in todo if conversation_outcome(c, self.corr).failure][:max(0, limit - len(kept))]
            for conv in failed:
                self.show(conv)
            print("\n".join(self.style.wrap("    ", (f"({len(todo) - len(failed) + self.unlisted} more conversations "
                                                    f"not listed; the summary below counts every path, `--record "
                                                    f"FILE` keeps them all)", "2"))))
            self.unlisted = 0
            self.shown.update(c.id for c in todo)
            return
        for block in kept:
            print("\n".join(block))
        for conv in todo:
            self.show(conv)
