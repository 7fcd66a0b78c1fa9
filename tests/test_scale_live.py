"""Floods, live: a ring buffer far too small for a `ping -f` loses most events, and what
survived must not be shown as complete paths.  The witness for which paths are possible is
the same ping at a pace the tracer keeps up with (nothing lost).  The summary's counts are
the kernel's own (tracer.counters), exact whatever the ring lost: witnessed by ping's own
statistics and by the namespace's ICMP counters (/proc/net/snmp, what nstat reads)."""
from __future__ import annotations

import os
import re
import signal
import sys

import pytest
import subprocess

from conftest import ROOT, needs_root
from vethtrace.tracer import lab

pytestmark = [pytest.mark.live, needs_root]
LINE = re.compile(r"^\s*(\d+)x\s+(ICMP echo request|ICMP echo reply|ARP request|ARP reply)\s+(.*?)\s{2}(\S) (.*)$", re.M)
SUMMARY = re.compile(r"--- vethtrace: (\d+) packets?, (\d+) distinct paths?, (\d+) events?, (\d+) lost ---")
STATS = re.compile(r"(\d+) packets transmitted, (\d+) received")
DROPS = re.compile(r"^\s*(\d+)x\s+(?:dropped|freed) at (\w+) \((\w+)\)(?:, within: (.*))?$", re.M)


def vethtrace(ns: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "vethtrace", *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def replayed(*args: str) -> subprocess.CompletedProcess:
    """A command on a recording (no namespace needed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "vethtrace", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)


def summary(res: subprocess.CompletedProcess) -> tuple[list[tuple[int, str, str, str]], int, int]:
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    s = SUMMARY.search(res.stdout)
    m = STATS.search(res.stdout)
    assert s and m, res.stdout[-2000:]
    rows = [(int(n), label, path, mark) for n, label, path, mark, _how in LINE.findall(res.stdout)]
    return rows, int(s.group(4)), int(m.group(2))


def test_flood_beyond_the_ring_buffer_shows_no_impossible_path_as_complete(tmp_path):
    rec = tmp_path / "ping.jsonl"
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
        paced, lost, _ = summary(vethtrace(ns.name, "ping", "-c", "5", "-i", "0.1", "-I", "veth0", "192.168.2.1"))
        assert lost == 0
        possible = {(label, path) for _n, label, path, mark in paced if mark == "✓"}
        assert {label for label, _ in possible} >= {"ICMP echo request", "ICMP echo reply"}
        before = lab.icmp_counters(ns.name)
        res = vethtrace(ns.name, "ping", "--buffer-mb", "1", "--record", str(rec), "--svg", str(tmp_path / "ping.dot"),
                        "-f", "-q", "-c", "20000", "-I", "veth0", "192.168.2.1")
        after = lab.icmp_counters(ns.name)
        rows, lost, received = summary(res)
    kernel = {k: after[k] - before[k] for k in after}
    sent = int(STATS.search(res.stdout).group(1))
    assert lost > 10_000, "a 1 MB ring buffer should overflow under this flood"  # else the test shows nothing
    ticked = [(label, path) for _n, label, path, mark in rows if mark == "✓"]
    assert set(ticked) <= possible, (ticked, possible)
    # every row counts what the kernel counted, not what survived the ring buffer
    requests = sum(n for n, label, path, mark in rows if mark == "✓" and label == "ICMP echo request")
    delivered = sum(n for n, label, path, mark in rows if mark == "✓" and label == "ICMP echo reply")
    assert requests == sent == kernel["InEchos"], (rows, sent, kernel)
    assert delivered == received == kernel["InEchoReps"], (rows, received, kernel)
    # with no ping socket, icmp_rcv hands every echo reply to ping_rcv, which drops it (its raw-socket copy
    # is what ping reads): the drop count is the kernel's own count of echo replies in
    drops = {(func, reason): int(n) for n, func, reason, _within in DROPS.findall(res.stdout)}
    assert drops.get(("ping_rcv", "NO_SOCKET")) == kernel["InEchoReps"], (drops, kernel)
    # and it is told as the free of a copy inside the replies that were delivered, not as a failure
    within = {func: w for _n, func, _r, w in DROPS.findall(res.stdout)}
    assert within["ping_rcv"].startswith("ICMP echo reply") and "delivered" in within["ping_rcv"], res.stdout[-1500:]
    # ping --svg: the figure counts the kernel's packets (every reply ping received into its socket)
    dot = (tmp_path / "ping.dot").read_text()
    assert [int(n) for n in re.findall(r'-> "?socket[^ ]* \[label="×(\d+)"', dot)] == [kernel["InEchoReps"]], dot[-2000:]
    # ping --record: the recording's footer has the same counts, so `show` prints the same rows
    shown = replayed("show", str(rec))
    assert shown.returncode == 0, shown.stderr[-2000:]
    s = SUMMARY.search(shown.stdout)
    again = [(int(n), label, mark) for n, label, _path, mark, _how in LINE.findall(shown.stdout[s.start():])]
    assert sorted(again) == sorted((n, label, mark) for n, label, _path, mark in rows), (again, rows)


def test_trace_summary_counts_a_flood_it_could_not_keep_up_with(tmp_path):
    """`vethtrace trace --buffer-mb 1` while ping -f floods its namespace, stopped with Ctrl-C
    (SIGINT): the summary counts every echo request ping sent, however many events were lost."""
    out = tmp_path / "trace.txt"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
        subprocess.run(ns.exec_cmd(["ping", "-c", "2", "-i", "0.2", "-I", "veth0", "192.168.2.1"]),
                       capture_output=True, check=True)  # the neighbour resolved before the flood
        with open(out, "wb") as f:
            p = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-m", "vethtrace", "trace",
                                  "--buffer-mb", "1"], stdout=f, stderr=subprocess.PIPE, env=env, cwd=ROOT)
            try:
                assert b"tracing" in p.stderr.readline()
                before = lab.icmp_counters(ns.name)
                flood = subprocess.run(ns.exec_cmd(["ping", "-f", "-q", "-c", "10000", "-I", "veth0", "192.168.2.1"]),
                                       capture_output=True, text=True, check=True)
                after = lab.icmp_counters(ns.name)
            finally:
                p.send_signal(signal.SIGINT)
                _, err = p.communicate(timeout=120)
    assert p.returncode == 0 and b"Traceback" not in err, err[-2000:]
    text = out.read_text()
    s = SUMMARY.search(text)
    assert s, text[-2000:]
    assert int(s.group(4)) > 1000, "a 1 MB ring buffer should overflow under this flood"
    sent = int(STATS.search(flood.stdout).group(1))
    rows = [(int(n), label, mark) for n, label, _path, mark, _how in LINE.findall(text[s.start():])]
    requests = sum(n for n, label, mark in rows if label == "ICMP echo request" and mark == "✓")
    assert requests == sent == after["InEchos"] - before["InEchos"], (rows, sent)


def test_a_recorded_flood_is_shown_and_drawn_with_the_kernels_exact_counts(tmp_path):
    """`record --buffer-mb 1 -- ping -f -c 20000`: most events are lost, the footer keeps the
    kernel's counts; `show` and `render --all` of the recording then count every echo
    request and reply, witnessed by ping's statistics and the namespace's ICMP counters."""
    rec = tmp_path / "flood.jsonl"
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
        before = lab.icmp_counters(ns.name)
        res = vethtrace(ns.name, "record", "--buffer-mb", "1", "-o", str(rec), "--",
                        "ping", "-f", "-q", "-c", "20000", "-I", "veth0", "192.168.2.1")
        after = lab.icmp_counters(ns.name)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    kernel = {k: after[k] - before[k] for k in after}
    m = STATS.search(res.stdout)
    assert m, res.stdout[-2000:]
    sent, received = int(m.group(1)), int(m.group(2))
    assert sent == 20000 == kernel["InEchos"] and received == kernel["InEchoReps"]
    shown = replayed("show", str(rec))
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr[-2000:]
    s = SUMMARY.search(shown.stdout)
    assert s and int(s.group(4)) > 10_000, "a 1 MB ring buffer should overflow under this flood"
    rows = [(int(n), label, mark) for n, label, _path, mark, _how in LINE.findall(shown.stdout[s.start():])]
    requests = sum(n for n, label, mark in rows if mark == "✓" and label == "ICMP echo request")
    delivered = sum(n for n, label, mark in rows if mark == "✓" and label == "ICMP echo reply")
    assert requests == sent == kernel["InEchos"], rows
    assert delivered == received == kernel["InEchoReps"], rows
    drops = {(func, reason): int(n) for n, func, reason, _within in DROPS.findall(shown.stdout)}
    assert drops.get(("ping_rcv", "NO_SOCKET")) == kernel["InEchoReps"], shown.stdout[-1500:]
    # the aggregated diagram: the hop into ping's socket is taken by every reply ping received,
    # the hop into icmp_rcv by every request and every reply
    out, auto = tmp_path / "all.dot", tmp_path / "auto.dot"
    drawn = replayed("render", str(rec), "--all", "-o", str(out))
    assert drawn.returncode == 0 and "Traceback" not in drawn.stderr, drawn.stderr[-2000:]
    assert replayed("render", str(rec), "-o", str(auto)).returncode == 0
    dot = out.read_text()
    assert auto.read_text() == dot, "without --all, a recording that lost events is added up the same way"
    into_socket = [int(n) for n in re.findall(r'-> "?socket[^ ]* \[label="×(\d+)"', dot)]
    assert into_socket == [kernel["InEchoReps"]], (into_socket, dot[-3000:])
    # (the reply's hop from lo is drawn backwards, dir=back; the dashed link is the cause, not a hop)
    into_icmp = sorted(int(re.search(r'label="×(\d+)"', line).group(1)) for line in dot.splitlines()
                       if "icmp_rcv" in line and "->" in line and "socket" not in line and "dashed" not in line)
    assert into_icmp == sorted([kernel["InEchos"], kernel["InEchoReps"]]), (into_icmp, dot[-3000:])
    assert "as the kernel counted them" in dot
