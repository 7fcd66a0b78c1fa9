"""Recordings: versioned JSON lines, one event per line, so jq can read them and every
command can replay them through the same correlator as a live stream.

Line 1 is the header: {"vethtrace": "recording", "version": 2, "fields": [...], "context": {...}, ...}.
Then one event per line: in format 2 a JSON array whose columns the header's "fields"
names (Event.to_row), in format 1 a JSON object (Event.to_json).  Rows are what makes
replay fast: parsing an array and unpacking it costs about half of looking up an object's
keys.  The last line may be a footer {"footer": true, "events": N, "lost": L}: how many
events the kernel could not deliver.  Format 1 files are still read.

The footer's "counts" (tracer.counters.KernelCounts.to_json) are the kernel's own counts of
every drop and every packet's path when the recording ended: summaries and diagrams of a
recording that lost events are exact with them.  Being many entries, a footer may be longer
than an event line (up to MAX_FOOTER); recordings made before it have no counts.

Namespaces (tracer.netns): the header's "context" is the namespace vethtrace ran in; its
"namespaces" lists every namespace known when it was written (name, interfaces, routes,
sysctls); the footer's "namespaces" those first met while recording.  Older recordings
have neither: their namespaces are the context's and the others are named netns:INODE.
"""
from __future__ import annotations

import contextlib
import json
import marshal
import os
import platform
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator

try:
    import orjson

    def dumps(obj) -> bytes:
        return orjson.dumps(obj)

    loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    def dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    loads = json.loads

from functools import partial
from itertools import islice

from . import losses, safefile, untrusted
from .counters import KernelCounts
from .events import FIELDS, Event, RowDecoder, object_row
from .netns import Namespaces

FORMAT = "recording"
VERSION = 2
CHUNK = 8192  # lines parsed per batch: bounded memory on top of the events themselves
# The longest line read: a header with a big context, or an event row (real ones are under
# 1 KiB).  A longer line is refused, so a crafted file cannot make one line take gigabytes.
MAX_HEADER = 1 << 20
MAX_LINE = 16 << 10
MAX_FOOTER = 1 << 20  # the footer with the kernel's counts (two maps of 4096 entries fit)
FOOTER_START = b'{"footer":true'  # how the footer Writer writes begins
# the header's wall_offset_ns: Unix time minus CLOCK_MONOTONIC; with an event's ts (< 2**63)
# it must fit pcapng's 64-bit timestamps
WALL_OFFSET_MAX = (1 << 62) - 1
CHUNK_BYTES = 8 << 20  # a chunk bigger than this is parsed line by line, failing at the first bad one


class RecordingError(ValueError):
    """The file is not a recording this version can read; the message says why."""


def header(context: dict, mechanism: str, command: list[str] | None = None,
           namespaces=None) -> dict:
    """namespaces: the namespace objects known now (tracer.netns.Namespaces or a list);
    the context's own namespace is always among them."""
    spaces = {ns["netns"]: ns for ns in (namespaces or ()) if isinstance(ns, dict) and ns.get("netns")}
    if context.get("netns") and context["netns"] not in spaces:
        spaces = {context["netns"]: context, **spaces}
    return {
        "vethtrace": FORMAT, "version": VERSION, "fields": list(FIELDS),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kernel": platform.release(), "mechanism": mechanism,
        # add to an event's ts (CLOCK_MONOTONIC ns) to get Unix time in ns
        "wall_offset_ns": time.time_ns() - time.monotonic_ns(),
        "command": command or [], "context": context, "namespaces": list(spaces.values()),
    }


class Writer:
    def __init__(self, f, head: dict):
        self.f = f
        self.count = 0
        self.f.write(dumps(head) + b"\n")
        self.f.flush()  # a recording killed before any event still has its header

    def write(self, events) -> None:
        self.count += write_lines(self.f, events)

    def close(self, lost: int, lost_windows: list | None = None, namespaces=(),
              counts: KernelCounts | None = None) -> None:
        """namespaces: those first met after the header was written; counts: the kernel's
        (tracer.counters), read after the last event."""
        foot = {"footer": True, "events": self.count, "lost": lost}
        if counts is not None:
            foot["counts"] = counts.to_json()
        if lost_windows:  # when the kernel lost them (tracer.losses): show marks the journeys around
            foot["lost_windows"] = lost_windows
        if namespaces:
            foot["namespaces"] = list(namespaces)
        self.f.write(dumps(foot) + b"\n")
        self.f.flush()


def write_lines(f, events, rows: bool = True) -> int:
    """Events as JSON lines, rows (format 2) or objects (format 1, `trace --json`); returns
    how many."""
    lines = [dumps(e.to_row()) for e in events] if rows else [dumps(e.to_json()) for e in events]
    if lines:
        f.write(b"\n".join(lines) + b"\n")
        f.flush()
    return len(lines)


class Recording:
    """A recording read whole: header, events and footer."""

    def __init__(self, head: dict, events: list[Event], lost: int | None, warning: str | None = None,
                 namespaces: Namespaces | None = None, counts: KernelCounts | None = None):
        self.header = head
        self.events = events
        self.lost = lost
        self.counts = counts  # the footer's kernel counts (None: an older recording, or no footer)
        self.warning = warning  # Reader.warning: the file was cut short or has no footer
        self.namespaces = namespaces if namespaces is not None else header_namespaces(head)

    @property
    def context(self) -> dict:
        return self.header.get("context", {})


def header_namespaces(head: dict) -> Namespaces:
    """The namespaces a header names: its context's and its "namespaces"."""
    return Namespaces([head.get("context") or {}, *(head.get("namespaces") or [])])


def _open(path: str):
    try:
        if path == "-":
            return sys.stdin.buffer
        return open(path, "rb")
    except IsADirectoryError:
        raise RecordingError(f"{path} is a directory, not a recording") from None
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file; record one with `vethtrace record -o {path}`") from None
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror}") from None


class Reader:
    """A recording opened for reading, its header checked (RecordingError says what is
    wrong).  `chunks()` yields its events in order, a list at a time, so a replay can
    correlate while the rest is still being parsed; `lost` is known once all are read.

    Reading has two stages (events.RowDecoder): parsing and checking lines, and building
    Events.  With a second CPU free, a big format 2 file is parsed by a child process
    (`_start_child`) while this one builds events and correlates them: the stages overlap, and
    a replay runs about 1.2x as fast as in one process (bench/run.py).
    VETHTRACE_READER=inline keeps both stages in this process."""

    def __init__(self, path: str):
        self.path = path
        self.lost: int | None = None
        self.losses = losses.LossWindows()  # from the footer: when events were lost
        self.counts: KernelCounts | None = None  # from the footer: the kernel's exact counts
        self.cut: int | None = None  # the number of a last line cut short (disk full, killed recorder)
        self.footer = False
        self.events_read = 0
        self._f = _open(path)
        try:
            self.header = _read_header(self._f, path)
        except BaseException:
            self.close()
            raise
        self.version = self.header["version"]
        # the footer's namespaces are added when it is read (a replay names them at the end)
        self.namespaces = header_namespaces(self.header)

    @property
    def context(self) -> dict:
        return self.header.get("context", {})

    def chunks(self) -> Iterator[list[Event]]:
        dec = RowDecoder()
        child = _start_child(self._f, self.path, self.version) if _fork_worthwhile(self._f, self.version) else None
        if child is not None:
            stage = _from_child(*child, self.path)
        else:
            stage = _prepared(self._f, self.path, self.version, dec)
        try:
            for kind, payload in stage:
                if kind == "rows":
                    events = dec.events(payload)
                    self.events_read += len(events)
                    yield events
                elif kind == "cut":
                    self.cut = payload
                elif kind == "namespaces":
                    for ns in payload:
                        self.namespaces.add(ns)
                else:
                    self.footer, self.lost, windows, counts = payload
                    self.losses = losses.from_footer(windows)
                    self.counts = KernelCounts.from_json(counts) if counts is not None else None
        finally:
            stage.close()  # a forked child is stopped and reaped, even on Ctrl-C
            self.close()

    def peek_losses(self) -> "losses.LossWindows":
        """The footer's loss windows read ahead, before the events (a streamed view marks
        journeys as it goes); empty if the file cannot seek or its last line is no valid
        footer (reading it in order then says what is wrong)."""
        d = self._peek_footer()
        try:
            return losses.from_footer(d.get("lost_windows")) if d is not None else losses.LossWindows()
        except (ValueError, TypeError, AttributeError):
            return losses.LossWindows()

    def may_use_counts(self) -> bool:
        """False when the footer, read ahead, says no event was lost or holds no kernel
        counts (then no summary uses them, and a replay need not learn their rows); True
        otherwise, also when it cannot be read ahead."""
        d = self._peek_footer()
        if d is None:
            return True
        return bool(d.get("lost")) and d.get("counts") is not None

    def peek_namespaces(self) -> None:
        """The footer's namespaces read ahead into `namespaces` (a streamed view names
        them as it goes); nothing if there is no valid footer to read ahead."""
        d = self._peek_footer()
        spaces = d.get("namespaces", []) if d is not None else []
        if not _namespaces_problem(spaces, "footer"):
            for ns in untrusted.clean(spaces):
                self.namespaces.add(ns)

    def _peek_footer(self) -> dict | None:
        """The last line, if it is a footer, read without moving on (None otherwise)."""
        try:
            st = os.fstat(self._f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            here, size = self._f.tell(), st.st_size
        except (OSError, ValueError, AttributeError):
            return None
        try:
            for span in (MAX_LINE, MAX_FOOTER):  # most footers are short; one with counts may not be
                start = max(here, size - span - 2)
                self._f.seek(start)
                block = self._f.read().rstrip(b"\n")
                if b"\n" in block or start == here:
                    break
            tail = block.rsplit(b"\n", 1)[-1]
            self._f.seek(here)
            d = loads(tail)
            return d if isinstance(d, dict) and d.get("footer") is True else None
        except (OSError, ValueError, TypeError, AttributeError):
            with contextlib.suppress(OSError, ValueError):
                self._f.seek(here)
            return None

    def close(self) -> None:
        if self._f is not getattr(sys.stdin, "buffer", None):
            self._f.close()

    @property
    def warning(self) -> str | None:
        """Once read: one line if the recording was cut short or has no footer, else None."""
        name = "standard input" if self.path == "-" else self.path
        if self.cut is not None:
            return (f"{name} is cut short in line {self.cut} (the recorder stopped mid-write): showing the "
                    f"{self.events_read} events before it; how many events were lost is unknown")
        if not self.footer:
            return (f"{name} has no footer (the recorder was stopped before it finished): showing its "
                    f"{self.events_read} events; how many events were lost is unknown")
        return None


def read(path: str) -> Recording:
    """A whole recording: header, events and footer."""
    reader = Reader(path)
    events: list[Event] = []
    for chunk in reader.chunks():
        events += chunk
    return Recording(reader.header, events, reader.lost, reader.warning, reader.namespaces, reader.counts)


def _read_header(f, path: str) -> dict:
    first = f.readline(MAX_HEADER + 1)
    if not first.strip():
        raise RecordingError(f"{path} is empty, not a vethtrace recording")
    if len(first) > MAX_HEADER:
        raise RecordingError(f"{path}: line 1 is longer than {MAX_HEADER >> 20} MiB, so not a vethtrace header")
    try:
        head = loads(first)
    except ValueError:
        raise RecordingError(f"{path} is not a vethtrace recording (line 1 is not JSON)") from None
    if not isinstance(head, dict) or head.get("vethtrace") != FORMAT:
        raise RecordingError(f"{path} is not a vethtrace recording (no vethtrace header on line 1)")
    version = head.get("version")
    if type(version) is not int or version < 1:
        raise RecordingError(f"{path}: the header's version is {version!r}, not a format version; "
                             "the file is damaged")
    if version > VERSION:
        raise RecordingError(f"{path} is recording format version {version}; this vethtrace reads "
                             f"up to {VERSION}: upgrade vethtrace")
    problem = _header_problem(head)
    if problem:
        raise RecordingError(f"{path}: damaged header ({problem})")
    return untrusted.clean(head)


def _prepared(f, path: str, version: int, dec: RowDecoder):
    """The first stage: ("rows", prepared rows) per chunk of lines, ("cut", line number) if
    the file ends inside a line, then ("end", (footer seen, lost, lost windows, counts)): the
    footer's count of lost events (None without a footer: the recorder was killed), and its
    kernel counts as written (checked; None in older recordings).
    A format 2 chunk is parsed whole on the fast path (every line a row); a chunk with
    anything else in it (the footer, a blank line, damage) goes through `_lines`, which
    knows each line's number."""
    lost, footer, cut, windows, counts = None, False, None, None, None
    spaces: list = []  # the footer's namespaces
    n = 2  # the number of the chunk's first line
    lines = iter(partial(f.readline, MAX_LINE + 1), b"")  # no line read is longer than MAX_LINE + 1
    while True:
        chunk = list(islice(lines, CHUNK))
        if not chunk:
            break
        longest = max(map(len, chunk))
        if longest > MAX_LINE:
            chunk = _joined_footer(chunk, lines, n, path)  # a footer may be long, no other line
            longest = max((len(line) for line in chunk if not line.startswith(FOOTER_START)), default=0)
        last = chunk[-1]
        if not last.endswith(b"\n") and (len(last) <= MAX_LINE or last.startswith(FOOTER_START)) and _unparsable(last):
            chunk.pop()  # the file ends inside this line: keep what precedes it
            cut = n + len(chunk)
            if not chunk:
                break
        if longest > MAX_LINE:
            k = next(i for i, line in enumerate(chunk) if len(line) > MAX_LINE and not line.startswith(FOOTER_START))
            raise RecordingError(f"{path}: line {n + k} is longer than {MAX_LINE >> 10} KiB, so not an event; "
                                 "the file is damaged")
        tail = [chunk.pop()] if chunk[-1].startswith(b"{") else []  # the footer, most likely
        for part in (chunk, tail):
            if not part:
                continue
            rows = _whole(part, dec) if version >= 2 and part is chunk else None
            if rows is None:
                rows, end = _lines(part, n, path, version, dec, spaces)
                if end is not None:
                    footer, (lost, windows, counts) = True, end
            if rows:
                yield "rows", rows
            n += len(part)
    if cut is not None:
        yield "cut", cut
    if spaces:
        yield "namespaces", spaces
    yield "end", (footer, lost, windows, counts)


def _joined_footer(chunk: list[bytes], lines, n: int, path: str) -> list[bytes]:
    """The chunk with a footer longer than MAX_LINE (read in MAX_LINE pieces) joined into
    one line, read on from `lines` if it goes on past the chunk; a long line that is no
    footer is left for the caller to refuse."""
    k = next(i for i, line in enumerate(chunk) if len(line) > MAX_LINE)
    if not chunk[k].startswith(FOOTER_START):
        return chunk
    pieces, rest = [chunk[k]], iter(chunk[k + 1:])
    size = len(chunk[k])
    while not pieces[-1].endswith(b"\n"):
        piece = next(rest, None) or next(lines, b"")
        if not piece:
            break  # the file ends inside the footer: the caller sees a line cut short
        size += len(piece)
        if size > MAX_FOOTER:
            raise RecordingError(f"{path}: line {n + k} is longer than {MAX_FOOTER >> 20} MiB, so not a footer; "
                                 "the file is damaged")
        pieces.append(piece)
    return chunk[:k] + [b"".join(pieces)] + list(rest)


def _unparsable(line: bytes) -> bool:
    try:
        loads(line)
    except ValueError:
        return True
    return False


def _untrusted(lines: list[bytes]) -> bool:
    """Could these lines hold a control character?  Only through a JSON escape or a
    non-ASCII byte: rows written by vethtrace have neither, so most chunks skip `_clean`."""
    joined = b"".join(lines)
    return b"\\" in joined or not joined.isascii()


def _clean(row: list) -> None:
    """A prepared row's strings made safe to display (untrusted.term), in place."""
    term = untrusted.term
    row[5], row[11], row[12], row[13] = term(row[5]), term(row[11]), term(row[12]), term(row[13])
    if row[19] is not None:
        row[19] = untrusted.clean(row[19])
    if row[20] is not None:
        row[20] = untrusted.clean(row[20])


def _whole(chunk: list[bytes], dec: RowDecoder) -> list | None:
    """The fast path of `_prepared`: every line a row; None if any is not (or the chunk
    is too big to parse at once: then `_lines` stops at the first bad line)."""
    if sum(map(len, chunk)) > CHUNK_BYTES:
        return None
    try:
        rows = dec.prepare(list(map(loads, chunk)))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if _untrusted(chunk):
        for row in rows:
            _clean(row)
    return rows


def _lines(chunk: list[bytes], n: int, path: str, version: int, dec: RowDecoder,
           spaces: list | None = None) -> tuple[list, tuple | None]:
    """The slow path of `_prepared`: line by line, saying which line is damaged; with the
    footer's (lost, lost_windows) if it has the footer, whose namespaces are added to `spaces`."""
    rows, lost = [], None
    for n, line in enumerate(chunk, start=n):
        if not line.strip():
            continue
        before = len(rows)
        what = "event"
        try:
            d = loads(line)
            if isinstance(d, dict) and d.get("footer"):
                what = "footer"
                n_lost = d.get("lost", 0)
                if type(n_lost) is not int or n_lost < 0:
                    raise TypeError("footer's lost is not a count")
                problem = _namespaces_problem(d.get("namespaces", []), "footer")
                if problem:
                    raise TypeError(problem)
                if spaces is not None:
                    spaces += untrusted.clean(d.get("namespaces", []))
                losses.from_footer(d.get("lost_windows"))  # checked here, where the line is known
                if d.get("counts") is not None:
                    KernelCounts.from_json(d["counts"])
                lost = (n_lost, d.get("lost_windows"), d.get("counts"))
            elif version >= 2:
                if not isinstance(d, list):
                    raise TypeError("not a JSON array (an event row)")
                rows += dec.prepare([d])
            else:
                rows += dec.prepare([object_row(d)])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RecordingError(f"{path}: line {n} is not a valid {what} ({type(exc).__name__}: "
                                 f"{untrusted.term(str(exc)[:80])}); the file is damaged") from None
        if len(rows) > before and _untrusted([line]):
            _clean(rows[-1])
    return rows, lost


FORK_MIN_BYTES = 1 << 20  # smaller recordings are read before a child process would start


def _fork_worthwhile(f, version: int) -> bool:
    if version < 2 or os.environ.get("VETHTRACE_READER") == "inline":
        return False
    if len(os.sched_getaffinity(0)) < 2 or threading.active_count() > 1:
        return False  # no CPU to spare, or threads that a fork would copy mid-step
    try:
        st = os.fstat(f.fileno())
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(st.st_mode) or st.st_size - f.tell() >= FORK_MIN_BYTES


def _start_child(f, path: str, version: int) -> tuple[int, object] | None:
    """Fork a child that runs `_prepared` and sends its items through a pipe, each as a
    length and a marshal blob; (pid, read end), or None if no process could be made (the
    caller then reads in this process)."""
    try:
        r, w = os.pipe()
    except OSError:
        return None
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # the child: parses, sends, and never returns
        status = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
            _die_with_parent(parent)
            os.close(r)
            with open(w, "wb", buffering=1 << 20) as out:
                try:
                    for item in _prepared(f, path, version, RowDecoder()):
                        _send(out, item)
                except RecordingError as exc:
                    _send(out, ("error", str(exc)))
                except Exception as exc:  # say why, instead of a bare "stopped early"
                    _send(out, ("error", f"{path}: reading failed ({type(exc).__name__}: {exc})"))
            status = 0
        except BaseException:  # noqa: BLE001 - the parent notices the missing end
            pass
        finally:
            os._exit(status)
    os.close(w)
    return pid, open(r, "rb", buffering=1 << 20)


def _from_child(pid: int, inp, path: str):
    """The child's items, in order.  Leaving this generator (done, error, Ctrl-C) stops
    and reaps the child."""
    try:
        while True:
            size = inp.read(4)
            want = int.from_bytes(size, "little") if len(size) == 4 else 0
            blob = inp.read(want) if want else b""
            if not want or len(blob) != want:
                raise RecordingError(f"{path}: the process reading it stopped early")
            kind, payload = marshal.loads(blob)
            if kind == "error":
                raise RecordingError(payload)
            yield kind, payload
            if kind == "end":
                return
    finally:
        inp.close()
        _reap(pid)


def _reap(pid: int) -> None:
    """Stop the child if it still runs, and collect it.  With SIGCHLD ignored the kernel
    has collected it already (ChildProcessError): then its pid is not ours to signal."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if done == 0:
        os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _die_with_parent(parent: int) -> None:
    """In the child: be killed if the parent dies without stopping it (SIGKILL, say)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _send(out, item) -> None:
    blob = marshal.dumps(item)
    out.write(len(blob).to_bytes(4, "little"))
    out.write(blob)


def _header_problem(head: dict) -> str:
    if head.get("version", 1) >= 2 and head.get("fields") != list(FIELDS):
        return "fields are not the columns of format 2"
    command = head.get("command", [])
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        return "command is not a list of strings"
    for key in ("kernel", "mechanism", "created"):
        if not isinstance(head.get(key, ""), str):
            return f"{key} is not a string"
    offset = head.get("wall_offset_ns", 0)
    if type(offset) is not int or not 0 <= offset <= WALL_OFFSET_MAX:
        return "wall_offset_ns is not a time in ns since 1970"
    ctx = head.get("context")
    if not isinstance(ctx, dict):
        return "context is not an object"
    return _namespace_problem(ctx, "context") or _namespaces_problem(head.get("namespaces", []), "header")


def _namespaces_problem(spaces, where: str) -> str:
    if not isinstance(spaces, list):
        return f"the {where}'s namespaces is not a list"
    for ns in spaces:
        if not isinstance(ns, dict):
            return f"a namespace of the {where} is not an object"
        problem = _namespace_problem(ns, f"namespace {ns.get('netns')}")
        if problem:
            return problem
    return ""


def _namespace_problem(ns: dict, what: str) -> str:
    """What is wrong with a namespace object (schema `namespace`), or ""."""
    if not isinstance(ns.get("name", ""), str) or type(ns.get("netns", 0)) is not int:
        return f"{what} name/netns have the wrong type"
    ifs = ns.get("interfaces", [])
    if not isinstance(ifs, list):
        return f"{what}.interfaces is not a list"
    for i in ifs:
        if not isinstance(i, dict) or not isinstance(i.get("name"), str) or not all(
                isinstance(i.get(k, []), list) and all(isinstance(a, str) for a in i.get(k, [])) for k in ("addrs", "addrs6")):
            return "an interface entry is malformed (each needs a name, and addrs and addrs6 as strings)"
    sysctl = ns.get("sysctl", {})
    if not isinstance(sysctl, dict) or not all(isinstance(v, dict) and all(type(x) is int for x in v.values())
                                               for v in sysctl.values()):
        return f"{what}.sysctl is malformed"
    rts = ns.get("routes", [])
    if not isinstance(rts, list) or not all(isinstance(r, dict) and isinstance(r.get("dst", ""), str) for r in rts):
        return f"{what}.routes is malformed"
    return ""


def write_file(path: str, head: dict, events, lost: int, counts: KernelCounts | None = None) -> None:
    """A whole recording at `path`, or nothing (safefile.OutputError says why)."""
    with safefile.replacing(path) as out:
        w = Writer(out, head)
        w.write(events)
        w.close(lost, counts=counts)
