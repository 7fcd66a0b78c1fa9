"""The commands vethtrace prints for people to paste run as printed: `lab up` says how to
trace the ping inside the lab and how to remove it; both are run here exactly as printed,
with a PATH on which no `vethtrace` is found."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, needs_root
from vethtrace.tracer import lab as labmod

ENV = {k: v for k, v in os.environ.items() if not k.startswith("VETHTRACE_")}
ENV["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"


def _printed(out: str, label: str) -> str:
    line = next(line for line in out.splitlines() if line.strip().startswith(label))
    return line.split(label, 1)[1].strip()


@pytest.mark.live
@needs_root
def test_lab_up_prints_commands_that_run_as_printed(tmp_path):
    exe = ROOT / ".venv" / "bin" / "vethtrace"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vethtrace"]
    ns = labmod.ns_name("two-ips-fixed")
    assert not os.path.exists(f"/run/netns/{ns}"), f"{ns} already exists: remove it first"
    up = subprocess.run([*cmd, "lab", "up", "two-ips-fixed"], capture_output=True, text=True, env=ENV,
                        cwd=tmp_path, timeout=60)
    try:
        assert up.returncode == 0, up.stderr
        trace = _printed(up.stdout, "trace the ping:")
        r = subprocess.run(["bash", "-c", trace], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120)
        assert r.returncode == 0, f"{trace!r} -> {r.returncode}: {r.stderr}"
        assert "delivered to ping" in r.stdout
        down = _printed(up.stdout, "remove it:")
        r = subprocess.run(["bash", "-c", down], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=60)
        assert r.returncode == 0, f"{down!r}: {r.stderr}"
        assert not os.path.exists(f"/run/netns/{ns}")
    finally:
        labmod.down("two-ips-fixed")
