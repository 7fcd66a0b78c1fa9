"""Packet identity survives reuse, replayed from recorded traces (no root).

skb addresses and heads are reused as soon as they are freed: an event at a known address
or head continues a journey only while the content, the protocol and the namespace agree
(tracer/correlate.py `continues`, `_continuation`).  Witnesses: tests/traces/identity
(README.md there says how each was recorded).
"""
from __future__ import annotations

import pytest

from conftest import TRACES
from experiments import correlate
from vethtrace.tracer import recording
from vethtrace.tracer.correlate import Correlator
from vethtrace.tracer.events import PF_ANSWER, PF_CLONED, PF_KNOWN, PF_NEW, PACKET_KINDS

IDENTITY = TRACES / "identity"
REUSE = IDENTITY / "two-netns-head-reuse.jsonl"
SCOPE = IDENTITY / "two-netns-scope.jsonl"
REQUEST = ["veth0 (veth_xmit)", "veth1", "stack: icmp_rcv"]
REPLY = ["veth1 (veth_xmit)", "veth0", "stack: icmp_rcv", "socket (ping)"]


def names(j) -> list[str]:
    return [h.name for h in j.hops]


def one_protocol(j) -> bool:
    return len({e.protocol for e in j.events if e.protocol}) <= 1


def crossings_ok(j) -> bool:
    """Every change of namespace within a journey follows a transmit (into a veth peer), or
    starts a clone's events."""
    by_skb: dict[int, object] = {}
    for e in j.events:
        last = by_skb.get(e.skb)
        if last is not None and last.netns and e.netns and last.netns != e.netns and last.kind != "xmit":
            return False
        by_skb[e.skb] = e
    return True


def arp_probes(corr, sender: str):
    return [j for j in corr.journeys if j.pkt is not None and j.pkt.l3 == "ARP" and j.pkt.is_arp_request
            and j.pkt.src == sender]


def test_the_reuse_trace_is_a_witness():
    """The trace holds what the tests below are about: B's ARP probe and A's ARP reply to it
    are fresh skbs with the heads echo packets had just freed, in the other namespace."""
    rec = recording.read(str(REUSE))
    freed: dict[int, object] = {}
    reused = []
    for e in rec.events:
        if e.kind in ("consume", "kfree") and e.pkt is not None:
            freed[e.head] = e
        elif e.kind == "xmit" and e.pkt is not None and e.pkt.l3 == "ARP" and e.head in freed:
            gone = freed[e.head]
            if gone.pkt.l3 == "IPv4" and e.ts - gone.ts < 1_000_000_000:
                reused.append((gone, e))
    assert {(g.netns != e.netns) for g, e in reused} >= {True}, reused  # across namespaces, too
    assert len(reused) >= 2


def test_arp_probe_reusing_a_freed_head_is_its_own_journey():
    corr = correlate(recording.read(str(REUSE)))
    for j in corr.journeys:
        assert one_protocol(j), (j.summary, names(j))
    (probe,) = arp_probes(corr, "10.200.1.2")  # B's, on the head of echo reply seq 2
    assert names(probe) == ["veth1 (veth_xmit)", "veth0", "stack: arp_rcv"], names(probe)
    (answer,) = [j for j in corr.journeys if j.pkt is not None and j.pkt.is_arp_reply and j.pkt.src == "10.200.1.1"]
    assert names(answer) == ["veth0 (veth_xmit)", "veth1", "stack: arp_rcv"], names(answer)  # A's, on request seq 2's
    assert probe.conversation is answer.conversation and probe.conversation.kind == "arp"
    echoes = [c for c in corr.conversations if c.kind == "echo"]
    assert len(echoes) == 6
    for c in echoes:
        (req,), (rep,) = c.with_role("request"), c.with_role("reply")
        assert names(req) == REQUEST and req.end.where.startswith("icmp_rcv"), (names(req), req.end.where)
        assert names(rep) == REPLY, names(rep)


def test_no_journey_changes_namespace_without_a_device_step():
    corr = correlate(recording.read(str(REUSE)))
    for j in corr.journeys:
        assert crossings_ok(j), (j.summary, names(j))


def test_a_lost_free_does_not_join_the_next_packet_at_that_address_in_another_namespace():
    """The trace with one event taken out, as when the kernel never reports a free (ring
    buffer full, or a TCP free): the consume of echo request seq 2 in B.  Its skb address is
    then used by the raw-socket copy of the reply, delivered in A: same protocol, no device
    step in between, another packet."""
    rec = recording.read(str(REUSE))
    events = list(rec.events)
    (gone,) = [i for i, e in enumerate(events) if e.kind == "consume" and e.pkt is not None
               and e.pkt.icmp_type == 8 and e.pkt.icmp_seq == 2]
    nxt = next(e for e in events[gone + 1:] if e.skb == events[gone].skb)
    assert nxt.kind == "deliver" and nxt.netns != events[gone].netns  # what this test is about
    del events[gone]
    corr = Correlator(rec.context)
    corr.feed(events)
    conv = next(c for c in corr.conversations if c.kind == "echo" and c.key[3] == 2)
    (req,), (rep,) = conv.with_role("request"), conv.with_role("reply")
    # its end was not seen (so neither was icmp_rcv: the stack hop is named from what was)
    assert names(req)[:2] == REQUEST[:2] and len(req.hops) == 3 and req.end is None, names(req)
    assert req.hops[2].place[0] == "stack", names(req)
    assert names(rep) == REPLY, names(rep)
    for j in corr.journeys:
        assert crossings_ok(j) and one_protocol(j), (j.summary, names(j))


def test_scope_follows_packets_into_the_peer_namespace_and_their_answers_back():
    """Recorded in A with the default scope: each request is followed into B, each reply
    is admitted in B (an answer) and followed into A, and B's own ARP probe towards A too."""
    rec = recording.read(str(SCOPE))
    a = rec.context["netns"]
    packet_events = [e for e in rec.events if e.kind in PACKET_KINDS]
    assert all(e.arg2 & PF_KNOWN for e in packet_events)
    (b,) = {e.netns for e in packet_events} - {a}
    corr = correlate(rec)
    echoes = [c for c in corr.conversations if c.kind == "echo"]
    assert len(echoes) == 6
    for c in echoes:
        (req,), (rep,) = c.with_role("request"), c.with_role("reply")
        assert [(h.name, h.netns) for h in req.hops] == list(zip(REQUEST, (a, b, b)))
        assert [(h.name, h.netns) for h in rep.hops] == list(zip(REPLY, (b, a, a, a)))
        first = rep.events[0]
        assert first.netns == b and first.arg2 & PF_NEW and first.arg2 & PF_ANSWER
    (probe,) = arp_probes(corr, "10.200.1.2")
    assert [(h.name, h.netns) for h in probe.hops] == [("veth1 (veth_xmit)", b), ("veth0", a), ("stack: arp_rcv", a)]


def test_a_fresh_skb_on_a_dead_head_is_not_a_clone():
    """With the probes' flags, a head continues a journey only for a clone (PF_CLONED): the
    raw-socket copy of each echo reply does; nothing else that reuses a head does."""
    rec = recording.read(str(SCOPE))
    corr = correlate(rec)
    for c in (c for c in corr.conversations if c.kind == "echo"):
        (rep,) = c.with_role("reply")
        skbs = {e.skb for e in rep.events}
        assert len(skbs) == 2, skbs  # the reply and its clone for the raw socket
        deliver = next(e for e in rep.events if e.kind == "deliver")
        assert deliver.arg2 & PF_CLONED
    for j in corr.journeys:
        assert one_protocol(j) and crossings_ok(j), (j.summary, names(j))


@pytest.mark.parametrize("trace", [REUSE, SCOPE], ids=lambda p: p.stem)
def test_every_packet_has_one_journey_per_exchange(trace):
    corr = correlate(recording.read(str(trace)))
    arp = [j for j in corr.journeys if j.pkt is not None and j.pkt.l3 == "ARP"]
    assert len(arp) == 4, [(j.summary, names(j)) for j in arp]  # two requests, two replies
