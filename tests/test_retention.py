"""Bounded memory with exact summaries (tracer.retention), `show` streamed, and journeys
around lost events shown incomplete (tracer.losses).  Root-free: recorded traces.

The witness for each bounded path is the unbounded one it replaces: the correlator fed the
whole recording with nothing forgotten (what the replay tests and the live experiments check
against tcpdump).  tests/traces/flood-2000.jsonl.gz: `vethtrace record -o FILE -- ping -f -q
-c 2000 -I veth0 192.168.2.1` in a two-ips-fixed lab (26,002 events, none lost): long enough
that conversations are printed and forgotten while it is read."""
from __future__ import annotations

import contextlib
import gzip
import io
import shutil
from collections import Counter

import pytest

from conftest import COMPAT1, ROOT, TRACES
from vethtrace.cli import show
from vethtrace.tracer import recording
from vethtrace.tracer.correlate import Correlator
from vethtrace.tracer.losses import MARGIN_NS, LossWindows
from vethtrace.tracer.retention import ConversationStream, Retention
from vethtrace.tracer.sources import replay
from vethtrace.ui.text import Style, conversation_lines, journey_lines, path_key, summary_lines

FLOOD = TRACES / "flood-2000.jsonl.gz"
SMALL = sorted(TRACES.glob("*.jsonl")) + sorted(COMPAT1.glob("*.jsonl")) + sorted((ROOT / "tests" / "data").rglob("*.jsonl"))


@pytest.fixture(scope="module")
def flood(tmp_path_factory):
    path = tmp_path_factory.mktemp("flood") / "flood-2000.jsonl"
    with gzip.open(FLOOD, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def whole_show(path) -> str:
    """`show`'s text as it was made before streaming: everything read, then printed."""
    rec, corr = replay(str(path))
    style = Style(colour=False)
    out = [style.dim(f"recording: {' '.join(rec.header.get('command') or []) or 'no command'}; kernel "
                     f"{rec.header.get('kernel', '?')}; probes {rec.header.get('mechanism', '?')}")]
    for conv in corr.conversations:
        out.append(f"[{conv.id}] {conv.title}")
        out += conversation_lines(conv, corr, style)
    out += ["", *summary_lines(corr, style, rec.lost)]
    return "\n".join(out) + "\n"


def streamed_show(path, monkeypatch) -> str:
    monkeypatch.setenv("NO_COLOR", "1")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert show._show_streamed(str(path)) == 0
    return buf.getvalue()


@pytest.mark.parametrize("path", SMALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_streamed_show_prints_what_the_whole_replay_printed(path, monkeypatch):
    assert streamed_show(path, monkeypatch) == whole_show(path)


def test_streamed_show_of_a_flood_is_the_same_and_forgets_as_it_goes(flood, monkeypatch):
    forgotten = []
    real = ConversationStream.__init__

    def spy(self, corr, key, *a, **kw):
        real(self, corr, key, *a, **kw)
        forgotten.append(self)
    monkeypatch.setattr(ConversationStream, "__init__", spy)
    text = streamed_show(flood, monkeypatch)
    assert text == whole_show(flood)
    stream = forgotten[0]
    assert stream.corr.pruned > 1500  # journeys were let go while reading (4,000 in all)
    assert len(stream.corr.journeys) <= stream.corr.keep * 1.25
    assert "--- vethtrace: 4000 packets, 2 distinct paths, 26002 events, 0 lost ---" in text


def test_retention_keeps_summary_exact_while_forgetting(flood):
    rec = recording.read(str(flood))
    whole = Correlator(rec.context)
    whole.feed(rec.events)
    expected = Counter(path_key(j, whole) for j in whole.journeys)

    bounded = Correlator(rec.context)
    gone_convs = []
    kept = Retention(bounded, lambda j: path_key(j, bounded), keep_journeys=300, keep_events=3000,
                     on_conversations=gone_convs.extend)
    held = 0
    for k in range(0, len(rec.events), 512):  # as a live command feeds it, a batch at a time
        bounded.feed(rec.events[k:k + 512])
        held = max(held, len(bounded.journeys), sum(len(j.events) for j in bounded.journeys) // 10)
    assert bounded.pruned > 3000 and len(gone_convs) > 1000
    assert held <= 300 * 1.25 + 512
    assert kept.counts() == expected
    assert sum(expected.values()) == 4000
    lines = summary_lines(bounded, Style(colour=False), rec.lost, counts=kept.counts())
    assert lines == summary_lines(whole, Style(colour=False), rec.lost)


def test_loss_windows_from_the_lost_counter():
    w = LossWindows()
    w.observe(0, 1_000)
    w.observe(0, 2_000_000)
    assert not w
    w.observe(5, 3_000_000)          # lost between the reads at 2 ms and 3 ms
    w.observe(5, 9_000_000)
    w.observe(7, 10_000_000)         # and between 9 ms and 10 ms
    assert w.as_list() == [[2_000_000, 3_000_000], [9_000_000, 10_000_000]]
    assert w.touches(2_500_000, 2_600_000)
    assert w.touches(3_000_000 + MARGIN_NS - 1, 8_000_000)  # its lost first event may be just before
    assert not w.touches(4_100_000, 7_900_000)               # seen whole between two windows
    assert not w.touches(11_000_000 + MARGIN_NS, 12_000_000 + MARGIN_NS)


def test_journeys_around_lost_events_are_incomplete_never_ticked():
    """exp2-default: ARP retries 1 s apart, then two ICMP errors delivered to ping (✓).  A
    loss while the first error was under way takes the ✓ from the journeys around it, and
    from nothing else."""
    rec = recording.read(str(TRACES / "exp2-default.jsonl"))
    corr = Correlator(rec.context)
    corr.feed(rec.events)
    style = Style(colour=False)
    before = {j.id: journey_lines(j, corr, style) for j in corr.journeys}
    errors = [j for j in corr.journeys if j.role == "error"]
    assert len(errors) == 2 and all("✓" in before[j.id][2] for j in errors)
    corr.losses = LossWindows()
    corr.losses.add(errors[0].start + 100_000, errors[0].start + 200_000)
    for j in corr.journeys:
        after = journey_lines(j, corr, style)
        if j.start <= errors[0].start + 200_000 + MARGIN_NS and j.last >= errors[0].start - MARGIN_NS:
            assert "✓" not in after[2] and "incomplete" in after[2] and after[:2] == before[j.id][:2], after
        else:
            assert after == before[j.id]
    summary = summary_lines(corr, style, 1)
    assert not any("✓" in line for line in summary), summary
    assert any("ICMP host unreachable" in line and "? incomplete (events lost)" in line for line in summary), summary
    assert sum(int(line.split("x", 1)[0]) for line in summary[2:]) == len(corr.journeys)
