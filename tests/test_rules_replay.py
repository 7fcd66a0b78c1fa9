"""The verdict rules table on every recorded trace, without root: every verdict (of a
journey and of a conversation) names the rule that decided it, and the article's
experiments are decided by the ARP and echo rules their cases are about."""
from __future__ import annotations

from collections import Counter

import pytest

from conftest import TRACES
from experiments import correlate
from vethtrace.tracer import recording, rules
from vethtrace.tracer.correlate import Role
from vethtrace.tracer.losses import LossWindows
from vethtrace.tracer.verdict import DELIVERED, IN_FLIGHT, INCOMPLETE, conversation_outcome, verdict

ALL = sorted(str(p.relative_to(TRACES).with_suffix("")) for p in TRACES.rglob("*.jsonl"))
CONVERSATION_RULES = {"echo.reply.delivered", "echo.error.answered", "conversation.empty"}


def load(name):
    return correlate(recording.read(str(TRACES / f"{name}.jsonl")))


@pytest.mark.parametrize("name", ALL)
def test_every_verdict_has_a_rule_id(name):
    corr = load(name)
    ids = {r.id for r in rules.RULES + rules.LOSSES}
    assert corr.journeys
    for j in corr.journeys:
        v = verdict(j, corr)
        assert v.rule in ids, (name, j.id, v)
        assert rules.evaluate(j, corr).rule.outcome == v.outcome
    for c in corr.conversations:
        v = conversation_outcome(c, corr)
        assert v.rule in ids | CONVERSATION_RULES, (name, c.kind, v)


def test_rule_ids_are_unique_and_general_cases_come_last():
    ids = [r.id for r in rules.RULES]
    assert len(ids) == len(set(ids)) and not set(ids) & {r.id for r in rules.LOSSES}
    # the specific rules (TCP, UDP, netfilter, ...) are tried before the general ones
    assert ids.index("tcp.syn.no-listener") < ids.index("dropped") and ids[-1] == "consumed"


def by_role(name):
    corr = load(name)
    return corr, Counter((str(j.role), verdict(j, corr).rule) for j in corr.journeys)


def test_exp2_answered_arp_and_echo():
    corr, got = by_role("exp2")
    assert got == Counter({("arp request", "arp.answered"): 1, ("arp reply", "arp.reply.processed"): 1,
                           ("request", "echo.answered"): 2, ("reply", "delivered"): 2})
    echo = [c for c in corr.conversations if c.kind == "echo"]
    assert [conversation_outcome(c, corr).rule for c in echo] == ["echo.reply.delivered"] * 2


@pytest.mark.parametrize("name,arp_rule", [("exp1", "arp.unanswered.no-owner"), ("exp3", "arp.unanswered.no-owner"),
                                           ("exp2-default", "arp.unanswered.accept_local")])
def test_unanswered_arp_cases(name, arp_rule):
    corr, got = by_role(name)
    assert got == Counter({("arp request", arp_rule): 3, ("request", "neigh.failed"): 2,
                           ("error", "icmp.error.read"): 2})
    # the echo request waited for that ARP: its advice is the ARP request's
    req = next(j for j in corr.journeys if j.role == Role.REQUEST)
    arp = next(j for j in corr.journeys if j.role == Role.ARP_REQUEST)
    assert verdict(arp, corr).advice and verdict(req, corr).advice == verdict(arp, corr).advice
    echo = [c for c in corr.conversations if c.kind == "echo"]
    assert {conversation_outcome(c, corr).rule for c in echo} == {"echo.error.answered"}


def test_accept_local_rule_reads_the_receiving_device():
    corr = load("exp2-default")
    arp = next(j for j in corr.journeys if j.role == Role.ARP_REQUEST)
    m = rules.evaluate(arp, corr)
    assert m.rule.id == "arp.unanswered.accept_local" and "sysctl.accept_local" in m.rule.reads
    assert m.rule.tag == rules.UNANSWERED and verdict(arp, corr).failure
    rx = m.facts.j.end.dev or m.facts.j.hops[-2].dev
    assert f"net.ipv4.conf.{rx}.accept_local=1" in m.advice


def test_no_context_recorded():
    _, got = by_role("netns-wrong-fix")
    assert got[("arp request", "arp.unanswered.no-context")] == 2


def test_a_verdict_made_around_a_loss_leaves_no_reference_cycle():
    """A journey's verdict around lost events must not tie it (and its events, and the
    correlator) into a cycle: forgotten, it is freed at once, not when the collector runs,
    which replay pauses (a 260k-event show with one loss window grew 63 -> 257 MB)."""
    import gc
    import weakref
    from vethtrace.tracer import rules
    corr = load("exp2")
    reply = next(j for j in corr.journeys if j.role == Role.REPLY)
    corr.losses = LossWindows()
    corr.losses.add(reply.start, reply.start + 1)
    gc.collect()
    gc.disable()
    try:
        m = rules.evaluate(reply, corr)
        assert m.rule.id == "events.lost" and m.guess is not None
        facts = weakref.ref(m.facts)
        del m
        assert facts() is None, gc.get_referrers(facts())
    finally:
        gc.enable()


def test_lost_events_are_a_verdict_of_the_model():
    """Around a loss the verdict is the model's INCOMPLETE (rule events.lost), with the
    verdict of what was seen kept as its guess; the conversation is incomplete too.  A
    journey with no end seen and a loss after it: events.lost.end."""
    corr = load("exp2")
    before = {j.id: verdict(j, corr) for j in corr.journeys}
    reply = next(j for j in corr.journeys if j.role == Role.REPLY)
    corr.losses = LossWindows()
    corr.losses.add(reply.start, reply.start + 1)
    v = verdict(reply, corr)
    assert v.outcome == INCOMPLETE and v.rule == "events.lost" and not v.failure
    assert v.guess.rule == "delivered" and v.guess.outcome == DELIVERED
    assert v.guess.text in v.text
    untouched = [j for j in corr.journeys if not corr.losses.journey(j)]
    assert untouched and all(verdict(j, corr) == before[j.id] for j in untouched)
    c = conversation_outcome(reply.conversation, corr)
    assert c.outcome == INCOMPLETE and c.rule == "events.lost" and c.guess.rule == "echo.reply.delivered"
    # no end seen, and events lost after it was last seen
    reply.end = None
    reply.delivered.clear()
    corr.losses = LossWindows()
    corr.losses.add(reply.last + 10_000_000_000, reply.last + 10_000_000_001)
    v = verdict(reply, corr)
    assert v.rule == "events.lost.end" and v.guess.outcome == IN_FLIGHT


def test_a_benign_kernel_detail_is_a_note_of_the_verdict():
    corr = load("exp2")
    reply = next(j for j in corr.journeys if j.role == Role.REPLY)
    v = verdict(reply, corr)
    assert v.rule == "delivered" and v.text.endswith("through its raw socket")
    assert "NO_SOCKET" in v.note and "NO_SOCKET" not in v.text
