"""`vethtrace lab list` and bad scenario names (no root needed)."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT
from vethtrace.tracer import lab


def cli(*args):
    return subprocess.run([sys.executable, "-m", "vethtrace", *args], capture_output=True, text=True, cwd=ROOT)


def test_lab_list_says_what_each_scenario_shows():
    r = cli("lab", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["one-ip", "two-ips", "two-ips-fixed", "two-netns", "bridge", "router"]
    for line, (name, what) in zip(lines, lab.listing()):
        assert line.split(None, 1)[1] == what and len(what) > 40


def test_unknown_scenario_is_one_line_with_status_2():
    for args in (("lab", "up", "bridges"), ("lab", "status", "nope")):
        r = cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "lab list" in r.stderr, r.stderr
