"""Verdicts: how a journey ended, in words a user can act on.

A journey's verdict is the first rule of the table in tracer/rules.py that holds for it
(every verdict carries its rule's id); a conversation's verdict is its worst journey's,
or for an echo, whether its reply was delivered or an ICMP error answered it.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import rules
from .correlate import Correlator, Journey
from .rules import PARKED, REASON_HINTS, UNANSWERED, Context, Outcome, context_of  # noqa: F401 (re-exported)

# Outcomes, from good to bad; renderers colour by these.
DELIVERED, ANSWERED, CONSUMED, IN_FLIGHT, DROPPED = (Outcome.DELIVERED, Outcome.ANSWERED, Outcome.CONSUMED,
                                                     Outcome.IN_FLIGHT, Outcome.DROPPED)

# REASON_HINTS, Context, context_of and the tags UNANSWERED/PARKED live with the rules;
# they are imported above for the renderers.


@dataclass
class Verdict:
    outcome: str
    text: str
    advice: str = ""
    tag: str = ""  # UNANSWERED, PARKED, "benign" or ""
    rule: str = ""  # the id of the rule in tracer/rules.py that decided it (conversation ones: below)
    label: str = ""  # the rule's few words for lists, summaries and diagrams ("": renderers make their own)

    @property
    def failure(self) -> bool:
        return self.outcome == DROPPED or self.tag == UNANSWERED


def verdict(j: Journey, corr: Correlator) -> Verdict:
    """The verdict of the first rule of tracer/rules.py that holds for journey j.  Made once
    per state of the correlator (renderers ask several times per journey): do not modify it."""
    version = corr.version
    memo = j.verdict_memo
    if memo is not None and memo[0] == version:
        return memo[1]
    m = rules.evaluate(j, corr)
    if m is None:  # the table's general cases place every journey the correlator makes
        v = Verdict(IN_FLIGHT, "no end seen")
    else:
        v = Verdict(m.rule.outcome, m.text, m.advice, m.rule.tag, m.rule.id, m.label)
    j.verdict_memo = (version, v)
    return v


def conversation_outcome(conv, corr: Correlator) -> Verdict:
    """One verdict for a whole conversation (the worst of its journeys, or success)."""
    verdicts = [verdict(j, corr) for j in conv.journeys]
    if conv.kind == "echo":
        replies = conv.with_role("reply")
        if any(verdict(r, corr).outcome == DELIVERED for r in replies):
            return Verdict(DELIVERED, "echo reply delivered", rule="echo.reply.delivered")
        for j in conv.with_role("error"):
            t = j.pkt.summary().split(" (about")[0]
            return Verdict(DROPPED, f"answered with an error: {t}", rule="echo.error.answered")
    for v in verdicts:
        if v.failure:
            return v
    return verdicts[-1] if verdicts else Verdict(IN_FLIGHT, "nothing seen", rule="conversation.empty")
