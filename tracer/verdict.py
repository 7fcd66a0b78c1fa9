"""Verdicts: how a journey ended, in words a user can act on.

A journey's verdict is the first rule of the table in tracer/rules.py that holds for it
(every verdict carries its rule's id); a conversation's verdict is its worst journey's,
or for an echo, whether its reply was delivered or an ICMP error answered it.  When the
kernel lost events around them, both are INCOMPLETE (rules.LOSSES), with what was seen as
the `guess`.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import rules
from .correlate import Correlator, Journey
from .rules import PARKED, REASON_HINTS, UNANSWERED, Context, Outcome, context_of  # noqa: F401 (re-exported)

# Outcomes, from good to bad; renderers colour by these.
DELIVERED, ANSWERED, CONSUMED, IN_FLIGHT, INCOMPLETE, DROPPED = (
    Outcome.DELIVERED, Outcome.ANSWERED, Outcome.CONSUMED, Outcome.IN_FLIGHT, Outcome.INCOMPLETE, Outcome.DROPPED)

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
    note: str = ""  # a benign kernel detail the text shows only under -v
    guess: "Verdict | None" = None  # INCOMPLETE: the verdict of what was seen

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
    v = _of(rules.evaluate(j, corr))
    j.verdict_memo = (version, v)
    return v


def _of(m: "rules.Match | None") -> Verdict:
    if m is None:  # the table's general cases place every journey the correlator makes
        return Verdict(IN_FLIGHT, "no end seen")
    return Verdict(m.rule.outcome, m.text, m.advice, m.rule.tag, m.rule.id, m.label, m.note,
                   _of(m.guess) if m.guess is not None else None)


def conversation_outcome(conv, corr: Correlator) -> Verdict:
    """One verdict for a whole conversation (the worst of its journeys, or success);
    INCOMPLETE if the kernel lost events around one of them, with that as the guess."""
    verdicts = [verdict(j, corr) for j in conv.journeys]
    seen = _seen_outcome(conv, [v.guess or v for v in verdicts])
    lost = next((v for v in verdicts if v.outcome == INCOMPLETE), None)
    if lost is None:
        return seen
    return Verdict(INCOMPLETE, f"incomplete: the kernel lost events around this conversation; from what was seen: "
                               f"{seen.text}", lost.advice, rule=lost.rule, label=lost.label, guess=seen)


def _seen_outcome(conv, verdicts: list[Verdict]) -> Verdict:
    """The conversation's verdict from its journeys' (in the order of conv.journeys)."""
    if conv.kind == "echo":
        of = dict(zip(map(id, conv.journeys), verdicts))
        if any(of[id(r)].outcome == DELIVERED for r in conv.with_role("reply")):
            return Verdict(DELIVERED, "echo reply delivered", rule="echo.reply.delivered")
        for j in conv.with_role("error"):
            t = j.pkt.summary().split(" (about")[0]
            return Verdict(DROPPED, f"answered with an error: {t}", rule="echo.error.answered")
    for v in verdicts:
        if v.failure:
            return v
    return verdicts[-1] if verdicts else Verdict(IN_FLIGHT, "nothing seen", rule="conversation.empty")
