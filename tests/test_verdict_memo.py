"""Verdicts are made once per state of the correlator (tracer.verdict, Correlator.version) and
made again when that state changes; wrap() gives the same lines on its one-line path as word by
word.  Root-free: recorded traces.  The witness is a verdict made from scratch by the rules
(tracer.rules.evaluate) on the same state."""
from __future__ import annotations

from conftest import TRACES
from vethtrace.tracer import recording, rules
from vethtrace.tracer.correlate import Correlator
from vethtrace.tracer.losses import LossWindows
from vethtrace.tracer.verdict import verdict
from vethtrace.ui.text import Style


def _fresh(j, corr):
    m = rules.evaluate(j, corr)
    return (m.rule.id, m.text) if m is not None else None


def test_a_request_verdict_is_made_again_once_its_reply_is_fed():
    rec = recording.read(str(TRACES / "exp2.jsonl"))
    corr = Correlator(rec.context, namespaces=rec.namespaces)
    events = rec.events
    # up to the request's end, before the reply is seen
    first_reply = next(i for i, e in enumerate(events) if e.pkt is not None and e.pkt.is_echo
                       and not e.pkt.is_echo_request)
    corr.feed(events[:first_reply])
    request = next(j for j in corr.journeys if j.role == "request")
    before = verdict(request, corr)
    assert verdict(request, corr) is before  # asked again at the same state: the same verdict
    assert (before.rule, before.text) == _fresh(request, corr)
    corr.feed(events[first_reply:])
    after = verdict(request, corr)
    assert after is not before
    assert (after.rule, after.text) == _fresh(request, corr)
    assert after.rule != before.rule  # the reply answered it


def test_loss_windows_change_the_state():
    rec = recording.read(str(TRACES / "exp2.jsonl"))
    corr = Correlator(rec.context, namespaces=rec.namespaces)
    corr.feed(rec.events)
    j = corr.journeys[0]
    version = corr.version
    corr.losses = LossWindows()
    assert corr.version != version  # another object
    version = corr.version
    corr.losses.add(j.start, j.last)
    assert corr.version != version  # a window more
    version = corr.version
    corr.losses.observe(5, j.last + 10)
    corr.losses.observe(6, j.last + 20)
    assert corr.version != version  # a window grown or added


def test_one_line_wrap_is_the_word_by_word_one():
    segments_cases = [
        ("    ", (("ICMP echo request 192.168.2.11 > 192.168.2.1", None),)),
        ("", (("a  b   ", "1"), ("   ", None), ("c", "1"), (" d ", "2"), ("", None), ("e", None))),
        ("  x ", (("   lead", "31"), ("trail   ", "31"), ("tab\there", None))),
        ("", ()),
        ("p", (("   ", "2"),)),
    ]
    for colour in (False, True):
        for width in (None, 8, 200):
            style = Style(colour=colour, width=width)
            for prefix, segments in segments_cases:
                fast = style._one_line(prefix, segments)
                if fast is None:
                    continue
                # the word-by-word path, with the one-line path turned off
                style._one_line = lambda *a: None
                try:
                    slow = style.wrap(prefix, *segments)
                finally:
                    del style._one_line
                assert [fast] == slow, (colour, width, prefix, segments)
    assert Style(colour=False, width=None)._one_line("", (("a\tb", None),)) is None  # tabs: word by word
