"""Floods, live: a ring buffer far too small for a `ping -f` loses most events, and what
survived must not be shown as complete paths.  The witness for which paths are possible is
the same ping at a pace the tracer keeps up with (nothing lost), and ping's own count of
replies bounds how many replies can have been seen delivered."""
from __future__ import annotations

import os
import re
import sys

import pytest
import subprocess

from conftest import ROOT, needs_root
from vethtrace.tracer import lab

pytestmark = [pytest.mark.live, needs_root]
LINE = re.compile(r"^\s*(\d+)x\s+(ICMP echo request|ICMP echo reply|ARP request|ARP reply)\s+(.*?)\s{2}(\S) (.*)$", re.M)
SUMMARY = re.compile(r"--- vethtrace: (\d+) packets?, (\d+) distinct paths?, (\d+) events?, (\d+) lost ---")
STATS = re.compile(r"(\d+) packets transmitted, (\d+) received")


def vethtrace(ns: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "vethtrace", *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def summary(res: subprocess.CompletedProcess) -> tuple[list[tuple[int, str, str, str]], int, int]:
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    s = SUMMARY.search(res.stdout)
    m = STATS.search(res.stdout)
    assert s and m, res.stdout[-2000:]
    rows = [(int(n), label, path, mark) for n, label, path, mark, _how in LINE.findall(res.stdout)]
    return rows, int(s.group(4)), int(m.group(2))


def test_flood_beyond_the_ring_buffer_shows_no_impossible_path_as_complete():
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
        paced, lost, _ = summary(vethtrace(ns.name, "ping", "-c", "5", "-i", "0.1", "-I", "veth0", "192.168.2.1"))
        assert lost == 0
        possible = {(label, path) for _n, label, path, mark in paced if mark == "✓"}
        assert {label for label, _ in possible} >= {"ICMP echo request", "ICMP echo reply"}
        rows, lost, received = summary(vethtrace(ns.name, "ping", "--buffer-mb", "1", "-f", "-q", "-c", "20000",
                                                 "-I", "veth0", "192.168.2.1"))
    assert lost > 10_000, "a 1 MB ring buffer should overflow under this flood"  # else the test shows nothing
    ticked = [(label, path) for _n, label, path, mark in rows if mark == "✓"]
    assert set(ticked) <= possible, (ticked, possible)
    assert any(mark == "?" for *_x, mark in rows), rows  # the incomplete ones are said to be
    delivered = sum(n for n, label, path, mark in rows if mark == "✓" and label == "ICMP echo reply")
    assert delivered <= received
