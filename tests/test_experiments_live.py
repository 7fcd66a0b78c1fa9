"""The article's three experiments, live: a fresh namespace per run, real probes, real
pings, and tcpdump on veth0, veth1 and lo as the independent witness."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, TRACES, needs_root
from experiments import CHECKS, EXPERIMENTS, correlate
import pcap
from vethtrace.tracer import lab, recording
from vethtrace.tracer.correlate import device_crossings

pytestmark = [pytest.mark.live, needs_root]
DEVICES = ("veth0", "veth1", "lo")


def start_tcpdump(ns: str, dev: str, path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", dev, "--immediate-mode", "-U", "-n", "-w", str(path),
                             "not ip6"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # tcpdump says "listening on" once its socket is open: a ready signal, not a sleep.
    line = proc.stderr.readline()
    assert "listening on" in line, line
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def vethtrace(ns: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "vethtrace", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment(name, tmp_path):
    exp = EXPERIMENTS[name]
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump is not installed (scripts/setup installs it)")
    trace = tmp_path / f"{name}.jsonl"
    with lab.lab(exp.scenario, name=lab.unique_name()) as ns:
        dumps = {dev: start_tcpdump(ns.name, dev, tmp_path / f"{dev}.pcap") for dev in DEVICES}
        try:
            res = vethtrace(ns.name, "ping", "--record", str(trace), "--svg", str(tmp_path / "flow.svg"), *exp.ping)
        finally:
            for proc in dumps.values():
                stop(proc)
        plain = subprocess.run(ns.exec_cmd(["ping", "-c", "1", "-W", "1", *exp.ping[2:]]),
                               capture_output=True)
    assert "Traceback" not in res.stderr, res.stderr
    # Exit status is ping's, and ping's own lines are shown unchanged.
    assert (res.returncode == 0) == exp.ping_ok == (plain.returncode == 0), (res.returncode, res.stdout)
    assert "--- vethtrace:" in res.stdout and " 0 lost" in res.stdout, res.stdout
    assert f"PING {exp.ping[-1]}" in res.stdout

    assert b"<svg" in (tmp_path / "flow.svg").read_bytes()[:400]

    rec = recording.read(str(trace))
    corr = correlate(rec)
    CHECKS[name](corr)

    # tcpdump and vethtrace agree, packet for packet, on what crossed each device.
    placed = device_crossings(rec.events)
    for dev in DEVICES:
        seen = Counter(pcap.summaries(str(tmp_path / f"{dev}.pcap")))
        ours = Counter(text for _, text in placed.get(dev, []))
        assert ours == seen, f"{dev}: vethtrace {dict(ours)} vs tcpdump {dict(seen)}"

    if os.environ.get("VETHTRACE_UPDATE_TRACES"):
        TRACES.mkdir(exist_ok=True)
        shutil.copy(trace, TRACES / f"{name}.jsonl")
