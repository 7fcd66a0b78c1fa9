"""Hop kinds are typed (HopKind), on every recorded trace, without root: every hop the
correlator makes has one, and the bridge and router labs' forwarding steps are the BRIDGE
and FORWARD hops the diagrams and labels read."""
from __future__ import annotations

import pytest

from conftest import TRACES
from vethtrace.tracer.correlate import HopKind
from vethtrace.tracer.sources import replay

ALL = sorted(str(p.relative_to(TRACES).with_suffix("")) for p in TRACES.rglob("*.jsonl"))


def load(name):
    return replay(str(TRACES / f"{name}.jsonl"))[1]


@pytest.mark.parametrize("name", ALL)
def test_every_hop_has_a_hop_kind(name):
    corr = load(name)
    for j in corr.journeys:
        for h in j.hops:
            assert type(h.kind) is HopKind, (name, j.summary, h, h.kind)


@pytest.mark.parametrize("name,kind,place", [("netns-bridge", HopKind.BRIDGE, ("bridge", "br0")),
                                             ("netns-router", HopKind.FORWARD, ("stack", "ip_forward"))])
def test_forwarding_hops(name, kind, place):
    corr = load(name)
    hops = [h for j in corr.journeys for h in j.hops if h.kind == kind]
    assert hops and all(h.place == place for h in hops), name
