"""The probes themselves, live: mechanism detection and the in-kernel filters (namespace,
host, interface), checked against traffic in two fresh namespaces."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, needs_root
from experiments import correlate
from vethtrace.tracer import lab, recording

pytestmark = [pytest.mark.live, needs_root]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")


def netns_inode(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


class Recorder:
    """`vethtrace record` running inside a namespace, started and stopped like a user would."""

    def __init__(self, ns: str, path, *filters: str):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "vethtrace", "record",
                                      "-o", str(path), *filters], stderr=subprocess.PIPE, text=True,
                                     env=ENV, cwd=ROOT)
        line = self.proc.stderr.readline()  # printed once the probes are attached
        assert "recording" in line, line + self.proc.stderr.read()

    def stop(self) -> str:
        time.sleep(0.2)
        self.proc.send_signal(2)
        _, err = self.proc.communicate(timeout=15)
        assert self.proc.returncode == 0, err
        return err


def ping(ns, *args):
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", *args], capture_output=True)


def test_doctor_names_the_mechanism():
    res = subprocess.run([sys.executable, "-m", "vethtrace", "doctor"], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert "probe mechanism: " in res.stdout, res.stdout + res.stderr
    mech = res.stdout.split("probe mechanism: ", 1)[1].splitlines()[0]
    assert mech in ("tp_btf", "fentry + tp_btf")
    if mech == "tp_btf":  # fentry refused here: the reason is shown, nothing failed
        assert "skipped fentry probes" in res.stdout


def _mechanism(want_fentry):
    from vethtrace.tracer.live import LiveSource, build_filters
    with LiveSource(build_filters(), want_fentry=want_fentry) as src:
        return src.mechanism, list(src.report.skipped)


def test_fentry_refusal_is_remembered_until_reboot():
    """Trying fentry costs a second load of the object where it is refused, so a refusal is
    remembered for the boot; doctor (want_fentry=True) always tries again."""
    from vethtrace.tracer import loader
    mech, skipped = _mechanism(True)
    if mech == "fentry + tp_btf":  # a kernel that allows fentry remembers nothing
        assert not loader.FENTRY_MEMO.exists()
        assert _mechanism("auto")[0] == "fentry + tp_btf"
        return
    assert mech == "tp_btf" and any(x.startswith("fentry probes: refused") for x in skipped), skipped
    key = loader.FENTRY_MEMO.read_text().splitlines()[0]
    assert key.startswith(f"{open('/proc/sys/kernel/random/boot_id').read().strip()} {os.uname().release} ")
    mech, skipped = _mechanism("auto")
    assert mech == "tp_btf" and any("remembered" in x for x in skipped), skipped
    # a memo from another boot is not believed: fentry is tried again, and the memo renewed
    loader.FENTRY_MEMO.write_text("another-boot 0.0\nEPERM\n")
    mech, skipped = _mechanism("auto")
    assert mech == "tp_btf" and not any("remembered" in x for x in skipped), skipped
    assert loader.FENTRY_MEMO.read_text().splitlines()[0] == key
    assert _mechanism(False)[0] == "tp_btf"


def test_namespace_filter_keeps_other_namespaces_out(tmp_path):
    out = tmp_path / "a.jsonl"
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as a, lab.lab("two-ips-fixed", name=lab.unique_name()) as b:
        rec = Recorder(a.name, out)
        assert ping(b.name, "-I", "veth0", "192.168.2.1").returncode == 0
        assert ping(a.name, "-I", "veth0", "192.168.2.1").returncode == 0
        rec.stop()
        inode_a = netns_inode(a.name)
    r = recording.read(str(out))
    assert r.events and {e.netns for e in r.events} == {inode_a}
    corr = correlate(r)
    echoes = [c for c in corr.conversations if c.kind == "echo"]
    assert len(echoes) == 1, [c.title for c in echoes]   # only namespace a's ping


def test_host_filter(tmp_path):
    out = tmp_path / "h.jsonl"
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as a:
        rec = Recorder(a.name, out, "--host", "192.168.2.2")
        ping(a.name, "-I", "veth0", "192.168.2.1")
        ping(a.name, "-I", "veth0", "192.168.2.2")
        rec.stop()
    corr = correlate(recording.read(str(out)))
    addrs = {j.pkt.dst for j in corr.journeys if j.pkt is not None} | {j.pkt.src for j in corr.journeys if j.pkt is not None}
    assert "192.168.2.2" in addrs
    for j in corr.journeys:
        assert j.pkt is None or "192.168.2.2" in (j.pkt.src, j.pkt.dst) or (
            j.pkt.inner is not None and "192.168.2.2" in (j.pkt.inner.src, j.pkt.inner.dst)), j.summary


def test_interface_filter(tmp_path):
    out = tmp_path / "i.jsonl"
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as a:
        rec = Recorder(a.name, out, "-i", "veth1")
        assert ping(a.name, "-I", "veth0", "192.168.2.1").returncode == 0
        rec.stop()
    r = recording.read(str(out))
    devices = {e.dev for e in r.events if e.kind in ("xmit", "netif_rx", "receive")}
    assert devices == {"veth1"}, devices
