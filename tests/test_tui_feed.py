"""What the TUI takes its data from, without the TUI: tracer.feed's reader thread on a
recorded trace, and a command's output read from a real pty by a real child process
(which must die with its parent: PR_SET_PDEATHSIG).  No root, no Textual."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from conftest import TRACES
from vethtrace.tracer import recording
from vethtrace.tracer.correlate import Correlator
from vethtrace.tracer.feed import CommandOutput, Feed
from vethtrace.tracer.sources import ReplaySource


def wait(cond, what: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_feed_reads_a_recording_and_hands_each_conversation_out_once():
    path = str(TRACES / "exp2.jsonl")
    rec = recording.read(path)
    expected = Correlator(rec.context)
    expected.feed(rec.events)
    feed = Feed(ReplaySource(path))
    feed.start()
    try:
        wait(lambda: feed.done, "the recording to be read")
        with feed.lock:
            new, touched, overflow = feed.take()
            again = feed.take()
        assert [c.title for c in new] == [c.title for c in expected.conversations]
        assert set(touched) <= {c.id for c in new} and not overflow
        assert again[0] == [] and again[1] == {}
        assert feed.received == len(rec.events) and feed.conversations_seen == len(new)
        events, rolled = feed.snapshot()
        assert [e.to_json() for e in events] == [e.to_json() for e in rec.events] and rolled == 0
    finally:
        feed.close()
    assert feed.closed and not feed._thread.is_alive()


def test_the_feed_needs_no_ui_toolkit():
    code = "import sys, vethtrace.tracer.feed; print(sorted(m for m in ('textual', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_command_output_lines_and_status():
    cmd = CommandOutput(["sh", "-c", "echo one; echo two; printf 'no newline'; exit 3"])
    cmd.start()
    wait(lambda: cmd.status is not None, "the command to exit")
    assert cmd.take() == ["one", "two", "no newline"] and cmd.take() == []
    assert cmd.status == 3 and not cmd.running
    assert cmd.stop() == 3


def test_command_output_stop_interrupts_and_keeps_the_last_lines():
    """stop() sends SIGINT, as Ctrl-C would: what the command prints on its way out (ping's
    statistics) is read before the pty is closed."""
    script = 'trap "echo statistics; exit 5" INT; echo ready; while :; do sleep 0.05; done'
    cmd = CommandOutput(["sh", "-c", script])
    cmd.start()
    wait(lambda: "ready" in cmd.lines, "the command to start")
    pid = cmd.proc.pid
    assert cmd.stop() == 5
    assert list(cmd.lines)[-1] == "statistics"
    assert not alive(pid)


def test_a_command_that_cannot_start_says_why():
    cmd = CommandOutput(["/nonexistent/vethtrace-test-command"])
    cmd.start()
    assert cmd.error == "cannot run /nonexistent/vethtrace-test-command: No such file or directory"
    assert cmd.proc is None and cmd.stop() is None


def test_a_command_dies_with_the_process_that_started_it():
    """A process starts a command through CommandOutput and is then SIGKILLed (no clean-up
    code of it runs): the kernel kills the command too."""
    parent = textwrap.dedent("""
        import sys, time
        from vethtrace.tracer.feed import CommandOutput
        cmd = CommandOutput(["sleep", "60"])
        cmd.start()
        print(cmd.proc.pid, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, cwd="/")
    child = None
    try:
        child = int(proc.stdout.readline())
        assert alive(child)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait(lambda: not alive(child), "the command to die with its parent", timeout=5)
    finally:
        proc.kill()
        proc.wait()
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)  # the test failed: leave nothing running


def test_the_feed_reads_the_kernels_counts_and_learns_rows_before_it_forgets(tmp_path):
    """A recording with the kernel's counts in its footer: the feed hands them to the UI, and
    learns the row of each counted path from journeys, also those the correlator forgets
    (keep=4) long before the end: each learnt as the whole recording shows it."""
    from test_counters import SCOPE, _rewrite, _scope_counts
    from vethtrace.ui.exact import UNSEEN, exact_paths
    kc, want = _scope_counts(10, 3)
    path = tmp_path / "lossy.jsonl"
    _rewrite(path, SCOPE, 9, kc.to_json())
    feed = Feed(ReplaySource(str(path), batch=8), keep=4)
    feed.exact = exact_paths(feed.corr)
    feed.start()
    try:
        wait(lambda: feed.done, "the recording to be read")
    finally:
        feed.close()
    assert feed.kernel == kc and feed.corr.pruned > 0
    assert feed.exact.counts(feed.kernel, UNSEEN) == {**want, UNSEEN: 3}
