"""The TUI live, as a user runs it: in tmux inside a fresh lab namespace, real probes, a
real ping; the screen is read with `tmux capture-pane`.  Quitting (q, Ctrl-C, or the
terminal going away) must leave no probe loaded.  Needs root, tmux and bpftool."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, needs_root
from vethtrace.tracer import lab

pytestmark = [pytest.mark.live, needs_root,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed (scripts/setup installs it)"),
              pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool not installed")]

WIDTH, HEIGHT = 160, 45
# The TUI started the way vethtrace/cli/tui.py starts it (without its terminal checks).
LAUNCH = """\
import sys
from vethtrace.tracer.live import build_filters
from vethtrace.tracer.sources import LiveEvents
from vethtrace.ui import tui
with LiveEvents(build_filters()) as src:
    rc = tui.run(src, sys.argv[1:] or None)
sys.exit(rc)
"""


class Tui:
    """The TUI in a detached tmux session inside a namespace."""

    def __init__(self, ns: str, tmp: Path, command: list[str] | None = None, launch: str = LAUNCH):
        self.session = f"vethtrace-tui-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        script = tmp / "launch.py"
        script.write_text(launch)
        inner = shlex.join(["ip", "netns", "exec", ns, sys.executable, str(script), *(command or [])])
        # After the TUI exits its summary and exit status stay on the screen to be read.
        # COLUMNS/LINES (pytest's terminal size) would override the pane's size.
        shell = f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && {inner}; echo TUI-EXIT=$?; sleep 600"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
                        "sh", "-c", shell], check=True)
        self.shell_pid = int(subprocess.run(["tmux", "display-message", "-p", "-t", self.session, "#{pane_pid}"],
                                            capture_output=True, text=True, check=True).stdout)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session],
                              capture_output=True, text=True, check=True).stdout

    def wait_for(self, predicate, what: str, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > end:
                pytest.fail(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def tui_pid(self) -> int | None:
        """The TUI process: the shell's child (`ip netns exec` replaces itself with python)."""
        try:
            with open(f"/proc/{self.shell_pid}/task/{self.shell_pid}/children") as f:
                kids = [int(p) for p in f.read().split()]
        except OSError:
            return None
        for pid in kids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"launch.py" in f.read():
                        return pid
            except OSError:
                continue
        return None

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


def loaded_programs() -> set[int]:
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {int(line.split(":", 1)[0]) for line in out.splitlines() if line[:1].isdigit()}


def held_programs(pid: int) -> set[int]:
    """BPF program ids a process holds through prog or link file descriptors."""
    ids: set[int] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith(("anon_inode:bpf-prog", "anon_inode:bpf_link")):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids |= {int(line.split()[1]) for line in f if line.startswith("prog_id:")}
        except (OSError, ValueError):
            continue
    return ids


def assert_unloaded(ids: set[int], timeout: float = 3.0) -> None:
    """The TUI's programs are gone (the kernel frees them shortly after the last fd closes)."""
    end = time.monotonic() + timeout
    while ids & loaded_programs():
        if time.monotonic() > end:
            out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
            pytest.fail(f"programs {sorted(ids & loaded_programs())} are still loaded:\n{out}")
        time.sleep(0.05)


@pytest.fixture
def lab_ns():
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as built:
        yield built


def test_tui_shows_the_echo_conversation_live(lab_ns, tmp_path):
    tui = Tui(lab_ns.name, tmp_path)
    try:
        # Ready signal: the status bar says LIVE once the probes are attached.
        tui.wait_for(lambda s: "● LIVE" in s, "the TUI to start")
        pid = tui.tui_pid()
        assert pid is not None
        ids = held_programs(pid)
        assert ids and ids <= loaded_programs()

        ping = subprocess.run(lab_ns.exec_cmd(["ping", "-c", "3", "-i", "0.2", "-I", "veth0", "192.168.2.1"]),
                              capture_output=True, text=True, timeout=30)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        def echo_rows(screen: str) -> list[str]:
            return [line for line in screen.splitlines()
                    if "ICMP echo 192.168.2.11 > 192.168.2.1 id" in line and "✓ reply delivered to ping" in line]

        screen = tui.wait_for(lambda s: len(echo_rows(s)) == 3, "three echo conversations")
        rows = echo_rows(screen)
        assert len(rows) == 3, screen
        for seq, row in enumerate(rows, 1):
            assert f"seq {seq}" in row
            assert "✓ reply delivered to ping" in row
            assert "veth0 > veth1 > icmp_rcv ⇒ lo > icmp_rcv > socket" in row
        assert any("ARP who-has 192.168.2.1 tell 192.168.2.11" in line and "✓ answered" in line
                   for line in screen.splitlines()), screen
        # Following: the newest conversation is selected; its hops and path are drawn.
        screen = tui.wait_for(lambda s: "seq 3   at" in s, "the newest conversation in the detail pane")
        for text in ("veth_xmit", "netif_rx", "loopback_xmit", "skb_copy_datagram_iovec", lab_ns.name,
                     "│ veth0 veth_xmit │", "│ lo loopback_xmit │", "route: 192.168.2.1 is local (veth1)"):
            assert text in screen, text
        assert "lost 0" in screen and "probes " in screen

        # Jump to the ARP exchange, look at it, then quit with q.
        tui.keys("Home")
        tui.wait_for(lambda s: "[1] ARP who-has" in s, "the ARP exchange in the detail")
        tui.keys("q")
        screen = tui.wait_for(lambda s: "TUI-EXIT=" in s, "the TUI to exit")
        assert "TUI-EXIT=0" in screen and "probes detached" in screen, screen
        assert "Traceback" not in screen, screen
        assert_unloaded(ids)
    finally:
        tui.kill()


def test_tui_runs_a_command_and_quits_on_ctrl_c(lab_ns, tmp_path):
    tui = Tui(lab_ns.name, tmp_path, ["ping", "-c", "2", "-i", "0.2", "-I", "veth0", "192.168.2.1"])
    try:
        screen = tui.wait_for(lambda s: "exited with status 0" in s and s.count("✓ reply delivered to ping  veth0") == 2,
                              "ping to run in the TUI and exit")
        assert "64 bytes from 192.168.2.1: icmp_seq=2" in screen, screen
        assert "2 packets transmitted, 2 received" in screen, screen
        ids = held_programs(tui.tui_pid())
        tui.keys("C-c")
        screen = tui.wait_for(lambda s: "TUI-EXIT=" in s, "the TUI to exit")
        assert "TUI-EXIT=0" in screen and "probes detached" in screen, screen
        assert_unloaded(ids)
    finally:
        tui.kill()


def test_closing_the_terminal_detaches_the_probes(lab_ns, tmp_path):
    tui = Tui(lab_ns.name, tmp_path)
    try:
        tui.wait_for(lambda s: "● LIVE" in s, "the TUI to start")
        pid = tui.tui_pid()
        ids = held_programs(pid)
        assert ids
    finally:
        tui.kill()  # SIGHUP, as when a terminal window is closed
    end = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < end:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "the TUI outlived its terminal"
    assert_unloaded(ids)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return kids


def test_a_command_dies_with_the_tui(lab_ns, tmp_path):
    """`tui -- ping` and the TUI is SIGKILLed (no clean-up code runs): the kernel kills the
    ping too (tracer.runner: PR_SET_PDEATHSIG), and the probes go with the process."""
    tui = Tui(lab_ns.name, tmp_path, ["ping", "-i", "0.2", "-I", "veth0", "192.168.2.1"])
    try:
        tui.wait_for(lambda s: "64 bytes from 192.168.2.1" in s, "ping to run in the TUI")
        pid = tui.tui_pid()
        pings = [k for k in _children(pid) if open(f"/proc/{k}/comm").read().strip() == "ping"]
        assert len(pings) == 1, _children(pid)
        ids = held_programs(pid)
        assert ids
        os.kill(pid, 9)
        tui.wait_for(lambda s: "TUI-EXIT=137" in s, "the shell to see the TUI killed")
        end = time.monotonic() + 5
        while _alive(pings[0]) and time.monotonic() < end:
            time.sleep(0.05)
        assert not _alive(pings[0]), "ping outlived the TUI"
        assert_unloaded(ids)
    finally:
        tui.kill()


def test_tui_counts_a_flood_it_cannot_keep_up_with_exactly(lab_ns, tmp_path):
    """`tui -- ping -f -c 20000` with a 1 MB ring buffer: most events are lost, so the list
    holds a fraction of the packets; the exact pane shows the kernel's counts of every echo
    request and reply, witnessed by ping's statistics and the namespace's Icmp counters; no
    row has a ✓ on a path that was not seen whole."""
    from vethtrace.tracer.lab import icmp_counters
    launch = LAUNCH.replace("LiveEvents(build_filters())", "LiveEvents(build_filters(), ring_mb=1)")
    before = icmp_counters(lab_ns.name)
    tui = Tui(lab_ns.name, tmp_path, ["ping", "-f", "-q", "-c", "20000", "-I", "veth0", "192.168.2.1"], launch)
    try:
        screen = tui.wait_for(lambda s: "exited with status 0" in s, "the flood to end", timeout=120)
        after = icmp_counters(lab_ns.name)
        kernel = {k: after[k] - before[k] for k in after}
        m = re.search(r"(\d+) packets transmitted, (\d+) received", screen)
        assert m, screen
        sent, received = int(m.group(1)), int(m.group(2))
        assert sent == 20000 == kernel["InEchos"] and received == kernel["InEchoReps"], (kernel, screen)
        request = re.compile(r"([\d,]+)×\s+ICMP echo request\s.*✓ answered at icmp_rcv")
        reply = re.compile(r"([\d,]+)×\s+ICMP echo reply\s.*> socket \(ping\)\s+✓ delivered to ping")

        def counted(pattern, text):
            return sum(int(n.replace(",", "")) for n in pattern.findall(text))
        # the pane is redrawn as the kernel's counts are read (every second)
        screen = tui.wait_for(lambda s: counted(request, s) == sent and counted(reply, s) == received,
                              "the exact pane to count the flood", timeout=30)
        assert "as the kernel counted it" in screen and re.search(r"LOST [\d,]+ EVENTS", screen), screen
        for line in screen.splitlines():
            if "ICMP echo 192.168.2.11 > 192.168.2.1 id" in line and "✓" in line:
                assert "veth0 > veth1 > icmp_rcv ⇒ lo > icmp_rcv > socket" in line, line
        tui.keys("q")
        screen = tui.wait_for(lambda s: "TUI-EXIT=" in s, "the TUI to exit")
        assert "TUI-EXIT=0" in screen and "probes detached" in screen and "Traceback" not in screen, screen
        after_summary = screen[screen.index("vethtrace tui:"):]
        assert counted(request, after_summary) == sent and counted(reply, after_summary) == received, screen
    finally:
        tui.kill()
