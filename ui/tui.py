"""`vethtrace tui`: watch packets flow, select one, and see where it went and why it stopped.

The app is built from an event source (tracer/sources.py: live probes or a recording), so
tests build it from recorded traces.  A reader thread polls the source and feeds the
correlator in chunks, under a lock; the UI takes what changed ten times a second (never a
message per event).  Memory is bounded: the correlator keeps KEEP_JOURNEYS journeys, the
list MAX_ROWS rows, the saveable recording MAX_RAW events.  When a flood is faster than
the list can show, failures go first and the rest is counted ("shown N of M").
"""
from __future__ import annotations

import bisect
import heapq
import importlib
import ipaddress
import os
import pty
import shlex
import signal
import subprocess
import sys
import termios
import threading
import time
from collections import deque

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Log, Static
from rich.table import Table
from rich.text import Text

from vethtrace.tracer import recording, runner
from vethtrace.tracer.correlate import Conversation, Correlator
from vethtrace.tracer.events import PACKET_KINDS
from vethtrace.tracer.verdict import ANSWERED, CONSUMED, DELIVERED, DROPPED, IN_FLIGHT
from vethtrace.ui.widgets import (LOST, ConversationList, ListHeader, Row, detail_renderable, might_fail,
                        path_renderable)

KEEP_JOURNEYS = 20_000   # journeys the correlator keeps (older ones are forgotten)
MAX_ROWS = 2_000         # rows in the list; the oldest roll off
MAX_RAW = 100_000        # raw events kept for "save the recording"
BACKLOG = 2_000          # conversations waiting to be shown; beyond this the oldest are skipped
FAIL_BACKLOG = 500       # failures waiting to be shown (kept when the backlog overflows)
ROWS_PER_TICK = 60       # conversations turned into rows per tick (600/s: more than anyone reads)
TICK_BUDGET_S = 0.010    # and at most this long per tick on rows, so keys are handled promptly
DETAIL_EVERY_S = 0.3     # following a flood: redraw the detail of the newest row at most this often
SWITCH_INTERVAL_S = 0.0005  # hand the GIL to the UI thread sooner than Python's 5 ms (see on_mount)
TICK_S = 0.1             # the UI takes what changed ten times a second
POLL_MS = 100            # the reader's poll timeout (short, so quitting is quick)
CHUNK = 1_000            # events fed to the correlator per lock hold
READER_SHARE = 0.5       # most of the time the reader may spend busy in a flood (rest: the UI)
TOUCH_CAP = 20_000       # ended-journey notifications kept while paused
LOSSY_GAP_NS = 100_000_000  # loss windows closer than this merge into one

EXPORT_MISSING = "diagram export arrives with `vethtrace render`"


# -- filter --------------------------------------------------------------------------------
PROTOCOLS = {"icmp", "arp", "tcp", "udp", "ipv4", "ipv6", "echo", "ping"}
VERDICTS = {"delivered": "delivered", "answered": "answered", "consumed": "consumed",
            "dropped": "dropped", "drop": "dropped", "drops": "dropped", "failed": "failed",
            "fail": "failed", "failures": "failed", "inflight": "in flight", "in-flight": "in flight",
            "lost": "lost", "incomplete": "lost", "ok": "ok"}
KEYS = {"proto": "proto", "protocol": "proto", "host": "addr", "addr": "addr", "ip": "addr",
        "address": "addr", "dev": "dev", "if": "dev", "iface": "dev", "interface": "dev",
        "verdict": "verdict", "v": "verdict", "text": "text"}


class FilterError(ValueError):
    pass


class Filter:
    """What the list shows: every term must match (AND); `!term` or `-term` negates.

    Terms: a protocol (icmp arp tcp udp ipv6 echo), an IPv4 address, an interface name
    of the traced namespace, a verdict (delivered answered consumed dropped failed lost
    in-flight ok), `key:value` to say which (proto: host: dev: verdict: text:), or any
    other text (quote it to include spaces), searched in the packet, path and verdict."""

    def __init__(self, text: str, interfaces: set[str] = frozenset()):
        self.text = text.strip()
        self.terms: list[tuple[bool, str, str]] = []  # (negated, kind, value)
        try:
            words = shlex.split(self.text)  # "seq 2" in quotes is one term
        except ValueError:
            words = self.text.split()
        for word in words:
            neg = word[0] in "!-" and len(word) > 1
            word = word[1:] if neg else word
            kind, value = self._classify(word.lower(), interfaces)
            self.terms.append((neg, kind, value))

    @staticmethod
    def _classify(word: str, interfaces) -> tuple[str, str]:
        if ":" in word:
            key, value = word.split(":", 1)
            if key in KEYS and value:
                kind = KEYS[key]
                if kind == "verdict":
                    if value not in VERDICTS:
                        raise FilterError(f"unknown verdict {value!r}: use one of "
                                          "delivered, answered, consumed, dropped, failed, lost, in-flight, ok")
                    value = VERDICTS[value]
                elif kind == "addr":
                    try:
                        ipaddress.ip_address(value)
                    except ValueError:
                        raise FilterError(f"{value!r} is not an IP address") from None
                return kind, value
        if word in PROTOCOLS:
            return "proto", word
        if word in VERDICTS:
            return "verdict", VERDICTS[word]
        try:
            ipaddress.ip_address(word)
            return "addr", word
        except ValueError:
            pass
        if word in interfaces:
            return "dev", word
        return "text", word

    def matches(self, row: Row) -> bool:
        return all(self._term(row, kind, value) != neg for neg, kind, value in self.terms)

    @staticmethod
    def _term(row: Row, kind: str, value: str) -> bool:
        if kind == "proto":
            return value in row.protos
        if kind == "addr":
            return value in row.addrs
        if kind == "dev":
            return value in row.devs
        if kind == "verdict":
            if value == "failed":
                return row.failure
            if value == "ok":
                return row.outcome in (DELIVERED, ANSWERED)
            return row.outcome == value
        return value in row.text

    def describe(self) -> str:
        return self.text or "none"


# -- the model: reader thread, correlator, counters ---------------------------------------------
class Feed:
    """Reads the source in a thread and feeds the correlator; the UI takes changes."""

    def __init__(self, source, keep: int | None = None, max_raw: int | None = None):
        self.source = source
        self.lock = threading.Lock()
        self.corr = Correlator(dict(getattr(source, "context", None) or {}), keep=keep or KEEP_JOURNEYS)
        self.corr.on_journey_end = self._ended
        self.raw: deque = deque(maxlen=max_raw or MAX_RAW)
        self.received = 0          # events read from the source
        self.packet_events = 0     # of which about a packet (the rest: routes, neighbours)
        self.lost = 0              # events the kernel could not deliver
        self.lost_known = True
        self.t0: int | None = None
        self.last_ts = 0
        self.error: str | None = None
        self.done = False          # a recording was read to its end
        self.live = bool(getattr(source, "live", False))
        self.lossy: deque[tuple[int, int]] = deque(maxlen=256)  # (from, to) ts where events were lost
        self._prev_last = 0
        self._loss_pending = False
        self.own = 0               # events about this process's own sockets, left out
        self.ui_waiting = threading.Event()
        self._touched: dict[int, Conversation] = {}
        self._touch_overflow = False
        self._last_conv = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def _ended(self, j) -> None:
        conv = j.conversation
        if conv is None:
            return
        if len(self._touched) < TOUCH_CAP:
            self._touched[conv.id] = conv
        else:
            self._touch_overflow = True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vethtrace-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        src = self.source
        me = os.getpid()
        while not self._stop.is_set():
            try:
                started = time.perf_counter()
                events = src.poll(POLL_MS)
                if events and self.live:
                    # The UI's own event loop wakes itself through a local socket: the
                    # deliver probe sees those 1-byte reads.  Not the user's traffic.
                    kept = [e for e in events if e.pid != me or e.kind != "deliver"]
                    self.own += len(events) - len(kept)
                    events = kept
                # Before feeding, so no row is drawn from this batch without the mark.
                lost = src.lost()
                self.lost_known = lost is not None
                if lost and lost > self.lost:
                    self._loss_pending = True  # the next events read are the ones around it
                if self._loss_pending and events:
                    self._mark_lossy(events[0].ts, events[-1].ts)
                    self._loss_pending = False
                self.lost = lost or 0
                for i in range(0, len(events), CHUNK):
                    chunk = events[i:i + CHUNK]
                    with self.lock:
                        if self.t0 is None:
                            self.t0 = chunk[0].ts
                        self.corr.feed(chunk)
                        self.raw.extend(chunk)
                        self.received += len(chunk)
                        self.packet_events += sum(1 for e in chunk if e.kind in PACKET_KINDS)
                        self.last_ts = max(self.last_ts, chunk[-1].ts)
                    self._prev_last = chunk[-1].ts
                    if self.ui_waiting.is_set():
                        time.sleep(0.001)  # let the UI take the lock between chunks
                if getattr(src, "exhausted", False):
                    self.done = True
                elif events and self.live and READER_SHARE < 1:
                    # Python runs one thread at a time: a reader that never rests starves
                    # the UI.  Rest in proportion to the work; in a flood the kernel counts
                    # what this costs as lost events, and the status bar shows them.
                    rest = (time.perf_counter() - started) * (1 - READER_SHARE) / READER_SHARE
                    if rest > 0.0005:
                        self._stop.wait(min(rest, 0.05))
            except Exception as exc:  # shown in the status bar; the UI stays usable
                self.error = f"{type(exc).__name__}: {exc}"
                return

    def _mark_lossy(self, first: int, last: int) -> None:
        """The kernel dropped events while this batch was waiting to be read: journeys
        around then may miss hops or their end."""
        start = min(first, self._prev_last or first)
        with self.lock:
            w = self.lossy
            if w and start <= w[-1][1] + LOSSY_GAP_NS:
                w[-1] = (w[-1][0], max(w[-1][1], last))
            else:
                w.append((start, last))
        self._prev_last = last

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading; returns once the reader no longer touches the source."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop reading and detach/close the source (idempotent)."""
        self.stop(timeout)
        if not self._closed:
            self._closed = True
            self.source.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def take(self):
        """(new conversations, {id: conversation} whose journeys ended, overflowed?) since
        the last call.  Call with the lock held."""
        convs = self.corr.conversations
        i = len(convs)
        while i and convs[i - 1].id > self._last_conv:
            i -= 1
        new = convs[i:]
        if new:
            self._last_conv = new[-1].id
        touched, self._touched = self._touched, {}
        overflow, self._touch_overflow = self._touch_overflow, False
        return new, touched, overflow

    @property
    def conversations_seen(self) -> int:
        return self._last_conv  # ids count up from 1

    def snapshot(self) -> tuple[list, int]:
        """The kept raw events and how many older ones rolled off."""
        with self.lock:
            return list(self.raw), self.received - len(self.raw)


# -- a command run under the tracer -------------------------------------------------------------
class CommandRunner:
    """`vethtrace tui -- ping ...`: the command runs on a pty (line-buffered, as in a
    terminal); its output is shown in a pane."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.lines: deque[str] = deque(maxlen=2_000)
        self.status: int | None = None
        self.error: str | None = None
        self.proc: subprocess.Popen | None = None
        self._master = -1

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0]) if self.argv else "command"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.status is None

    def start(self) -> None:
        master, slave = pty.openpty()
        try:
            self.proc = runner.start(self.argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                     start_new_session=True)  # dies with vethtrace (PR_SET_PDEATHSIG)
        except OSError as exc:
            self.error = f"cannot run {self.argv[0]}: {exc.strerror}"
            os.close(master)
            return
        finally:
            os.close(slave)
        self._master = master
        threading.Thread(target=self._read, name="vethtrace-command", daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data.replace(b"\r\n", b"\n")
            *done, buf = buf.split(b"\n")
            self.lines.extend(d.decode(errors="replace") for d in done)
        if buf:
            self.lines.append(buf.decode(errors="replace"))
        self.status = self.proc.wait()

    def take(self) -> list[str]:
        out = []
        while self.lines:
            out.append(self.lines.popleft())
        return out

    def stop(self) -> None:
        """Interrupt the command (ping prints its statistics), then kill it if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._master >= 0:
            try:
                os.close(self._master)
            except OSError:
                pass
            self._master = -1


# -- screens ---------------------------------------------------------------------------------------
HELP_KEYS = [
    ("p  space", "pause / resume the list (tracing and counting go on while paused)"),
    ("/", "filter: type terms, Enter applies, an empty filter shows everything"),
    ("escape", "clear the filter"),
    ("f", "follow: keep the newest conversation selected (on/off)"),
    ("d  D", "jump to the next / previous drop or unanswered request"),
    ("↑ ↓  j k", "select a conversation; PgUp PgDn Home End also work"),
    ("tab", "move between the list, the detail and the path (to scroll them)"),
    ("s", "save the recording (the last events kept) as a file `vethtrace show` reads"),
    ("e", "export the selected conversation as an SVG diagram"),
    ("?", "this help"),
    ("q  ctrl+c", "quit (the probes are detached)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def on_mount(self) -> None:
        body = self.query_one("#help-body")
        body.border_title = "help"
        body.border_subtitle = "↑ ↓ scroll · escape closes"
        body.focus()

    def compose(self) -> ComposeResult:
        keys = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for k, what in HELP_KEYS:
            keys.add_row(k, what)
        marks = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        marks.add_column(no_wrap=True)
        marks.add_column()
        marks.add_row(Text("✓ delivered / answered", "green"), "the packet reached a socket, or the stack answered it")
        marks.add_row(Text("■ consumed / no reply", "yellow"), "the stack took it without an error, but nothing came back")
        marks.add_row(Text("✗ dropped: REASON", "bold red"), "freed by the kernel with a drop reason (see the detail for advice)")
        marks.add_row(Text("… in flight", "cyan"), "no end seen yet")
        marks.add_row(Text("? incomplete", "bold magenta"), "no end seen, and the kernel lost events: the trace has gaps")
        with VerticalScroll(id="help-body"):
            yield Static(Text("vethtrace tui — keys", "bold"), classes="help-title")
            yield Static(keys)
            yield Static(Text("\nEach row is a conversation: an echo request with its reply or error, or an ARP "
                              "exchange. The path lists where each packet went (device, stack handler, socket); "
                              "⇒ separates the request's path from the reply's. Select a row to see every hop "
                              "(device, kernel function, namespace, time since the previous hop) and why it ended."))
            yield Static(Text("\nVerdicts", "bold"))
            yield Static(marks)
            yield Static(Text("\nFilter terms", "bold"))
            yield Static(Text("icmp arp tcp udp · 192.168.2.1 · veth1 · dropped failed delivered lost · any text · "
                              "key:value (proto: host: dev: verdict: text:) · !term to exclude. "
                              "Every term must match, e.g. `icmp dropped` or `arp !192.168.2.2`."))
            yield Static(Text("\nStatus bar", "bold"))
            yield Static(Text("LIVE or PAUSED or REPLAY · events per second and total · events the kernel lost "
                              "(red when not zero) · probe mechanism · filter · follow · conversations shown of "
                              "those seen (in a flood the list shows failures first and counts the rest)."))
            yield Static(Text("\nescape or ? closes this help", "dim"))


class SaveScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str, note: str):
        super().__init__()
        self.default, self.note = default, note

    def compose(self) -> ComposeResult:
        with Vertical(id="save-box"):
            yield Label("Save the recording to (Enter saves, Escape cancels):")
            yield Input(value=self.default, id="save-path")
            yield Label(self.note, id="save-note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class FilterBar(Input):
    """The filter line above the list: Enter applies, Escape closes it unchanged."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def action_cancel(self) -> None:
        self.app.close_filter_bar()


# -- the app ------------------------------------------------------------------------------------
class VethtraceApp(App):
    CSS_PATH = "tui.tcss"
    TITLE = "vethtrace"
    SCREENS = {"help": HelpScreen}
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("p,space", "pause", "Pause"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "follow", "Follow"),
        Binding("d", "next_drop", "Next drop"),
        Binding("D", "previous_drop", "Prev drop", show=False),
        Binding("s", "save", "Save"),
        Binding("e", "export", "SVG"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, source, command: list[str] | None = None):
        super().__init__()
        self.source = source
        self.feed = Feed(source)
        self.live = bool(getattr(source, "live", False))
        self.mechanism = getattr(source, "mechanism", "") or "?"
        self.runner = CommandRunner(command) if command else None
        self.command = list(command or [])
        self.filter: Filter | None = None
        self.paused = False
        self.follow = self.live
        self.rows: list[Row] = []          # every evaluated conversation, by id (bounded)
        self.matched: list[Row] = []       # rows matching the filter (bounded; = rows without one)
        self.by_id: dict[int, Row] = {}
        self.backlog: deque[Conversation] = deque()
        self.fail_backlog: deque[Conversation] = deque()
        self.queued: set[int] = set()
        self.dirty: dict[int, Conversation] = {}  # listed rows whose conversation changed
        self.shown_total = 0               # rows ever added
        self.skipped = 0                   # conversations never shown (flood)
        self.rolled_off = 0                # rows removed to bound memory
        self.events_shown = 0              # events of the conversations shown
        self.exit_status = 0
        self._quit_requested = False
        self._rate = 0.0
        self._rate_mark = (time.monotonic(), 0)
        self._last_lost_refresh = 0.0
        self._selected: Row | None = None
        self._draw_pending = False
        self._drawn_at = 0.0
        self._switch_interval = None
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
            with VerticalScroll(id="detail-pane"):
                yield Static(id="detail")
            with VerticalScroll(id="path-pane"):
                yield Static(id="path")
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
        self._main = self.screen
        self._w(ConversationList).header = self._w(ListHeader)
        self._w("#list-pane").border_title = "conversations"
        self._w("#detail-pane").border_title = "detail"
        self._w("#path-pane").border_title = "path"
        self._w(FilterBar).border_title = "filter · Enter applies · Escape cancels · the terms are listed in the help (?)"
        if self.runner is not None:
            self._w("#command-log").border_title = " ".join(self.command)
        self.feed.start()
        if self.runner is not None:
            self.runner.start()
            if self.runner.error:
                self._w("#command-log", Log).write_line(self.runner.error)
        self._w(ConversationList).focus()
        self._show_selection(None)
        self._update_status()
        self.set_interval(TICK_S, self.tick)

    def on_resize(self) -> None:
        self._show_selection(self._selected)

    def on_unmount(self) -> None:
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        self.shutdown()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the command and the reader, then detach the probes (idempotent)."""
        if self.runner is not None:
            self.runner.stop()
            proc = self.runner.proc
            if proc is not None and proc.returncode is not None:
                self.exit_status = proc.returncode
            elif self.runner.error:
                self.exit_status = 127
        self.feed.close(timeout)

    @property
    def caught_up(self) -> bool:
        """A recording was read to its end and every conversation in it was considered
        (tests and the benchmark wait for this)."""
        feed = self.feed
        if not feed.done or self.paused or self.backlog or self.fail_backlog:
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
                changed = self._apply(*self.feed.take())
            if changed:
                self._refresh_list()
        if self._draw_pending and time.monotonic() - self._drawn_at >= DETAIL_EVERY_S:
            self._show_selection(self._selected)
        self._drain_command()
        self._update_status()

    def _apply(self, new, touched, overflow) -> set[int]:
        """Fold the changes into rows; returns the ids of rows that changed."""
        corr, t0 = self.feed.corr, self.feed.t0 or 0
        lost = self._lost_clock()
        changed: set[int] = set()
        deadline = time.perf_counter() + TICK_BUDGET_S
        for cid, conv in touched.items():
            if cid in self.by_id:
                self.dirty[cid] = conv
            elif cid not in self.queued and (self.filter is not None or might_fail(conv)):
                self._enqueue(conv)
        # Rows whose conversation changed; what the budget leaves waits for the next tick.
        selected = self._selected.conv.id if self._selected is not None else None
        for cid in sorted(self.dirty, key=lambda c: c != selected):
            if time.perf_counter() > deadline and cid != selected:
                break
            self.dirty.pop(cid)
            row = self.by_id.get(cid)
            if row is not None:
                self.events_shown += row.update(corr, t0, lost, self.feed.lossy)
                changed.add(cid)
        now = time.monotonic()
        if overflow or (lost is not None and now - self._last_lost_refresh > 1.0):
            # Notifications were dropped (long pause) or rows may have become "incomplete".
            self._last_lost_refresh = now
            for row in self.rows:
                if row.outcome in (IN_FLIGHT, LOST):
                    self.events_shown += row.update(corr, t0, lost, self.feed.lossy)
                    changed.add(row.conv.id)
        for conv in new:
            self._enqueue(conv)
        changed.update(self._evaluate(corr, t0, lost, deadline + TICK_BUDGET_S / 2))
        self._trim()
        return changed

    def _lost_clock(self) -> int | None:
        """When events were lost: the newest event's time (rows quiet since long before it
        are incomplete, not in flight); else None."""
        return self.feed.last_ts if self.feed.lost > 0 else None

    def _enqueue(self, conv: Conversation) -> None:
        self.backlog.append(conv)
        self.queued.add(conv.id)
        while len(self.backlog) > BACKLOG:
            old = self.backlog.popleft()
            if might_fail(old) and len(self.fail_backlog) < FAIL_BACKLOG:
                self.fail_backlog.append(old)  # failures wait in their own line
            else:
                self.queued.discard(old.id)
                self.skipped += 1

    def _evaluate(self, corr: Correlator, t0: int, lost: int | None, deadline: float) -> set[int]:
        added: set[int] = set()
        budget = ROWS_PER_TICK
        while budget and (self.fail_backlog or self.backlog) and (
                time.perf_counter() < deadline or budget == ROWS_PER_TICK):
            conv = (self.fail_backlog or self.backlog).popleft()
            self.queued.discard(conv.id)
            if conv.id in self.by_id:
                continue
            budget -= 1
            row = Row(conv)
            delta = row.update(corr, t0, lost, self.feed.lossy)
            if self.filter is not None and not row.matches(self.filter) and not row.failure:
                continue  # not worth a row now; shown if it changes and matches later
            bisect.insort(self.rows, row, key=_row_key)
            self.by_id[conv.id] = row
            self.events_shown += delta
            self.shown_total += 1
            added.add(conv.id)
        return added

    def _trim(self) -> None:
        if len(self.rows) <= MAX_ROWS and len(self.matched) <= MAX_ROWS:
            return
        same = self.matched is self.rows
        keep = self._selected
        for name in ("rows", "matched"):
            rows = getattr(self, name)
            excess = len(rows) - MAX_ROWS
            if excess <= 0:
                continue
            out = []
            for r in rows:
                if excess > 0 and r is not keep:
                    excess -= 1
                    if name == "rows":
                        self.rolled_off += 1
                    continue
                out.append(r)
            setattr(self, name, out)
            if same:
                self.matched = self.rows
                break
        self.by_id = {r.conv.id: r for r in self.rows}
        self.by_id.update((r.conv.id, r) for r in self.matched)
        for cid in [c for c in self.dirty if c not in self.by_id]:
            del self.dirty[cid]

    def _refresh_list(self) -> None:
        if self.filter is None:
            self.matched = self.rows
        else:
            # Matching rows outlive the unfiltered ones (a rare match in a flood stays listed).
            merged = heapq.merge(self.rows, self.matched, key=_row_key)
            out, last = [], None
            for r in merged:
                if (last is None or r.conv.id != last.conv.id) and r.matches(self.filter):
                    out.append(r)
                last = r
            self.matched = out[-MAX_ROWS:]
        self._w(ConversationList).set_rows(list(self.matched), follow=self.follow)

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
        self._w("#detail", Static).update(detail_renderable(row, self.feed.corr, styles))
        self._w("#path", Static).update(path_renderable(row, self.feed.corr, width, styles))

    def _outcome_styles(self) -> dict:
        lst = self._w(ConversationList)
        out = {}
        for outcome in (DELIVERED, ANSWERED, CONSUMED, DROPPED, IN_FLIGHT, LOST):
            out[outcome] = lst.get_component_rich_style("conversation-list--" + outcome.replace(" ", "-"),
                                                        partial=True)
        return out

    def _empty_hint(self) -> Text:
        ctx = self.feed.corr.context
        if self.filter is not None and self.rows:
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
        try:
            self.set_filter(event.value)
        except FilterError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.close_filter_bar()

    def close_filter_bar(self) -> None:
        self._w(FilterBar).remove_class("-open")
        self._w(ConversationList).focus()

    def set_filter(self, text: str) -> None:
        flt = Filter(text, self._interfaces) if text.strip() else None
        self.filter = flt
        if flt is None:
            self.matched = self.rows
        with self.feed.lock:
            self._refresh_list()
        if not self.matched:
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
        if not path:
            return
        self.run_worker(lambda: self.save_recording(path), thread=True, exclusive=False)

    def save_recording(self, path: str) -> None:
        """Write the kept events as a recording (runs in a worker thread)."""
        events, rolled = self.feed.snapshot()
        rec = getattr(self.source, "rec", None)
        command = self.command or (rec.header.get("command") if rec is not None else None)
        try:
            recording.write_file(path, recording.header(self.feed.corr.context, self.mechanism, command),
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
            diagram = importlib.import_module("vethtrace.ui.diagram")  # never a `ui` from the working directory
        except ModuleNotFoundError as exc:
            if exc.name != "vethtrace.ui.diagram":
                raise
            diagram = None
        render = getattr(diagram, "render_conversation", None)
        if render is None:
            self.notify(EXPORT_MISSING, markup=False)
            return
        path = f"vethtrace-conversation-{row.conv.id}.svg"
        self.run_worker(lambda: self._export(render, row, path), thread=True, exclusive=False)

    def _export(self, render, row: Row, path: str) -> None:
        try:
            with self.feed.lock:
                written = render(row.conv, self.feed.corr, path)
        except Exception as exc:  # e.g. graphviz missing: say so, keep running
            self.call_from_thread(self.notify, f"SVG export failed: {exc}", severity="error", markup=False)
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
        log.border_title = title

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
        seen = feed.conversations_seen
        extra = ""
        if self.skipped or self.rolled_off:
            extra = f" (skipped {self.skipped:,}, rolled off {self.rolled_off:,})"
        self._label("#st-shown", f"{self.shown_total:,} of {seen:,} conversations shown{extra}")
        visible = len(self._w(ConversationList).rows)
        title = f"conversations ({visible:,})" + (f" matching `{self.filter.text}`" if self.filter else "")
        pane = self._w("#list-pane")
        if pane.border_title != title:
            pane.border_title = title
            pane.border_subtitle = "newest at the bottom · ? for help"

    # -- summary for the terminal after quitting ---------------------------------------------------
    def exit_summary(self) -> str:
        f = self.feed
        with f.lock:  # bring the rows still listed up to date, so the share is exact
            for row in list(self.by_id.values()):
                self.events_shown += row.update(f.corr, f.t0 or 0, self._lost_clock(), f.lossy)
        counted = f.packet_events + f.lost  # lost events are counted as packet events
        share = f" ({100 * self.events_shown / counted:.1f}%)" if counted else ""
        text = (f"vethtrace tui: {f.received:,} events read ({f.packet_events:,} about packets), {f.lost:,} lost; "
                f"{f.conversations_seen:,} conversations, {self.shown_total:,} shown; "
                f"{self.events_shown:,} of {counted:,} packet events were in shown conversations{share}")
        if self.live:
            text += "; probes detached" if f.closed else "; probes still attached?"
        return text


def _row_key(row: Row) -> int:
    return row.conv.id


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
