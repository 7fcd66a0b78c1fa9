"""`--netns NAME` and `--all-netns`: bad input is one line, exit status 2, nothing written.
Validated before privileges are needed, so no root is."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")


def vethtrace(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vethtrace", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


def one_line(r: subprocess.CompletedProcess, *words: str) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2 and not r.stdout, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vethtrace: "), lines
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("cmd", [["record", "-o", "OUT"], ["trace"]])
@pytest.mark.parametrize("name, words", [
    ("vtk-no-such-namespace", ["vtk-no-such-namespace", "ip netns list"]),
    ("../etc", ["bad namespace name"]),
    ("", ["bad namespace name"]),
])
def test_bad_netns_name(cmd, name, words, tmp_path):
    out = tmp_path / "out.jsonl"
    args = [str(out) if a == "OUT" else a for a in cmd]
    one_line(vethtrace(*args, "--netns", name, "-d", "1"), *words)
    assert not out.exists()


@pytest.mark.parametrize("name, words", [("vtk-no-such-namespace", ["vtk-no-such-namespace", "ip netns list"]),
                                         ("../etc", ["bad namespace name"])])
def test_run_takes_netns_too(name, words, tmp_path):
    """`run --netns NAME` is the scope, as for record and trace (it was once ignored)."""
    out = tmp_path / "out.jsonl"
    one_line(vethtrace("run", "--netns", name, "--record", str(out), "--", "true"), *words)
    one_line(vethtrace("run", "--all-netns", "--netns", "x", "--", "true"), "--all-netns", "--netns")
    assert not out.exists()


def test_netns_and_all_netns_exclude_each_other(tmp_path):
    out = tmp_path / "out.jsonl"
    one_line(vethtrace("record", "-o", str(out), "--all-netns", "--netns", "x", "-d", "1"), "--all-netns", "--netns")
    assert not out.exists()


def test_a_file_in_run_netns_that_is_no_namespace(tmp_path, monkeypatch):
    from vethtrace.tracer import live
    from vethtrace.tracer.kernel import SetupError
    (tmp_path / "fake").write_text("")
    monkeypatch.setattr(live, "NETNS_DIR", str(tmp_path))
    with pytest.raises(SetupError, match="not a network namespace"):
        live.netns_by_name("fake")
