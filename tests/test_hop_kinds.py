"""Hop kinds are typed (HopKind), on every recorded trace, without root: every hop the
correlator makes has one, and the router lab's forwarding step is the FORWARD hop the
diagrams and labels read."""
from __future__ import annotations

import pytest

from conftest import TRACES
from experiments import correlate
from vethtrace.tracer import recording
from vethtrace.tracer.correlate import HopKind

ALL = sorted(str(p.relative_to(TRACES).with_suffix("")) for p in TRACES.rglob("*.jsonl"))


def load(name):
    return correlate(recording.read(str(TRACES / f"{name}.jsonl")))


@pytest.mark.parametrize("name", ALL)
def test_every_hop_has_a_hop_kind(name):
    corr = load(name)
    for j in corr.journeys:
        for h in j.hops:
            assert type(h.kind) is HopKind, (name, j.summary, h, h.kind)


def test_forwarding_hop():
    corr = load("netns-router")
    hops = [h for j in corr.journeys for h in j.hops if h.kind == HopKind.FORWARD]
    assert hops and all(h.place == ("stack", "ip_forward") for h in hops)
