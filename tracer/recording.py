"""Recordings: versioned JSON lines, one event per line, so jq can read them and every
command can replay them through the same correlator as a live stream.

Line 1 is the header: {"vethtrace": "recording", "version": 1, "context": {...}, ...}.
Then one object per event (see Event.to_json).  The last line may be a footer
{"footer": true, "events": N, "lost": L}: how many events the kernel could not deliver.
"""
from __future__ import annotations

import json
import os
import platform
import time

try:
    import orjson

    def _dumps(obj) -> bytes:
        return orjson.dumps(obj)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    def _dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    _loads = json.loads

from .events import Event

FORMAT = "recording"
VERSION = 1


class RecordingError(ValueError):
    """The file is not a recording this version can read; the message says why."""


def header(context: dict, mechanism: str, command: list[str] | None = None) -> dict:
    return {
        "vethtrace": FORMAT, "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kernel": platform.release(), "mechanism": mechanism,
        # add to an event's ts (CLOCK_MONOTONIC ns) to get Unix time in ns
        "wall_offset_ns": time.time_ns() - time.monotonic_ns(),
        "command": command or [], "context": context,
    }


class Writer:
    def __init__(self, f, head: dict):
        self.f = f
        self.count = 0
        self.f.write(_dumps(head) + b"\n")
        self.f.flush()  # a recording killed before any event still has its header

    def write(self, events) -> None:
        self.count += write_lines(self.f, events)

    def close(self, lost: int) -> None:
        self.f.write(_dumps({"footer": True, "events": self.count, "lost": lost}) + b"\n")
        self.f.flush()


def write_lines(f, events) -> int:
    """Events as JSON lines; returns how many."""
    lines = [_dumps(e.to_json()) for e in events]
    if lines:
        f.write(b"\n".join(lines) + b"\n")
        f.flush()
    return len(lines)


class Recording:
    """A recording read whole: header, events and footer."""

    def __init__(self, head: dict, events: list[Event], lost: int | None):
        self.header = head
        self.events = events
        self.lost = lost

    @property
    def context(self) -> dict:
        return self.header.get("context", {})


def _open(path: str):
    try:
        if path == "-":
            import sys
            return sys.stdin.buffer
        return open(path, "rb")
    except IsADirectoryError:
        raise RecordingError(f"{path} is a directory, not a recording") from None
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file; record one with `vethtrace record -o {path}`") from None
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror}") from None


def read(path: str) -> Recording:
    f = _open(path)
    try:
        first = f.readline()
        if not first.strip():
            raise RecordingError(f"{path} is empty, not a vethtrace recording")
        try:
            head = _loads(first)
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
        events, lost = [], None
        for n, line in enumerate(f, start=2):
            if not line.strip():
                continue
            try:
                d = _loads(line)
                if not isinstance(d, dict):
                    raise TypeError("not a JSON object")
                if d.get("footer"):
                    lost = d.get("lost", 0)
                    if type(lost) is not int:
                        raise TypeError("footer's lost is not a number")
                    continue
                events.append(Event.from_json(d))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise RecordingError(f"{path}: line {n} is not a valid event ({type(exc).__name__}: "
                                     f"{str(exc)[:80]}); the file is damaged") from None
        return Recording(head, events, lost)
    finally:
        if f is not getattr(__import__("sys").stdin, "buffer", None):
            f.close()


def _header_problem(head: dict) -> str:
    command = head.get("command", [])
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        return "command is not a list of strings"
    for key in ("kernel", "mechanism", "created"):
        if not isinstance(head.get(key, ""), str):
            return f"{key} is not a string"
    if type(head.get("wall_offset_ns", 0)) is not int:
        return "wall_offset_ns is not an integer"
    ctx = head.get("context")
    if not isinstance(ctx, dict):
        return "context is not an object"
    if not isinstance(ctx.get("name", ""), str) or type(ctx.get("netns", 0)) is not int:
        return "context name/netns have the wrong type"
    ifs = ctx.get("interfaces", [])
    if not isinstance(ifs, list):
        return "context.interfaces is not a list"
    for i in ifs:
        if not isinstance(i, dict) or not isinstance(i.get("name", ""), str) \
                or not isinstance(i.get("addrs", []), list) or not all(isinstance(a, str) for a in i.get("addrs", [])):
            return "an interface entry is malformed"
    sysctl = ctx.get("sysctl", {})
    if not isinstance(sysctl, dict) or not all(isinstance(v, dict) for v in sysctl.values()):
        return "context.sysctl is malformed"
    return ""


def write_file(path: str, head: dict, events, lost: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        w = Writer(f, head)
        w.write(events)
        w.close(lost)
    os.replace(tmp, path)
