"""`vethtrace run` refuses bad input in one line, exit status 2, before loading anything
(so these need no root)."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def vethtrace(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "vethtrace", *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd="/")


def test_run_without_a_command():
    res = vethtrace("run")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == ["vethtrace: say what to run, e.g. "
                                               "`vethtrace run -- curl -s http://192.168.2.1:8000/`"]


def test_run_of_a_missing_program(tmp_path):
    res = vethtrace("run", "--", "vethtrace-no-such-program", "-x")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "vethtrace-no-such-program" in res.stderr
    res = vethtrace("run", "--", str(tmp_path / "nothing-here"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_run_refuses_an_unwritable_recording_before_tracing(tmp_path):
    res = vethtrace("run", "--record", str(tmp_path / "no" / "dir" / "t.jsonl"), "--", "true")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()
