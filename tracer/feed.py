"""Reader threads that a user interface takes its data from, without waiting on them.

`Feed` reads an event source (tracer/sources.py: live probes or a recording) in a thread,
feeds the correlator in chunks under a lock, and keeps what a UI asks for on its own
schedule: the conversations that are new or changed since it last asked, counters, the
loss windows, the kernel's exact counts (tracer.counters: read every COUNTS_EVERY_S, with
the summary row of each path learnt from the journeys as they end, into `exact`), and the
raw events for "save the recording".  `CommandOutput` runs a
command on a pty (tracer/runner.py: it dies with vethtrace) and collects its lines in a
thread.  Nothing here imports a UI toolkit.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque

from .correlate import Conversation, Correlator
from .counters import ExactPaths, KernelCounts
from .events import PACKET_KINDS
from .losses import LossWindows
from . import runner
from .runner import PtyCommand

KEEP_JOURNEYS = 2_000    # journeys the correlator keeps (older ones are forgotten; retention.KEEP_JOURNEYS):
                         # two per echo, as many as the list's rows (ui.tui.schedule.MAX_ROWS) show
MAX_RAW = 20_000         # raw events kept for "save the recording" (~1 KB each with their packets)
POLL_MS = 100            # the reader's poll timeout (short, so quitting is quick)
CHUNK = 1_000            # events fed to the correlator per lock hold
READER_SHARE = 0.5       # most of the time the reader may spend busy in a flood (rest: the UI)
TOUCH_CAP = 20_000       # ended-journey notifications kept while the UI does not take them
LOSSY_GAP_NS = 100_000_000  # loss windows closer than this merge into one
COMMAND_LINES = 2_000    # lines of a command's output kept until the UI takes them
COUNTS_EVERY_S = 1.0     # how often the kernel's counts are read (a few ms of map lookups)
NOTE_AFTER_NS = 500_000_000  # an ended journey's row is learnt this much later: a socket's
                             # delivery is reported after the free that ends the journey


class Feed:
    """Reads the source in a thread and feeds the correlator; the UI takes changes."""

    def __init__(self, source, keep: int | None = None, max_raw: int | None = None):
        self.source = source
        self.lock = threading.Lock()
        self.corr = Correlator(dict(getattr(source, "context", None) or {}), keep=keep or KEEP_JOURNEYS,
                               namespaces=getattr(source, "namespaces", None))
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
        # When events were lost (from, to): verdicts of journeys around them are INCOMPLETE.
        self.lossy = self.corr.losses = LossWindows()
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
        self.kernel: KernelCounts | None = None  # the latest reading (None: the source has none)
        # set by the UI before start(): learns each counted path's row as journeys end
        self.exact: ExactPaths | None = None
        self._counts_at = 0.0
        self._unnoted: dict[int, object] = {}  # ended journeys whose rows are not learnt yet, oldest first
        self.corr.on_forget = self._forgotten

    def read_counts(self) -> None:
        """The kernel's counts now, if the source keeps them (live probes; a recording's
        footer)."""
        read = getattr(self.source, "kernel_counts", None)
        if read is not None:
            self.kernel = read()
        self._counts_at = time.monotonic()

    def _note_ended(self, now_ts: int | None) -> None:
        """Teach `exact` the rows of journeys that ended NOTE_AFTER_NS before now_ts (all
        with None).  Call with the lock held."""
        q = self._unnoted
        while q:
            j = q[next(iter(q))]
            if now_ts is not None and now_ts - j.last <= NOTE_AFTER_NS and len(q) <= TOUCH_CAP:
                break
            del q[j.id]
            self.exact.note(j)

    def _forgotten(self, journeys, _conversations) -> None:
        """The correlator forgets these (and then their conversations): learnt now, while
        their conversation still says what became of them."""
        q = self._unnoted
        if q:
            for j in journeys:
                if q.pop(j.id, None) is not None:
                    self.exact.note(j)

    def _ended(self, j) -> None:
        if self.exact is not None:
            self._unnoted[j.id] = j
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
                        if self._unnoted:
                            self._note_ended(chunk[-1].ts)
                        self.raw.extend(chunk)
                        self.received += len(chunk)
                        self.packet_events += sum(1 for e in chunk if e.kind in PACKET_KINDS)
                        self.last_ts = max(self.last_ts, chunk[-1].ts)
                    self._prev_last = chunk[-1].ts
                    if self.ui_waiting.is_set():
                        time.sleep(0.001)  # let the UI take the lock between chunks
                if self._unnoted and self.live and not events:
                    with self.lock:  # quiet: what ended a while ago (the probes' clock) is complete
                        self._note_ended(time.monotonic_ns())
                if time.monotonic() - self._counts_at >= COUNTS_EVERY_S and (self.live or not self.done):
                    self.read_counts()  # in this thread: the probes are only touched by it
                if getattr(src, "exhausted", False):
                    if self._unnoted:
                        with self.lock:
                            self._note_ended(None)  # the recording's last journeys are complete
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
            if w and start <= w.ends[-1] + LOSSY_GAP_NS:
                w.ends[-1] = max(w.ends[-1], last)
            else:
                w.add(start, last)
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
            if self.live and (self._thread is None or not self._thread.is_alive()):
                try:
                    with self.lock:
                        self._note_ended(None)
                    self.read_counts()  # the last reading, for the summary printed after quitting
                except OSError:
                    pass
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


class CommandOutput:
    """A command run while tracing (`vethtrace tui -- ping ...`): it runs on a pty, so its
    output is line-buffered as in a terminal, and a thread collects the lines for a UI to
    take.  The command is started by the thread that calls start(), and dies with it
    (PR_SET_PDEATHSIG follows the thread): call start() from the main thread."""

    def __init__(self, argv: list[str]):
        self.argv = list(argv)
        self.lines: deque[str] = deque(maxlen=COMMAND_LINES)
        self.status: int | None = None   # its exit status, once it has exited
        self.error: str | None = None    # why it could not start
        self._cmd: PtyCommand | None = None
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0]) if self.argv else "command"

    @property
    def proc(self):
        return self._cmd.proc if self._cmd is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.status is None

    def start(self) -> None:
        try:
            self._cmd = PtyCommand(self.argv).start()
        except OSError as exc:
            self.error = f"cannot run {self.argv[0] if self.argv else '(nothing)'}: {exc.strerror or exc}"
            self._cmd = None
            return
        self._thread = threading.Thread(target=self._read, name="vethtrace-command", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        cmd, buf = self._cmd, b""
        while data := cmd.read():
            buf += data.replace(b"\r\n", b"\n")
            *done, buf = buf.split(b"\n")
            self.lines.extend(d.decode(errors="replace") for d in done)
        if buf:
            self.lines.append(buf.decode(errors="replace"))
        self.status = cmd.wait()

    def take(self) -> list[str]:
        out = []
        while self.lines:
            out.append(self.lines.popleft())
        return out

    def stop(self, grace: float = 1.0) -> int | None:
        """Interrupt the command (ping prints its statistics), kill it if it lingers, then
        close the pty.  Returns its exit status (None when it never started)."""
        cmd = self._cmd
        if cmd is None:
            return None
        status = runner.stop(cmd.proc, signal.SIGINT, grace)
        # Its last lines are still in the pty: the reader ends at EIO once they are read.
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=grace)
        cmd.close()
        if self.status is None:
            self.status = status
        return status
