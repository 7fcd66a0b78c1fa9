"""The rule index (rules.candidates) against the whole table: on every recorded trace, and
at several points while each is fed (journeys still in flight, answers not yet seen),
every journey gets the same rule, text, advice, label and note whether `evaluate` tries
only the candidates of its end and packet class or every rule in order.  This is the
witness that each rule's `ends` and `packets` are implied by its `when`."""
from __future__ import annotations

import pytest

from conftest import COMPAT1, TRACES
from vethtrace.tracer import recording, rules
from vethtrace.tracer.correlate import Correlator

ALL = sorted([*TRACES.rglob("*.jsonl"), *COMPAT1.rglob("*.jsonl")])


def _every_rule(j, corr):
    """What evaluate answered before the index: the first rule of the whole table."""
    return rules._first(rules.RULES, rules.Facts(j, corr))


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (a.rule.id, a.text, a.advice, a.label, a.note) == (b.rule.id, b.text, b.advice, b.label, b.note)


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_index_gives_the_verdict_of_the_whole_table(path):
    rec = recording.read(str(path))
    corr = Correlator(rec.context, namespaces=rec.namespaces)
    n = len(rec.events)
    cuts = sorted({n * k // 8 for k in range(1, 9)} | {1, 2, 3} if n > 3 else {n})
    done, checked = 0, 0
    for cut in cuts:
        corr.feed(rec.events[done:cut])
        done = cut
        for j in corr.journeys:
            indexed = rules._first(rules.candidates(rules.Facts(j, corr).kind, rules.packet_class(j.pkt)),
                                   rules.Facts(j, corr))
            whole = _every_rule(j, corr)
            assert _same(indexed, whole), (path.name, cut, j, indexed and indexed.rule.id, whole and whole.rule.id)
            checked += 1
    assert checked


def test_candidates_keep_the_table_order_and_end_with_the_general_cases():
    ids = [r.id for r in rules.RULES]
    for kind in ("kfree", "consume", ""):
        for cls in ("none", "arp", "other", 1, 6, 17, 58, 47):
            got = [r.id for r in rules.candidates(kind, cls)]
            assert got == sorted(got, key=ids.index)
            assert "delivered" in got and "in-flight" in got  # every journey still gets a rule
    assert "consumed" in [r.id for r in rules.candidates("consume", 1)]
    assert "dropped" in [r.id for r in rules.candidates("kfree", "none")]
