"""Damaged and crafted recordings against every command that reads one (issue 11).

Seeded random mutations of the recorded traces (tests/traces/*.jsonl): bytes flipped,
lines cut, dropped, doubled or swapped, and JSON-aware ones that put a hostile value
(out-of-range numbers, escape sequences, DOT/HTML, NUL, a 100 KB string, a wrong type)
into one field of the header or of an event, or remove a key.  Each command must end with
exit status 0 (a cut recording may add one warning line), or status 2 and exactly one
line on stderr; never a traceback, never a hang (an alarm is the hang guard, not a speed
check), never a temporary file left beside its output.

Most runs call the command line's main(argv) in this process (a new Python costs ~0.3 s);
a few per command go through a real `python -m vethtrace`.  `tui` replays are read with the
TUI's own source and drawn with its widgets; a few run the whole app under Pilot.
VETHTRACE_FUZZ_N (default 500) and VETHTRACE_FUZZ_SEED (default 11) change the run.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from conftest import ROOT, TRACES

from vethtrace.cli import main
from vethtrace.tracer.correlate import Correlator
from vethtrace.tracer.recording import RecordingError
from vethtrace.tracer.sources import ReplaySource

N = int(os.environ.get("VETHTRACE_FUZZ_N", "500"))
SEED = int(os.environ.get("VETHTRACE_FUZZ_SEED", "11"))
SUBPROCESS_RUNS = 6  # per command, through a real interpreter
PILOT_RUNS = 8
HANG_S = 20  # a run this long is hung (the largest mutant replays in well under a second)
SEEDS = sorted(TRACES.glob("*.jsonl"))

NUMBERS = [-1, -2 ** 62, 2 ** 62, 2 ** 63, 2 ** 64, 2 ** 32, 2 ** 32 - 1, 65536, 0, 1.5]
STRINGS = ["", "x", "ff", "abc", "\x1b[2J\x1b]0;owned\x07", "\x9b31m", "<b>html</b>", '" ] ; evil [label="',
           "back\\slash\\", "nul\x00byte", "\u202egnp.exe", "\r\n", "x" * 100_000, "[red]markup[/]", "[/bogus]"]
OTHERS = [True, None, [], {}, [1, 2], {"a": 1}]


def _hostile(rng: random.Random, old=None):
    """A hostile value, most often of the old value's type (so it passes type checks)."""
    if rng.random() < 0.75:
        if isinstance(old, int) and not isinstance(old, bool):
            return rng.choice(NUMBERS)
        if isinstance(old, str):
            return rng.choice(STRINGS)
    return rng.choice(NUMBERS + STRINGS + OTHERS)


def _mutate_json(rng: random.Random, lines: list[bytes]) -> tuple[list[bytes], str]:
    i = rng.randrange(len(lines))
    try:
        obj = json.loads(lines[i])
    except ValueError:
        return lines, "unparsable line left alone"
    what = f"line {i + 1}"
    if isinstance(obj, list) and obj:
        k = rng.randrange(len(obj))
        if rng.random() < 0.1:
            del obj[k]
            what += f" column {k} removed"
        else:
            obj[k] = _hostile(rng, obj[k])
            what += f" column {k} = {str(obj[k])[:40]!r}"
    elif isinstance(obj, dict):
        target = obj
        ctx = obj.get("context")
        if isinstance(ctx, dict) and rng.random() < 0.6:
            target = ctx
            what += " context"
            ifs = ctx.get("interfaces")
            if isinstance(ifs, list) and ifs and rng.random() < 0.6:
                target = rng.choice(ifs)
                what += " interface"
                if not isinstance(target, dict):
                    target = ctx
        if target:
            key = rng.choice(list(target))
            if rng.random() < 0.3:
                del target[key]
                what += f" {key} removed"
            else:
                target[key] = _hostile(rng, target[key])
                what += f" {key} = {str(target[key])[:40]!r}"
    lines = list(lines)
    lines[i] = json.dumps(obj).encode() + b"\n"
    return lines, what


def mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lines = data.splitlines(keepends=True)
    how = rng.randrange(10)
    if how <= 4:  # JSON-aware: up to six hostile values in one file
        out, what = _mutate_json(rng, lines)
        for _ in range(rng.randrange(6)):
            out, more = _mutate_json(rng, out)
            what += "; " + more
        return b"".join(out), what
    how -= 2
    if how == 3:
        cut = rng.randrange(len(data))
        return data[:cut], f"cut at byte {cut}"
    if how == 4:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b), "bytes flipped"
    if how == 5:
        i = rng.randrange(len(lines))
        return b"".join(lines[:i] + lines[i + 1:]), f"line {i + 1} removed"
    if how == 6:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return b"".join(lines), f"lines {i + 1} and {j + 1} swapped"
    i = rng.randrange(len(lines))
    return b"".join(lines[:i] + [lines[i]] * rng.randint(2, 50) + lines[i:]), f"line {i + 1} repeated"


def mutants(n: int, salt: str):
    rng = random.Random(f"{SEED}-{salt}")
    seeds = [(p.name, p.read_bytes()) for p in SEEDS]
    for k in range(n):
        name, data = seeds[k % len(seeds)]
        out, what = mutate(rng, data)
        yield k, out, f"{name}: {what}"


class Hung(Exception):
    pass


@contextlib.contextmanager
def hang_guard(what: str):
    def on_alarm(signum, frame):
        raise Hung(f"{what} still running after {HANG_S}s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) in this process: (status, stdout, stderr); an exception propagates."""
    out, err = io.BytesIO(), io.BytesIO()
    old = sys.stdout, sys.stderr
    wrappers = [io.TextIOWrapper(b, encoding="utf-8", errors="replace", write_through=True) for b in (out, err)]
    sys.stdout, sys.stderr = wrappers
    try:
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stdout, sys.stderr = old
        for w in wrappers:
            w.flush()
            w.detach()  # the BytesIO stays open to be read
    return rc, out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")


def check_outcome(rc: int, stdout: str, stderr: str, what: str) -> None:
    shown = f"{what}\nexit {rc}\nstdout: {stdout[-500:]}\nstderr: {stderr[-2000:]}"
    assert "Traceback" not in stderr and "Traceback" not in stdout, shown
    lines = stderr.splitlines()
    if rc == 0:
        warnings = [x for x in lines if x.startswith("vethtrace: warning: ")]
        assert len(warnings) <= 1, shown
        return
    assert rc == 2, shown
    assert len(lines) == 1 and lines[0].startswith("vethtrace: "), shown
    assert not stdout, shown
    assert "\x1b" not in lines[0] and "\x9b" not in lines[0], f"an escape sequence reached the terminal: {shown}"


def no_leftovers(d: Path, allowed: set[str], what: str) -> None:
    left = {p.name for p in d.iterdir()} - allowed
    assert not left, f"{what}: left behind {sorted(left)}"


COMMANDS = {
    "show": lambda rec, out: ["show", str(rec), "--events", "--devices"],
    "show-json": lambda rec, out: ["show", "--json", str(rec)],
    "render": lambda rec, out: ["render", str(rec), "-o", str(out / "flow.dot")],
    "export": lambda rec, out: ["export", str(rec), "--pcapng", str(out / "out.pcapng")],
}
OUTPUTS = {"render": {"flow.dot"}, "export": {"out.pcapng"}}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_fuzz_in_process(command, tmp_path):
    """N mutants through main(argv): 0, or 2 and one line; no traceback, no temp files.
    Every 25th render draws an SVG with graphviz's dot instead of writing DOT."""
    rec = tmp_path / "rec.jsonl"
    out = tmp_path / "out"
    out.mkdir()
    outcomes = {0: 0, 2: 0}
    for k, data, what in mutants(N, command):
        rec.write_bytes(data)
        argv = COMMANDS[command](rec, out)
        if command == "render" and k % 25 == 0:
            argv[-1] = str(out / "flow.svg")
        with hang_guard(what):
            rc, stdout, stderr = run_main(argv)
        check_outcome(rc, stdout, stderr, f"{command} on mutant {k} ({what})")
        outcomes[rc] += 1
        no_leftovers(out, {"flow.svg"} | OUTPUTS.get(command, set()), f"{command} on mutant {k} ({what})")
    # both outcomes happen: the mutations reach the checks and also the rendering code
    assert outcomes[0] > N // 10 and outcomes[2] > N // 10, outcomes


@pytest.mark.parametrize("command", list(COMMANDS) + ["tui"])
def test_fuzz_subprocess(command, tmp_path):
    """A few mutants per command through a real `python -m vethtrace` (its own stdout,
    stderr, exit status and interpreter shutdown); `tui FILE` without a terminal must
    refuse in one line rather than hang."""
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VETHTRACE_")}
    env["PYTHONPATH"] = str(ROOT)
    for k, data, what in mutants(SUBPROCESS_RUNS, "sub-" + command):
        rec = tmp_path / f"rec{k}.jsonl"
        rec.write_bytes(data)
        argv = ["tui", str(rec)] if command == "tui" else COMMANDS[command](rec, out)
        if command == "render" and k % 2:
            argv[-1] = str(out / "flow.svg")
        r = subprocess.run([sys.executable, "-m", "vethtrace", *argv], cwd=tmp_path, env=env,
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=HANG_S * 3)
        stdout, stderr = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        if command == "tui":
            assert r.returncode == 2 and len(stderr.splitlines()) == 1 and not stdout, (what, r)
            continue
        check_outcome(r.returncode, stdout, stderr, f"{command} on mutant {k} ({what})")
        no_leftovers(out, {"flow.svg"} | OUTPUTS.get(command, set()), f"{command} on mutant {k} ({what})")


def _draw_tui_rows(src: ReplaySource) -> int:
    """What the TUI shows for a replay, without a screen: each conversation's row, detail
    pane and path, rendered by Rich."""
    from vethtrace.ui.tui import panes, rows
    corr = Correlator(src.context)
    corr.feed(src.poll(0))
    console = Console(width=120, file=io.StringIO(), color_system="truecolor", legacy_windows=False)
    t0 = min((c.start for c in corr.conversations), default=0)
    for conv in corr.conversations:
        row = rows.Row(conv)
        row.update(corr, t0)
        console.print(panes.detail_renderable(row, corr))
        console.print(panes.path_renderable(row, corr))
    text = console.file.getvalue()
    assert "\x1b]" not in text and "\x1b[2J" not in text, "a recorded escape sequence reached the TUI's output"
    return len(corr.conversations)


def test_fuzz_tui_replay(tmp_path):
    """N mutants read as `vethtrace tui FILE` reads them (ReplaySource): a RecordingError
    (shown as one line before any screen) or every row, detail and path drawn."""
    rec = tmp_path / "rec.jsonl"
    drawn = refused = 0
    for k, data, what in mutants(N, "tui"):
        rec.write_bytes(data)
        with hang_guard(what):
            try:
                src = ReplaySource(str(rec))
            except RecordingError as exc:
                assert "\n" not in str(exc), (what, str(exc))
                refused += 1
                continue
            try:
                _draw_tui_rows(src)
            except Exception as exc:  # noqa: BLE001 - say which mutant
                raise AssertionError(f"tui replay of mutant {k} ({what}): {type(exc).__name__}: {exc}") from exc
            drawn += 1
    assert drawn > N // 10 and refused > N // 10, (drawn, refused)


def test_fuzz_tui_app(tmp_path):
    """A few readable mutants through the whole app (Pilot): it shows them and quits."""
    from vethtrace.ui.tui import build_app
    rec = tmp_path / "rec.jsonl"
    ran = 0

    async def drive(path: str) -> None:
        app = build_app(ReplaySource(path))
        async with app.run_test(size=(120, 40)) as pilot:
            loop = asyncio.get_running_loop()
            end = loop.time() + HANG_S
            while not app.caught_up:
                assert loop.time() < end, "the TUI did not catch up"
                await pilot.pause(0.05)
            for key in ("down", "down", "enter", "up"):
                await pilot.press(key)
            await pilot.pause()

    for k, data, what in mutants(PILOT_RUNS * 16, "pilot"):
        rec.write_bytes(data)
        try:
            ReplaySource(str(rec))
        except RecordingError:
            continue
        asyncio.run(drive(str(rec)))
        ran += 1
        if ran == PILOT_RUNS:
            break
    assert ran == PILOT_RUNS
