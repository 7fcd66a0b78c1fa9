"""`vethtrace tui`: watch packets flow, select one, and see where it went and why it stopped.

The app is built from an event source (tracer/sources.py: live probes or a recording), so
tests build it from recorded traces.  A reader thread (tracer/feed.py) polls the source
and feeds the correlator; ten times a second the app takes what changed (never a message
per event), lets the row schedule (schedule.py) turn it into rows within a time budget,
and redraws the list, the selected conversation's panes and the status bar.  Memory is
bounded: the correlator keeps KEEP_JOURNEYS journeys, the list MAX_ROWS rows, the
saveable recording MAX_RAW events.  When a flood is faster than the list can show,
failures go first and the rest is counted ("shown N of M").
"""
from __future__ import annotations

import gc
import importlib
import os
import re
import signal
import sys
import termios
import time
from collections import Counter

from rich.markup import escape
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, Log, Static

from vethtrace.tracer import recording
from vethtrace.tracer.feed import CommandOutput, Feed
from vethtrace.tracer.verdict import ANSWERED, CONSUMED, DELIVERED, DROPPED, IN_FLIGHT, INCOMPLETE
from vethtrace.ui.exact import exact_paths, summary_counts
from vethtrace.ui.labels import MARK
from vethtrace.ui.tui.panes import detail_renderable, path_renderable
from vethtrace.ui.tui.query import Filter, FilterError
from vethtrace.ui.tui.rows import Row
from vethtrace.ui.tui.schedule import RowSchedule
from vethtrace.ui.tui.screens import HelpScreen, SaveScreen
from vethtrace.ui.tui.widgets import ConversationList, FilterBar, ListHeader, Pane

COUNT_RE = re.compile(r"^\s*(\d+)x  ")  # a count in ui.exact's drop lines
EXACT_ROWS = 6           # rows of the kernel's exact counts shown when events were lost
DETAIL_EVERY_S = 0.3     # following a flood: redraw the detail of the newest row at most this often
SWITCH_INTERVAL_S = 0.0005  # hand the GIL to the UI thread sooner than Python's 5 ms (see on_mount)
TICK_S = 0.1             # the UI takes what changed ten times a second
# Textual makes reference cycles as it draws (each Strip keeps caches that can point back at
# it): ~10k objects of cyclic garbage a second while the list scrolls.  Under the CLI's
# thresholds for batch work (vethtrace.cli.GC_THRESHOLDS: a young collection every 500k
# allocations, an older one almost never) whatever is still in use at a young collection
# moves up and is never collected once it dies: the TUI grew by about 1 MB a minute and
# held ~35 MB of garbage.  While it runs, collections come more often and are shorter.
GC_THRESHOLDS = (100_000, 10, 10)

EXPORT_MISSING = "diagram export needs the graphviz Python package (pip install graphviz)"


class VethtraceApp(App):
    """The main screen: the list on top, detail and path below, the status bar and keys."""

    CSS_PATH = "tui.tcss"  # beside this module (package data)
    TITLE = "vethtrace"
    SCREENS = {"help": HelpScreen}
    # Below 100 columns the status bar leaves out what matters least (Screen.-narrow in tui.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("p,space", "pause", "Pause"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "follow", "Follow"),
        Binding("d", "next_drop", "Next drop"),
        Binding("D", "previous_drop", "Prev drop", show=False),
        Binding("s", "save", "Save"),
        Binding("e", "export", "Export"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, source, command: list[str] | None = None):
        super().__init__()
        self.source = source
        self.feed = Feed(source)
        self.feed.exact = exact_paths(self.feed.corr)  # each counted path's row, learnt as journeys end
        self._exact_of = None  # the kernel reading the exact pane shows
        self.live = bool(getattr(source, "live", False))
        self.mechanism = getattr(source, "mechanism", "") or "?"
        self.runner = CommandOutput(command) if command else None
        self.command = list(command or [])
        self.paused = False
        self.follow = self.live
        self.schedule = RowSchedule()
        self.exit_status = 0
        self._quit_requested = False
        self._rate = 0.0
        self._rate_mark = (time.monotonic(), 0)
        self._selected: Row | None = None
        self._draw_pending = False
        self._drawn_at = 0.0
        self._switch_interval = None
        self._gc_thresholds = None
        self._status_text: dict[str, str] = {}
        self._main = None
        self._widgets: dict = {}
        self._interfaces = {i.get("name") for i in (self.feed.corr.context.get("interfaces") or []) if i.get("name")}

    # -- layout -----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield FilterBar(placeholder="filter: icmp · arp · 192.168.2.1 · veth1 · dropped · any text · !term excludes "
                                "(Enter applies, Escape cancels)", id="filter-bar")
        with Vertical(id="list-pane"):
            yield ListHeader(id="list-header")
            yield ConversationList(id="conversations")
        with Horizontal(id="lower"):
            with Pane(id="detail-pane"):
                yield Static(id="detail")
            with Pane(id="path-pane"):
                yield Static(id="path")
        yield Static(id="exact")
        if self.runner is not None:
            yield Log(id="command-log", max_lines=1_000)
        with Horizontal(id="status"):
            yield Label(id="st-mode")
            yield Label(id="st-rate")
            yield Label(id="st-lost")
            yield Label(id="st-probes")
            yield Label(id="st-filter")
            yield Label(id="st-follow")
            yield Label(id="st-shown")
        yield Footer()

    def _w(self, selector, expect_type=None):
        """A widget of the main screen, also while help or save is shown on top, and while
        the app shuts down (looked up once)."""
        widget = self._widgets.get(selector)
        if widget is None:
            main = self._main or self.screen
            widget = self._widgets[selector] = main.query_one(selector)
        return widget

    def on_mount(self) -> None:
        # The reader thread correlates flat out during a flood; with Python's default 5 ms
        # switch interval each wake-up of the UI's event loop waits that long for the GIL,
        # and a key press takes several.  A shorter interval keeps keys prompt.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        self._main = self.screen
        self._w(ConversationList).header = self._w(ListHeader)
        self._w("#list-pane").border_title = "conversations"
        self._w("#detail-pane").border_title = "detail"
        self._w("#path-pane").border_title = "path"
        self._w("#exact").border_title = "events were lost: every packet, as the kernel counted it (exact)"
        self._w(FilterBar).border_title = "filter · Enter applies · Escape cancels · the terms are listed in the help (?)"
        if self.runner is not None:
            self._w("#command-log").border_title = Text(" ".join(self.command))  # text, not markup
        self.feed.start()
        if self.runner is not None:
            self.runner.start()
            if self.runner.error:
                self._w("#command-log", Log).write_line(self.runner.error)
        self._w(ConversationList).focus()
        self._show_selection(None)
        self._update_status()
        self.set_interval(TICK_S, self.tick)

    def on_pane_resized(self) -> None:
        if self._main is not None:
            self._show_selection(self._selected)

    def on_unmount(self) -> None:
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
        self.shutdown()

    @property
    def filter(self) -> Filter | None:
        return self.schedule.filter

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the command and the reader, then detach the probes (idempotent)."""
        if self.runner is not None:
            status = self.runner.stop()
            if status is not None:
                self.exit_status = status
            elif self.runner.error:
                self.exit_status = 127
        self.feed.close(timeout)

    @property
    def caught_up(self) -> bool:
        """A recording was read to its end and every conversation in it was considered
        (tests and the benchmark wait for this)."""
        feed = self.feed
        if not feed.done or self.paused or self.schedule.waiting:
            return False
        with feed.lock:
            convs = feed.corr.conversations
            return (convs[-1].id if convs else 0) == feed.conversations_seen

    def request_quit(self) -> None:
        """From a signal handler: only set a flag, the next tick exits."""
        self._quit_requested = True

    # -- the tick: take what changed, update rows, redraw -----------------------------------------
    def tick(self) -> None:
        if self._quit_requested:
            self.exit()
            return
        if not self.paused:
            self.feed.ui_waiting.set()
            with self.feed.lock:
                self.feed.ui_waiting.clear()
                changed = self.schedule.apply(self.feed.corr, self.feed.t0 or 0, self._lost_clock(),
                                              *self.feed.take(), selected=self._selected)
            if changed:
                self._refresh_list()
        if self._draw_pending and time.monotonic() - self._drawn_at >= DETAIL_EVERY_S:
            self._show_selection(self._selected)
        self._drain_command()
        self._update_status()
        self._update_exact()

    def exact_lines(self) -> list[str]:
        """When events were lost: the kernel's exact count of packets on each path (one
        line per row, most first) and of each drop (ui.exact, as `ping` prints them); else
        nothing."""
        feed = self.feed
        with feed.lock:
            counts, lines = summary_counts(feed.kernel, feed.exact, Counter(), feed.lost)
        if not lines:
            return []
        rows = [f"{n:>7,}×  {label}  {path}  {MARK.get(outcome, '?')} {how}"
                for (label, path, how, outcome), n in sorted(counts.items(), key=lambda kv: -kv[1])]
        return [lines[0] + " (the kernel's counts; the rows above show only what was read)", *rows, *lines[1:]]

    def _update_exact(self) -> None:
        """The exact pane, redrawn when a new reading of the kernel's counts came."""
        if self.feed.kernel is self._exact_of:
            return
        self._exact_of = self.feed.kernel
        # ui.exact's drop lines ("  5000x  freed at ...") in the pane's style of count
        lines = [COUNT_RE.sub(lambda m: f"{int(m.group(1)):>7,}×  ", line, count=1) for line in self.exact_lines()]
        pane = self._w("#exact", Static)
        pane.display = bool(lines)
        if lines:
            shown = lines[:EXACT_ROWS + 1]
            if len(lines) > len(shown):
                shown.append(f"… {len(lines) - len(shown)} more lines")
            pane.update(Text("\n".join(shown)))  # plain text: names from a recording are not markup
            pane.styles.height = len(shown) + 2

    def _lost_clock(self) -> int | None:
        """When events were lost: the newest event's time (unfinished rows are looked at
        again now and then: their verdict may become incomplete); else None."""
        return self.feed.last_ts if self.feed.lost > 0 else None

    def _refresh_list(self) -> None:
        self._w(ConversationList).set_rows(list(self.schedule.refresh()), follow=self.follow)

    # -- selection -----------------------------------------------------------------------------
    def on_conversation_list_highlighted(self, message: ConversationList.Highlighted) -> None:
        if message.user:
            lst = self._w(ConversationList)
            if lst.cursor != len(lst.rows) - 1:
                self.follow = False  # the user picked a row: keep it selected
            self._update_status()
        elif (self.follow and message.row is not None and self._selected is not None
              and time.monotonic() - self._drawn_at < DETAIL_EVERY_S):
            # Following a flood: the newest row changes every tick; redraw a few times a second.
            self._selected = message.row
            self._draw_pending = True
            return
        self._show_selection(message.row)

    def _show_selection(self, row: Row | None) -> None:
        self._selected = row
        self._draw_pending = False
        self._drawn_at = time.monotonic()
        if row is None:
            self._w("#detail", Static).update(self._empty_hint())
            self._w("#path", Static).update("")
            return
        with self.feed.lock:
            self._render_selection(row)

    def _render_selection(self, row: Row) -> None:
        """Draw the detail and path panes (call with the lock held)."""
        styles = self._outcome_styles()
        width = max(30, self._w("#path-pane").scrollable_content_region.width)
        detail_width = self._w("#detail-pane").scrollable_content_region.width
        self._w("#detail", Static).update(detail_renderable(row, self.feed.corr, styles, detail_width))
        self._w("#path", Static).update(path_renderable(row, self.feed.corr, width, styles))

    def _outcome_styles(self) -> dict:
        lst = self._w(ConversationList)
        out = {}
        for outcome in (DELIVERED, ANSWERED, CONSUMED, DROPPED, IN_FLIGHT, INCOMPLETE):
            out[outcome] = lst.get_component_rich_style("conversation-list--" + outcome.replace(" ", "-"),
                                                        partial=True)
        return out

    def _empty_hint(self) -> Text:
        ctx = self.feed.corr.context
        if self.filter is not None and self.schedule.rows:
            return Text(f"Nothing matches the filter `{self.filter.text}`. Press / to change it, "
                        "Escape to clear it.")
        if not self.live:
            if self.feed.done and not self.feed.received:
                return Text("This recording holds no events.")
            return Text("Reading the recording…")
        where = ctx.get("name") or "this network namespace"
        text = Text()
        text.append("Waiting for packets.\n\n", "bold")
        text.append(f"The probes ({self.mechanism}) are attached and trace {where}. Send some traffic "
                    "there, e.g. in another terminal:\n\n")
        addrs = [a.split("/")[0] for i in ctx.get("interfaces", []) if i.get("name") != "lo"
                 for a in i.get("addrs", []) if ":" not in a]
        target = addrs[0] if addrs else "ADDRESS"
        prefix = f"ip netns exec {ctx['name']} " if ctx.get("name") else ""
        text.append(f"    {prefix}ping -c 3 {target}\n\n", "bold")
        text.append("Each packet exchange appears above as a row; select one to see every hop here.")
        return text

    # -- actions --------------------------------------------------------------------------------
    def action_pause(self) -> None:
        if not self.live:
            # A recording is read and listed whole: there is no stream to hold still.
            self.notify("a replay is listed whole: nothing to pause (p pauses a live trace)", timeout=3)
            return
        self.paused = not self.paused
        if not self.paused:
            self.tick()
        self._update_status()

    def action_follow(self) -> None:
        self.follow = not self.follow
        lst = self._w(ConversationList)
        if self.follow and lst.rows:
            lst.move_to(len(lst.rows) - 1, user=False)
        self._update_status()
        self.notify("following the newest conversation" if self.follow else "not following: the selection stays put",
                    timeout=2)

    def action_filter(self) -> None:
        bar = self._w(FilterBar)
        bar.value = self.filter.text if self.filter else ""
        bar.add_class("-open")
        bar.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter-bar":
            return
        bar = self._w(FilterBar)
        try:
            self.set_filter(event.value)
        except FilterError as exc:
            # The bar stays open, marked, with the reason under it (and as a notification).
            bar.add_class("-error")
            bar.border_subtitle = Text(str(exc))
            self.notify(str(exc), severity="error", markup=False)
            return
        self.close_filter_bar()

    def close_filter_bar(self) -> None:
        bar = self._w(FilterBar)
        bar.remove_class("-open", "-error")
        bar.border_subtitle = ""
        self._w(ConversationList).focus()

    def set_filter(self, text: str) -> None:
        flt = Filter(text, self._interfaces) if text.strip() else None
        with self.feed.lock:
            self.schedule.set_filter(flt)
            self._refresh_list()
        if not self.schedule.matched:
            self._show_selection(None)
        self._update_status()

    def action_clear_filter(self) -> None:
        if self.filter is not None:
            self.set_filter("")
            self.notify("filter cleared", timeout=2)

    def _jump(self, step: int) -> None:
        lst = self._w(ConversationList)
        i = lst.cursor + step
        while 0 <= i < len(lst.rows):
            if lst.rows[i].failure:
                self.follow = False
                lst.move_to(i, user=True)
                self._update_status()
                return
            i += step
        where = "below" if step > 0 else "above"
        self.notify(f"no drop or unanswered request {where} the selection", timeout=3)

    def action_next_drop(self) -> None:
        self._jump(1)

    def action_previous_drop(self) -> None:
        self._jump(-1)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen("help")  # installed once: composing it on every press is slow

    def action_save(self) -> None:
        kept, rolled = len(self.feed.raw), self.feed.received - len(self.feed.raw)
        note = f"{kept:,} events kept" + (f"; the {rolled:,} oldest have rolled off" if rolled else "")
        default = time.strftime("vethtrace-%Y%m%d-%H%M%S.jsonl")
        self.push_screen(SaveScreen(default, note), self._save_to)

    def _save_to(self, path: str | None) -> None:
        if self._file_named(path):
            self.run_worker(lambda: self.save_recording(path), thread=True, exclusive=False)

    def _file_named(self, path: str | None) -> bool:
        """A path was given, and it is a file: `-` (standard output elsewhere) would write
        over the screen the TUI is drawing."""
        if path == "-":
            self.notify("the TUI draws on standard output: give a file name instead of -", severity="error",
                        markup=False)
            return False
        return bool(path)

    def save_recording(self, path: str) -> None:
        """Write the kept events as a recording (runs in a worker thread)."""
        events, rolled = self.feed.snapshot()
        rec = getattr(self.source, "rec", None)
        command = self.command or (rec.header.get("command") if rec is not None else None)
        try:
            corr = self.feed.corr
            recording.write_file(path, recording.header(corr.context, self.mechanism, command, corr.namespaces),
                                 events, self.feed.lost)
        except OSError as exc:
            self.call_from_thread(self.notify, f"could not save {path}: {exc.strerror}", severity="error",
                                  markup=False)
            return
        msg = f"saved {len(events):,} events to {path}" + (f" ({rolled:,} older events had rolled off)" if rolled else "")
        self.call_from_thread(self.notify, msg + f"; replay it with: vethtrace show {path}", markup=False)

    def action_export(self) -> None:
        row = self._selected
        if row is None:
            self.notify("select a conversation first", timeout=3)
            return
        try:
            # Imported when asked for: graphviz is needed for diagrams only.
            diagram = importlib.import_module("vethtrace.ui.diagram")
        except ModuleNotFoundError as exc:
            if exc.name not in ("vethtrace.ui.diagram", "graphviz"):
                raise
            self.notify(EXPORT_MISSING, severity="error", markup=False)
            return
        default = f"vethtrace-conversation-{row.conv.id}.svg"
        note = "the format follows the suffix: .svg .png .pdf .dot"
        self.push_screen(SaveScreen(default, note, what=f"the diagram of conversation {row.conv.id}"),
                         lambda path: self._export_to(diagram.render_conversation, row, path))

    def _export_to(self, render, row: Row, path: str | None) -> None:
        if self._file_named(path):
            self.run_worker(lambda: self._export(render, row, path), thread=True, exclusive=False)

    def _export(self, render, row: Row, path: str) -> None:
        try:
            with self.feed.lock:
                written = render(row.conv, self.feed.corr, path)
        except Exception as exc:  # e.g. the dot program missing: say so, keep running
            self.call_from_thread(self.notify, f"diagram export failed: {exc}", severity="error", markup=False)
            return
        self.call_from_thread(self.notify, f"saved the diagram to {written or path}", markup=False)

    # -- status and command output ------------------------------------------------------------------
    def _drain_command(self) -> None:
        if self.runner is None:
            return
        lines = self.runner.take()
        log = self._w("#command-log", Log)
        if lines:
            log.write_lines(lines)
        title = " ".join(self.command)
        if self.runner.status is not None:
            title += f"  (exited with status {self.runner.status})"
        elif self.runner.error:
            title += "  (could not start)"
        log.border_title = Text(title)

    def _label(self, wid: str, text: str) -> Label:
        """Update a status label only when its text changes (no layout work per tick)."""
        label = self._w(wid, Label)
        if self._status_text.get(wid) != text:
            self._status_text[wid] = text
            label.update(Text(text))  # plain text: names from a recording are not markup
        return label

    def _update_status(self) -> None:
        feed = self.feed
        now = time.monotonic()
        t, n = self._rate_mark
        if now - t >= 1.0:
            self._rate = (feed.received - n) / (now - t)
            self._rate_mark = (now, feed.received)
        if feed.error:
            mode, cls = f"■ STOPPED: {feed.error}", "error"
        elif self.paused:
            mode, cls = "⏸ PAUSED (p resumes)", "paused"
        elif self.live:
            mode, cls = "● LIVE", "live"
        else:
            name = os.path.basename(getattr(self.source, "path", "") or "recording")
            mode, cls = f"{'■' if feed.done else '▶'} REPLAY {name}", "replay"
        label = self._label("#st-mode", mode)
        for c in ("error", "paused", "live", "replay"):
            label.set_class(c == cls, c)
        rate = f"{self._rate:,.0f} ev/s · " if self.live else ""
        self._label("#st-rate", f"{rate}{feed.received:,} events")
        if feed.lost:
            text = f" LOST {feed.lost:,} EVENTS "
        else:
            text = "lost 0" if feed.lost_known else "lost: unknown"
        self._label("#st-lost", text).set_class(feed.lost > 0, "lost")
        self._label("#st-probes", f"probes {self.mechanism}")
        self._label("#st-filter", f"filter: {self.filter.describe() if self.filter else 'none'}").set_class(
            self.filter is not None, "active")
        self._label("#st-follow", "following newest" if self.follow else "not following")
        seen, sched = feed.conversations_seen, self.schedule
        extra = ""
        if sched.skipped or sched.rolled_off:
            extra = f" (skipped {sched.skipped:,}, rolled off {sched.rolled_off:,})"
        if self.filter is not None:  # what the list holds, not what was ever shown
            shown = f"{len(sched.matched):,} of {seen:,} conversations match{extra}"
        else:
            shown = f"{sched.shown_total:,} of {seen:,} conversations shown{extra}"
        self._label("#st-shown", shown)
        visible = len(self._w(ConversationList).rows)
        title = f"conversations ({visible:,})" + (f" matching `{self.filter.text}`" if self.filter else "")
        pane = self._w("#list-pane")
        title = escape(title)  # the filter's text is the user's, not markup
        if pane.border_title != title:
            pane.border_title = title
            pane.border_subtitle = "newest at the bottom · ? for help"

    # -- summary for the terminal after quitting ---------------------------------------------------
    def exit_summary(self) -> str:
        f = self.feed
        sched = self.schedule
        with f.lock:  # bring the rows still listed up to date, so the share is exact
            sched.update_all(f.corr, f.t0 or 0)
        counted = f.packet_events + f.lost  # lost events are counted as packet events
        share = f" ({100 * sched.events_shown / counted:.1f}%)" if counted else ""
        text = (f"vethtrace tui: {f.received:,} events read ({f.packet_events:,} about packets), {f.lost:,} lost; "
                f"{f.conversations_seen:,} conversations, {sched.shown_total:,} shown; "
                f"{sched.events_shown:,} of {counted:,} packet events were in shown conversations{share}")
        if self.live:
            text += "; probes detached" if f.closed else "; probes still attached?"
        exact = self.exact_lines()
        return "\n".join([text, *exact]) if exact else text


def build_app(source, *, command: list[str] | None = None) -> VethtraceApp:
    """The TUI for an event source (tracer.sources.ReplaySource or LiveEvents, entered).
    The app owns the source from here: quitting stops the reader and closes it."""
    return VethtraceApp(source, command)


def run(source, command: list[str] | None = None) -> int:
    """Run the TUI in this terminal until q / Ctrl-C (or SIGTERM/SIGHUP); the probes are
    detached before this returns.  Returns the command's exit status, else 0."""
    app = build_app(source, command=command)

    def on_signal(signum, frame) -> None:
        if signum == signal.SIGHUP and not _terminal_alive():
            # The terminal is gone (window closed, tmux session killed).  Textual cannot
            # restore it and can block writing to it: detach the probes and leave now.
            app.shutdown(timeout=1.0)
            os._exit(128 + signum)
        app.request_quit()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        app.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        app.shutdown()
    print(app.exit_summary(), flush=True)
    return app.exit_status


def _terminal_alive() -> bool:
    """Can the controlling terminal still be used?  (After a hang-up its ioctls fail.)"""
    for stream in (sys.__stdin__, sys.__stdout__):
        try:
            termios.tcgetattr(stream.fileno())
            return True
        except (termios.error, OSError, ValueError, AttributeError):
            continue
    return False
