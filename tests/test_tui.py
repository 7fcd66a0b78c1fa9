"""The TUI driven by Pilot on the article's recorded experiments (no root): what the list,
detail, path and status widgets hold after keys; snapshots of the main screen, the
detail pane and the help screen (pytest-textual-snapshot; review before --snapshot-update)."""
from __future__ import annotations

import asyncio
import io
import shutil
import sys
import threading
import types
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from rich.console import Console

from conftest import TRACES
from vethtrace.tracer import recording
from vethtrace.tracer.events import Event
from vethtrace.tracer.sources import ReplaySource
from vethtrace.tracer.verdict import INCOMPLETE
from vethtrace.tracer import feed
from vethtrace.ui import tui
from vethtrace.ui.tui import EXPORT_MISSING, Filter, FilterError, HelpScreen, SaveScreen, build_app, schedule
from vethtrace.ui.tui.rows import Row
from vethtrace.ui.tui.widgets import ConversationList

SIZE = (120, 40)


# -- helpers -----------------------------------------------------------------------------
def trace(name: str) -> str:
    return str(TRACES / f"{name}.jsonl")


def facts(name: str) -> tuple[int, str]:
    """(ping's id = its pid, the lab namespace's name) of a recorded trace; the traces are
    re-recorded by the live tests, so these change."""
    rec = recording.read(trace(name))
    echo = next(e.pkt for e in rec.events if e.pkt is not None and e.pkt.icmp_type == 8)
    return echo.icmp_id, rec.context["name"]


def plain(renderable, width: int = 160) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue()


def detail_text(app) -> str:
    return plain(app.query_one("#detail").content)


def path_text(app) -> str:
    return plain(app.query_one("#path").content)


def status(app, name: str) -> str:
    return str(app.query_one(f"#st-{name}").content)


def rows(app) -> list[Row]:
    return app.query_one(ConversationList).rows


def cursor_row(app) -> Row | None:
    return app.query_one(ConversationList).current


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


@asynccontextmanager
async def replayed(name: str):
    """The TUI on a recorded trace, read and shown: (app, pilot)."""
    app = build_app(ReplaySource(trace(name)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        yield app, pilot


async def settle(pilot, cond=None, timeout: float = 10.0) -> None:
    """Wait until the recording is read and shown (or cond() holds), then let messages land."""
    app = pilot.app
    cond = cond or (lambda: app.caught_up)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "the TUI did not catch up"
        await pilot.pause(0.05)
    await pilot.pause(0.15)  # one more tick, and the Highlighted message
    await pilot.pause()


class GatedSource:
    """A recording released on demand, to watch the list grow (and pause it)."""

    def __init__(self, path: str, live: bool = True, lost: int = 0):
        self.rec = recording.read(path)
        self.path = path
        self.context = self.rec.context
        self.mechanism = "tp_btf"
        self.live = live
        self._lost = lost
        self._released = 0
        self._pos = 0
        self._lock = threading.Lock()
        self.closed = 0

    def release(self, upto: int | None = None) -> None:
        with self._lock:
            self._released = len(self.rec.events) if upto is None else upto

    def poll(self, timeout_ms: int = 100):
        with self._lock:
            out = self.rec.events[self._pos:self._released]
            self._pos = max(self._pos, self._released)
        if not out:
            threading.Event().wait(timeout_ms / 1000)
        return out

    @property
    def exhausted(self) -> bool:
        return self._pos >= len(self.rec.events)

    def lost(self):
        return self._lost

    def close(self) -> None:
        self.closed += 1


class ListSource(GatedSource):
    """Events given as a list (a synthetic flood)."""

    def __init__(self, context: dict, events: list, live: bool = True, lost: int = 0):
        self.rec = recording.Recording({"context": context}, events, lost)
        self.path = "flood"
        self.context, self.mechanism, self.live, self._lost = context, "tp_btf", live, lost
        self._lock = threading.Lock()
        self._pos, self._released, self.closed = 0, len(events), 0


def conv_boundary(path: str, conversations: int) -> int:
    """How many events of a recording it takes to complete its first conversations."""
    from vethtrace.tracer.correlate import Correlator
    rec = recording.read(path)
    corr = Correlator(rec.context)
    for i, ev in enumerate(rec.events):
        corr.add(ev)
        if len(corr.conversations) > conversations:
            return i
    return len(rec.events)


# -- the list, detail and path on each experiment -------------------------------------------------
@pytest.mark.asyncio
async def test_exp2_list_detail_and_path():
    ident, ns = facts("exp2")
    async with replayed("exp2") as (app, pilot):
        got = rows(app)
        assert [r.summary for r in got] == [
            "ARP who-has 192.168.2.1 tell 192.168.2.11",
            *(f"ICMP echo 192.168.2.11 > 192.168.2.1 id {ident} seq {s}" for s in (1, 2))]
        assert got[1].path == "veth0 > veth1 > icmp_rcv ⇒ lo > icmp_rcv > socket"
        assert got[1].label == "✓ reply delivered to ping" and got[1].outcome == "delivered"
        assert got[0].label == "✓ answered"
        # A replay starts on the first row, not following.
        assert cursor_row(app) is got[0]
        assert status(app, "mode") == "■ REPLAY exp2.jsonl"
        assert status(app, "lost") == "lost 0" and status(app, "probes") == "probes tp_btf"
        assert status(app, "shown") == "3 of 3 conversations shown"

        await pilot.press("down")
        assert cursor_row(app) is got[1]
        detail = detail_text(app)
        for expected in (f"ICMP echo request 192.168.2.11 > 192.168.2.1 id {ident} seq 1", "veth_xmit",
                         "netif_rx", "icmp_rcv", "loopback_xmit", "skb_copy_datagram_iovec",
                         ns, "consume_skb at icmp_rcv",
                         "but the socket is bound to veth0 (ping -I), so it leaves through veth0",
                         "route: 192.168.2.11 is local (veth0), so it goes through lo",
                         f"delivered to ping (pid {ident}), 84 bytes"):
            assert expected in detail, expected
        assert "µs" in detail  # time since the previous hop
        path = path_text(app)
        for box in ("│ veth0 veth_xmit │", "│ veth1 netif_rx  │", "│ stack icmp_rcv  │", "│ lo loopback_xmit │",
                    "│ socket ping      │", "✓ answered", "✓ delivered to ping"):
            assert box in path, box
        # Request and reply side by side: both columns on the first box line.
        first = next(line for line in path.splitlines() if "veth0 veth_xmit" in line)
        assert "lo loopback_xmit" in first


@pytest.mark.asyncio
async def test_exp1_next_drop_and_advice():
    async with replayed("exp1") as (app, pilot):
        got = rows(app)
        assert got[0].summary == "ARP who-has 192.168.2.1 tell 192.168.2.11 (x3)"
        assert got[0].label == "■ no reply" and got[0].failure
        assert [r.label for r in got[1:]] == ["✗ dropped: NEIGH_FAILED"] * 2
        assert got[1].path == "(never sent) ⇒ lo > icmp_rcv > socket"
        await pilot.press("d")
        assert cursor_row(app) is got[1]
        detail = detail_text(app)
        assert "kfree_skb at neigh_invalidate (NEIGH_FAILED)" in detail
        assert "queued until ARP resolves; never transmitted" in detail
        assert "went unanswered 3 times" in detail
        assert "fix: nobody can answer: give 192.168.2.1 to an interface" in detail
        assert "ARP: neighbour entry for 192.168.2.1 created on veth0" in detail
        assert "veth0 never sent" in path_text(app) and "✗ NEIGH_FAILED" in path_text(app)
        await pilot.press("d")
        assert cursor_row(app) is got[2]
        await pilot.press("d")
        await pilot.pause()
        assert cursor_row(app) is got[2]
        assert any("no drop or unanswered request below" in n for n in notes(app))
        await pilot.press("D", "D")
        assert cursor_row(app) is got[0]
        assert "(x3, identical)" in detail_text(app)


@pytest.mark.asyncio
async def test_exp2_default_explains_accept_local():
    async with replayed("exp2-default") as (app, pilot):
        arp = rows(app)[0]
        assert arp.label == "■ no reply"
        detail = detail_text(app)
        assert "accept_local=0 on veth1" in detail
        assert "sysctl -w net.ipv4.conf.veth1.accept_local=1" in detail


@pytest.mark.asyncio
async def test_exp3_unowned_address():
    async with replayed("exp3") as (app, pilot):
        assert [r.outcome for r in rows(app)] == ["consumed", "dropped", "dropped"]
        assert "192.168.2.2" in rows(app)[1].summary


# -- keys -----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_filter_terms_and_escape():
    async with replayed("exp1") as (app, pilot):

        async def apply(text: str):
            await pilot.press("slash")
            bar = app.query_one("#filter-bar")
            assert bar.has_focus and bar.display
            bar.value = text
            await pilot.press("enter")
            await pilot.pause()

        await apply("arp")
        assert [r.conv.kind for r in rows(app)] == ["arp"]
        assert status(app, "filter") == "filter: arp"
        assert not app.query_one("#filter-bar").display
        await apply("dropped")
        assert len(rows(app)) == 2 and all(r.outcome == "dropped" for r in rows(app))
        await apply("lo")                     # an interface of the traced namespace
        assert [r.conv.kind for r in rows(app)] == ["echo", "echo"]
        await apply('!arp "seq 2"')           # negation + quoted text, all terms must match
        assert [r.summary[-5:] for r in rows(app)] == ["seq 2"]
        await apply("host:192.168.2.1 proto:arp")
        assert [r.conv.kind for r in rows(app)] == ["arp"]
        await apply("nothing-matches-this")
        assert rows(app) == []
        assert "Nothing matches the filter" in detail_text(app)
        await pilot.press("escape")           # on the main screen: clears the filter
        await pilot.pause()
        assert len(rows(app)) == 3 and status(app, "filter") == "filter: none"
        # A bad term keeps the bar open and says why.
        await pilot.press("slash")
        app.query_one("#filter-bar").value = "verdict:maybe"
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#filter-bar").display
        assert any("unknown verdict" in n for n in notes(app))
        await pilot.press("escape")           # in the bar: closes it, filter unchanged
        await pilot.pause()
        assert not app.query_one("#filter-bar").display and len(rows(app)) == 3


def test_filter_classifies_terms():
    f = Filter("icmp 192.168.2.1 veth1 dropped !arp hello dev:lo", {"veth1", "lo"})
    assert f.terms == [(False, "proto", "icmp"), (False, "addr", "192.168.2.1"), (False, "dev", "veth1"),
                       (False, "verdict", "dropped"), (True, "proto", "arp"), (False, "text", "hello"),
                       (False, "dev", "lo")]
    with pytest.raises(FilterError):
        Filter("host:not-an-address")


@pytest.mark.asyncio
async def test_pause_resume_and_follow():
    src = GatedSource(trace("exp2"), live=True)
    first = conv_boundary(trace("exp2"), 1)
    src.release(first)
    app = build_app(src)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 1)
        assert status(app, "mode") == "● LIVE" and status(app, "follow") == "following newest"
        await pilot.press("p")
        assert status(app, "mode") == "⏸ PAUSED (p resumes)"
        src.release()
        await settle(pilot, lambda: app.feed.received == len(src.rec.events))
        await pilot.pause(0.3)
        assert len(rows(app)) == 1, "the list must not move while paused"
        await pilot.press("p")
        await settle(pilot, lambda: len(rows(app)) == 3)
        assert status(app, "mode") == "● LIVE"
        assert cursor_row(app) is rows(app)[-1], "following: the newest row is selected"
        await pilot.press("up")
        assert status(app, "follow") == "not following" and cursor_row(app) is rows(app)[1]
        await pilot.press("f")
        await pilot.pause()
        assert status(app, "follow") == "following newest" and cursor_row(app) is rows(app)[-1]


@pytest.mark.asyncio
async def test_save_recording(tmp_path):
    out = tmp_path / "saved.jsonl"
    async with replayed("exp2") as (app, pilot):
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SaveScreen)
        app.screen.query_one("#save-path").value = str(out)
        await pilot.press("enter")
        await settle(pilot, lambda: any("saved 52 events" in n for n in notes(app)))
    rec = recording.read(str(out))
    orig = recording.read(trace("exp2"))
    assert [e.to_json() for e in rec.events] == [e.to_json() for e in orig.events]
    assert rec.lost == 0 and rec.context == orig.context
    assert rec.header["command"] == orig.header["command"]


@pytest.mark.asyncio
async def test_export_asks_where_and_writes_only_there(monkeypatch, tmp_path):
    """`e` asks for the path as `s` does (nothing lands in the working directory unasked),
    Escape writes nothing, Enter writes where it was told."""
    calls = []

    def render_conversation(conv, corr, path):
        calls.append((conv, corr, path))
        Path(path).write_text("<svg/>")

    monkeypatch.setitem(sys.modules, "vethtrace.ui.diagram", types.SimpleNamespace(render_conversation=render_conversation))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    async with replayed("exp2") as (app, pilot):
        await pilot.press("down", "e")
        await pilot.pause()
        assert isinstance(app.screen, SaveScreen)
        conv = rows(app)[1].conv
        assert app.screen.query_one("#save-path").value == f"vethtrace-conversation-{conv.id}.svg"
        assert f"diagram of conversation {conv.id}" in plain(app.screen.query("Label").first().content)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, SaveScreen) and calls == [] and list(cwd.iterdir()) == []
        await pilot.press("e")                 # `-` (stdout elsewhere) would write over the screen
        await pilot.pause()
        app.screen.query_one("#save-path").value = "-"
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert calls == [] and any("give a file name instead of -" in n for n in notes(app))
        out = tmp_path / "figures" / "echo.svg"
        out.parent.mkdir()
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#save-path").value = str(out)
        await pilot.press("enter")
        await settle(pilot, lambda: any("saved the diagram" in n for n in notes(app)))
        (got, corr, path), = calls
        assert got is conv and corr is app.feed.corr and path == str(out)
    assert out.read_text() == "<svg/>" and list(cwd.iterdir()) == []


@pytest.mark.asyncio
async def test_export_without_graphviz_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vethtrace.ui.diagram", None)  # as when graphviz cannot be imported
    monkeypatch.chdir(tmp_path)
    async with replayed("exp2") as (app, pilot):
        await pilot.press("e")
        await pilot.pause()
        assert EXPORT_MISSING in notes(app) and not isinstance(app.screen, SaveScreen)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.asyncio
@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed (scripts/setup installs it)")
async def test_export_svg_with_the_real_diagram_module(tmp_path):
    pytest.importorskip("graphviz")
    out = tmp_path / "conversation.svg"
    async with replayed("exp2") as (app, pilot):
        await pilot.press("down", "e")
        await pilot.pause()
        app.screen.query_one("#save-path").value = str(out)
        await pilot.press("enter")
        await settle(pilot, lambda: any("diagram" in n for n in notes(app)), timeout=30)
    assert out.exists(), notes(app)
    assert b"<svg" in out.read_bytes()[:1000]


@pytest.mark.asyncio
async def test_help_screen_lists_the_keys():
    async with replayed("exp2") as (app, pilot):
        await pilot.press("question_mark")
        await pilot.pause(0.3)  # a few ticks run with the help on top
        assert isinstance(app.screen, HelpScreen)
        text = "".join(plain(s.content) for s in app.screen.query("Static"))
        for key, what in tui.HELP_KEYS:
            assert key in text and what[:30] in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
@pytest.mark.asyncio
async def test_quit_stops_the_reader_and_closes_the_source(key):
    src = GatedSource(trace("exp2"))
    src.release()
    app = build_app(src)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        reader = app.feed._thread
        assert reader.is_alive() and not src.closed
        await pilot.press(key)
        await pilot.pause()
    assert not app.is_running
    assert src.closed == 1 and not reader.is_alive()
    assert "probes detached" in app.exit_summary()


@pytest.mark.asyncio
async def test_lost_events_are_prominent_and_unfinished_rows_incomplete():
    # Drop the ends of the last echo reply: with events lost it is "incomplete", not "in flight".
    rec = recording.read(trace("exp2"))
    last = rec.events[-1].ts
    ends = [e for e in rec.events if e.kind in ("consume", "kfree", "deliver") and e.pkt is not None
            and e.pkt.icmp_type == 0 and e.pkt.icmp_seq == 2]
    events = [e for e in rec.events if e not in ends]
    # A later event, so the unfinished reply has been quiet for more than a second.
    events.append(Event(last + 2_000_000_000, "neigh_update", netns=rec.context["netns"], dev="veth0",
                        neigh={"addr": "192.168.2.1", "lladdr": "00:00:00:00:00:00"}, arg=4, arg2=2))
    src = ListSource(rec.context, events, live=True, lost=7)
    app = build_app(src)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 3 and rows(app)[-1].outcome == INCOMPLETE, timeout=5)
        assert status(app, "lost") == " LOST 7 EVENTS "
        assert app.query_one("#st-lost").has_class("lost")
        assert rows(app)[-1].label == "? incomplete (events lost)"
        assert rows(app)[-1].verdict.rule == "events.lost"  # the model's verdict, not the list's own
        # The kernel reported losses while this batch waited: nothing in it is trusted.
        assert [r.label for r in rows(app)[:2]] == ["? events lost (answered?)",
                                                     "? events lost (reply delivered to ping?)"]
        await pilot.press("slash")
        app.query_one("#filter-bar").value = "incomplete !arp"
        await pilot.press("enter")
        await pilot.pause()
        assert len(rows(app)) == 2


@pytest.mark.asyncio
async def test_conversations_around_a_loss_are_marked():
    """The kernel's lost counter rises while the second echo exchange is read: that
    exchange's verdict is marked as unreliable, the first one's is not."""
    src = GatedSource(trace("exp2"), live=True)
    first = conv_boundary(trace("exp2"), 2)  # the ARP exchange and the first echo
    src.release(first)
    app = build_app(src)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 2 and app.feed.received == first)
        src._lost = 40
        src.release()
        await settle(pilot, lambda: len(rows(app)) == 3)
        got = rows(app)
        assert [r.lost for r in got] == [False, False, True]
        assert got[2].label == "? events lost (reply delivered to ping?)" and not got[2].failure
        assert status(app, "lost") == " LOST 40 EVENTS "
        await pilot.press("end")
        assert "The kernel lost events around this conversation" in detail_text(app)


@pytest.mark.asyncio
async def test_command_output_pane():
    app = build_app(ReplaySource(trace("exp2")), command=["sh", "-c", "echo hello from the command; exit 3"])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.runner.status is not None)
        await pilot.pause(0.2)
        log = app.query_one("#command-log")
        assert "hello from the command" in "\n".join(log.lines)
        assert "exited with status 3" in str(log.border_title)
    assert app.exit_status == 3


@pytest.mark.asyncio
async def test_waiting_hint_when_live_and_quiet():
    src = GatedSource(trace("exp2"), live=True)  # nothing released
    app = build_app(src)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        text = detail_text(app)
        assert "Waiting for packets" in text
        assert f"ip netns exec {facts('exp2')[1]} ping -c 3 192.168.2.1" in text


# -- what a user trips over (issue 13) ------------------------------------------------------
async def apply_filter(pilot, text: str) -> None:
    await pilot.press("slash")
    pilot.app.query_one("#filter-bar").value = text
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.asyncio
async def test_a_filter_matching_nothing_says_so_in_the_status():
    async with replayed("exp2") as (app, pilot):
        assert status(app, "shown") == "3 of 3 conversations shown"
        await apply_filter(pilot, "nothing-matches-this")
        assert rows(app) == []
        assert status(app, "shown") == "0 of 3 conversations match"
        assert str(app.query_one("#list-pane").border_title) == "conversations (0) matching `nothing-matches-this`"
        await apply_filter(pilot, "arp")
        assert status(app, "shown") == "1 of 3 conversations match"
        await pilot.press("escape")
        await pilot.pause()
        assert status(app, "shown") == "3 of 3 conversations shown"


@pytest.mark.asyncio
async def test_an_unknown_filter_key_is_an_error_not_an_empty_list():
    async with replayed("exp2") as (app, pilot):
        bar = app.query_one("#filter-bar")
        await apply_filter(pilot, "foo:bar")
        # The bar stays open, marked, with the reason under it; the list is unchanged.
        assert bar.display and bar.has_class("-error")
        assert "unknown filter key 'foo:'" in str(bar.border_subtitle)
        assert any("unknown filter key 'foo:'" in n for n in notes(app))
        assert len(rows(app)) == 3 and app.filter is None and status(app, "filter") == "filter: none"
        bar.value = "proto:icmp"                # corrected: applied, the mark goes
        await pilot.press("enter")
        await pilot.pause()
        assert not bar.display and not bar.has_class("-error") and not bar.border_subtitle
        assert len(rows(app)) == 2


def test_filter_keys_values_and_colons():
    for bad, why in [("foo:bar", "unknown filter key 'foo:'"), ("proto:icmpv9", "unknown protocol"),
                     ("host:", "host: needs a value"), ("verdict:maybe", "unknown verdict"),
                     ("!nokey:x", "unknown filter key 'nokey:'")]:
        with pytest.raises(FilterError, match=why):
            Filter(bad)
    # Words whose colon is not a key: addresses, a MAC, a time; text: takes any text.
    mac = next(e.pkt.sha for e in recording.read(trace("exp2")).events
               if e.pkt is not None and e.pkt.is_arp_reply)
    assert Filter(f"{mac} fe80::1 0:01 text:foo:bar proto:proto47").terms == [
        (False, "text", mac), (False, "addr", "fe80::1"), (False, "text", "0:01"), (False, "text", "foo:bar"),
        (False, "proto", "proto47")]


@pytest.mark.asyncio
async def test_a_mac_address_filters_as_text():
    mac = next(e.pkt.sha for e in recording.read(trace("exp2")).events if e.pkt is not None and e.pkt.is_arp_reply)
    async with replayed("exp2") as (app, pilot):
        await apply_filter(pilot, mac)
        assert [r.conv.kind for r in rows(app)] == ["arp"]


def row_text(app, index: int) -> str:
    lst = app.query_one(ConversationList)
    return lst.render_line(index - int(lst.scroll_offset.y)).text


@pytest.mark.parametrize("name, verdicts", [
    ("exp2", ["✓ answered", "✓ reply delivered to ping", "✓ reply delivered to ping"]),
    ("exp1", ["■ no reply", "✗ dropped: NEIGH_FAILED", "✗ dropped: NEIGH_FAILED"])])
@pytest.mark.asyncio
async def test_the_essentials_stay_visible_at_80x24(name, verdicts):
    """On an 80x24 terminal each row still shows where the packet went, which one it was
    (id and seq) and how it ended; the status bar still shows the counts."""
    ident, _ = facts(name)
    app = build_app(ReplaySource(trace(name)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        lines = [row_text(app, i) for i in range(3)]
        assert "ARP who-has 192.168.2.1" in lines[0] and verdicts[0] in lines[0]
        for seq, (line, verdict) in enumerate(zip(lines[1:], verdicts[1:]), 1):
            assert f"> 192.168.2.1 id {ident} seq {seq}" in line, line
            assert verdict in line, line
        assert all(len(line) <= 80 for line in lines)
        shown = app.query_one("#st-shown")
        assert shown.display and shown.region.right <= 80 and shown.region.width >= len("3 of 3 conversations shown")
        assert status(app, "shown") == "3 of 3 conversations shown"
        # The hop table keeps each hop's time in the narrow detail pane.
        await pilot.press("down")
        await pilot.pause()
        width = app.query_one("#detail-pane").scrollable_content_region.width
        detail = plain(app.query_one("#detail").content, width=width)
        hops = [line for line in detail.splitlines() if line.strip()[:2] in ("1 ", "2 ", "3 ")]
        assert hops and all(line.rstrip().endswith((" µs", " ms", " s", "start")) for line in hops), detail
    # Wide enough, the whole packet and the path are shown again.
    async with replayed(name) as (app, pilot):
        assert f"192.168.2.11 > 192.168.2.1 id {ident} seq 1" in row_text(app, 1)
        assert "⇒" in row_text(app, 1)


def test_the_brief_packet_keeps_destination_and_ports():
    """What a narrow list shows instead of the whole packet: for TCP/UDP the ports and the
    destination (a recorded echo request turned into a TCP segment 40312 > 81)."""
    from vethtrace.tracer.correlate import Correlator
    from vethtrace.ui.labels import conversation_brief
    rec = recording.read(trace("exp2"))
    e = next(e for e in rec.events if e.pkt is not None and e.pkt.icmp_type == 8)
    d = e.to_json()
    data = bytearray.fromhex(d["data"])
    off = 14 if e.l2 else 0
    data[off + 9] = 6  # IPPROTO_TCP
    data[off + (data[off] & 0x0F) * 4:] = (40312).to_bytes(2, "big") + (81).to_bytes(2, "big") + bytes(16)
    d["data"] = data.hex()
    corr = Correlator(rec.context)
    corr.feed([Event.from_json(d)])
    conv, = corr.conversations
    assert conversation_brief(conv) == f"TCP :40312 > {e.pkt.dst}:81"


@pytest.mark.asyncio
async def test_pause_in_a_replay_says_there_is_nothing_to_pause():
    async with replayed("exp2") as (app, pilot):
        await pilot.press("p")
        await pilot.pause()
        assert not app.paused and status(app, "mode") == "■ REPLAY exp2.jsonl"
        assert "PAUSED" not in status(app, "mode")
        assert any("nothing to pause" in n for n in notes(app))


def _luminance(rgb) -> float:
    c = [x / 255 for x in rgb]
    c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def contrast(fg, bg) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21; 4.5 is the floor for body text)."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("name", ["exp2", "exp1"])
@pytest.mark.asyncio
async def test_the_selected_row_is_readable(name):
    """Every character of the selected row (time, packet, verdict in its colour, path) has
    at least WCAG's 4.5:1 contrast with the highlight behind it."""
    async with replayed(name) as (app, pilot):
        await pilot.press("d" if name == "exp1" else "down")
        await pilot.pause()
        lst = app.query_one(ConversationList)
        assert lst.has_focus
        strip = lst.render_line(lst.cursor - int(lst.scroll_offset.y))
        checked = 0
        for seg in strip:
            if not seg.text.strip() or seg.style is None:
                continue
            fg, bg = seg.style.color.get_truecolor(), seg.style.bgcolor.get_truecolor()
            assert contrast(fg, bg) >= 4.5, (seg.text, fg, bg)
            checked += len(seg.text.strip())
        assert checked >= 40


# -- a flood: bounded memory, failures first, the rest counted -------------------------------------
def flood_events(copies: int, drop_every: int) -> tuple[dict, list]:
    """exp2's second echo exchange repeated `copies` times (new seq, skb addresses reused
    as the kernel does), with exp1's NEIGH_FAILED exchange mixed in every `drop_every`."""
    ok = recording.read(trace("exp2"))
    bad = recording.read(trace("exp1"))

    def template(rec, seq):
        evs = [e for e in rec.events if e.pkt is not None and (e.pkt.icmp_seq == seq or
               (e.pkt.inner is not None and e.pkt.inner.icmp_seq == seq))]
        t0 = evs[0].ts
        return [(e, e.ts - t0) for e in evs]

    good, fail = template(ok, 2), template(bad, 1)
    out, ts = [], 10**12
    for i in range(copies):
        tmpl = fail if drop_every and i % drop_every == drop_every - 1 else good
        for e, dt in tmpl:
            d = e.to_json()
            d["ts"] = ts + (dt if tmpl is good else dt // 1000)
            d["netns"] = ok.context["netns"]
            for key in ("skb", "head"):  # each copy in its own buffers (copies overlap in time)
                if key in d:
                    d[key] = f"{int(d[key], 16) + (i << 24):x}"
            data = bytearray.fromhex(d["data"])
            off = 14 if e.l2 else 0
            seq_at = off + (data[off] & 0x0F) * 4 + 6
            if e.pkt.inner is not None:  # the quoted request inside an ICMP error
                seq_at += 8 + (data[off + (data[off] & 0x0F) * 4 + 8] & 0x0F) * 4
            data[seq_at:seq_at + 2] = (i % 65536).to_bytes(2, "big")
            data[off + 4:off + 6] = (i % 65536).to_bytes(2, "big")  # IP id: each copy is a new packet
            d["data"] = data.hex()
            out.append(Event.from_json(d))
        ts += 100_000
    out.sort(key=lambda e: e.ts)
    return ok.context, out


@pytest.mark.asyncio
async def test_flood_is_bounded_and_failures_are_shown(monkeypatch):
    monkeypatch.setattr(schedule, "MAX_ROWS", 60)
    monkeypatch.setattr(schedule, "BACKLOG", 40)
    monkeypatch.setattr(schedule, "ROWS_PER_TICK", 10)
    monkeypatch.setattr(feed, "KEEP_JOURNEYS", 400)
    monkeypatch.setattr(feed, "MAX_RAW", 3_000)
    context, events = flood_events(1500, drop_every=300)
    src = ListSource(context, events, live=True)
    app = build_app(src)
    async with app.run_test(size=SIZE) as pilot:
        sched = app.schedule
        await settle(pilot, lambda: app.feed.received == len(events) and not sched.waiting
                     and app.feed.conversations_seen >= 1500, timeout=30)
        assert len(sched.rows) <= 60 and len(rows(app)) <= 60
        assert len(app.feed.raw) == 3_000
        assert len(app.feed.corr.journeys) <= 400 * 1.25
        assert sched.skipped > 0 and sched.shown_total < app.feed.conversations_seen
        shown = status(app, "shown")
        assert f"of {app.feed.conversations_seen:,} conversations shown" in shown and "skipped" in shown
        # Every NEIGH_FAILED exchange made it to the list although most rows were skipped.
        dropped = [r for r in sched.rows if r.outcome == "dropped"]
        assert len(dropped) == 5
        await pilot.press("f")  # stop following, then find the drops from the top
        await pilot.press("home", "d")
        assert cursor_row(app).failure
    assert "packet events were in shown conversations" in app.exit_summary()


def test_an_unanswered_arp_exchange_stays_cheap_to_show():
    """One-ip lab, ping left running: every second another ARP request joins the same
    unanswered exchange.  Rows and panes look at the newest MAX_JOURNEYS only."""
    from vethtrace.tracer.correlate import Correlator
    from vethtrace.ui.labels import MAX_JOURNEYS
    from vethtrace.ui.tui.panes import detail_renderable, path_renderable
    rec = recording.read(trace("exp1"))
    corr = Correlator(rec.context)
    corr.feed(rec.events)
    arp = corr.conversations[0]
    template = sorted({id(e): e for j in arp.journeys for e in j.events}.values(), key=lambda e: e.ts)
    span = template[-1].ts - template[0].ts + 1_000_000
    for i in range(1, 400):
        for e in template:
            d = e.to_json()
            d["ts"] += i * span
            for key in ("skb", "head"):
                if key in d:
                    d[key] = f"{int(d[key], 16) + (i << 24):x}"
            corr.add(Event.from_json(d))
    assert len(arp.journeys) > MAX_JOURNEYS
    row = Row(arp)
    import time as _time
    start = _time.perf_counter()
    row.update(corr, rec.events[0].ts)
    assert _time.perf_counter() - start < 0.25
    assert row.label == "■ no reply" and row.summary.endswith(f"(x{len(arp.journeys)})")
    detail = plain(detail_renderable(row, corr))
    assert f"{len(arp.journeys) - MAX_JOURNEYS:,} earlier packets of this conversation are not shown" in detail
    assert "(x200, identical)" in detail
    assert "ARP req (x200)" in plain(path_renderable(row, corr))


# -- snapshots ----------------------------------------------------------------------------------
# The live tests re-record tests/traces (new pids, namespace names, timings), so the snapshots
# are taken from frozen copies in tests/data/tui: a picture changes only when the
# TUI does.  Review a changed picture before `--snapshot-update`.
SNAP_INPUTS = Path(__file__).parent / "data" / "tui"


async def _caught_up(pilot):
    await settle(pilot)


def test_snapshot_main_screen(snap_compare):
    """exp2 (two-ips-fixed): ARP answered, two echo exchanges; the first row selected."""
    assert snap_compare(build_app(ReplaySource(str(SNAP_INPUTS / "exp2.jsonl"))), terminal_size=SIZE,
                        run_before=_caught_up)


def test_snapshot_detail_of_a_drop(snap_compare):
    """exp1 (one-ip): `d` selects the first echo request, dropped with NEIGH_FAILED: its hops,
    the reason and the advice in the detail, request and ICMP error side by side."""
    assert snap_compare(build_app(ReplaySource(str(SNAP_INPUTS / "exp1.jsonl"))), terminal_size=SIZE,
                        run_before=_caught_up, press=["d"])


def test_snapshot_help_screen(snap_compare):
    """`?` over the main screen: the keys, verdict colours, filter terms, status bar."""
    assert snap_compare(build_app(ReplaySource(str(SNAP_INPUTS / "exp2.jsonl"))), terminal_size=SIZE,
                        run_before=_caught_up, press=["question_mark"])


@pytest.mark.asyncio
async def test_a_recording_that_lost_events_shows_the_kernels_exact_counts(tmp_path):
    """A recording whose footer has the kernel's counts (made here: each path of the trace
    1000 times per journey seen, 77 packets on a path none shows) and says events were lost:
    the exact pane lists those counts and says they are the kernel's; the summary printed
    after quitting has them too.  Without counts (an older recording) there is no pane."""
    from test_counters import SCOPE, _rewrite, _scope_counts
    kc, want = _scope_counts(1000, 77)
    path = tmp_path / "lossy.jsonl"
    _rewrite(path, SCOPE, 9, kc.to_json())
    app = build_app(ReplaySource(str(path)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.caught_up and app.query_one("#exact").display)
        pane = app.query_one("#exact")
        assert "as the kernel counted it" in str(pane.border_title)
        text = plain(pane.content)
        assert f"{sum(want.values()) + 77} packets ended" in text and "the kernel's counts" in text, text
        for (label, p, how, _outcome), n in want.items():
            assert f"{n:>7,}×  {label}  {p}  ✓ {how}" in text, text
        assert "77×  packets  on paths not seen in detail (their events were lost)  ? incomplete" in text
        assert "77×  dropped at ip_rcv_core (OTHERHOST)" in text and "77x" not in text, text  # one style in the pane
        summary = app.exit_summary()
    assert "77x  dropped at ip_rcv_core (OTHERHOST)" in summary
    _rewrite(path, SCOPE, 9, None)
    app = build_app(ReplaySource(str(path)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.query_one("#exact").display
        assert "counted in the kernel" not in app.exit_summary()
