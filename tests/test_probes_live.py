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


# A process in the lab that names itself (first a name longer than the kernel keeps, then a
# short one, so a copy that does not stop at the NUL would show what the long one left), then
# sends one ICMP echo request from a raw socket to an address of the lab and reads what comes
# back (a raw socket's read is a reported delivery; a UDP read of a linear skb is not): the
# records of its send and of the delivery carry its comm and tgid.  It prints its pid and the
# name the kernel gives in /proc.
NAMED_SENDER = r"""
import ctypes, os, socket, struct
prctl = ctypes.CDLL(None, use_errno=True).prctl
assert prctl(15, b"vt-a-very-long-name-indeed", 0, 0, 0) == 0  # PR_SET_NAME
assert prctl(15, b"vt-named", 0, 0, 0) == 0
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(5)
msg = struct.pack("!BBHHH", 8, 0, 0, 0x7674, 1) + b"names!"
csum = sum(struct.unpack("!7H", msg))
csum = (csum >> 16) + (csum & 0xffff)
msg = msg[:2] + struct.pack("!H", ~(csum + (csum >> 16)) & 0xffff) + msg[4:]
s.sendto(msg, ("192.168.2.1", 0))
s.recv(256)
print(os.getpid(), open("/proc/self/comm").read().rstrip("\n"))
"""


def test_names_are_the_kernels():
    """comm and ifname are copied from task->comm and dev->name with plain loads: every record
    must carry exactly the kernel's NUL-padded names, as /proc/PID/comm and `ip link` give them
    (the witnesses), pid is the sender's tgid, and nothing past the NUL is carried."""
    import json
    from vethtrace.tracer import kernel, record
    from vethtrace.tracer.live import build_filters
    from vethtrace.tracer.loader import Probes
    raws = []
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as a:
        btf = kernel.open_btf()
        try:
            with Probes(build_filters(netns=[a.name]), btf, want_fentry=False) as probes:
                res = subprocess.run(a.exec_cmd([sys.executable, "-c", NAMED_SENDER]), capture_output=True,
                                     text=True, timeout=30)
                assert res.returncode == 0, res.stderr
                assert ping(a.name, "-I", "veth0", "192.168.2.1").returncode == 0
                raws += probes.poll(100) + probes.drain()
        finally:
            btf.close()
        links = json.loads(subprocess.run(["ip", "-n", a.name, "-j", "link", "show"], capture_output=True,
                                          text=True, check=True).stdout)
    pid, comm = res.stdout.split()
    assert comm == "vt-named"
    ifnames = {link["ifindex"]: link["ifname"] for link in links}
    f = [name for name, _ in record.EVENT_FIELDS]
    recs = [dict(zip(f, record.EVENT.unpack(r))) for r in raws]
    pad16 = lambda s: s.encode().ljust(16, b"\0")  # noqa: E731
    by_sender = [x for x in recs if x["pid"] == int(pid)]
    assert any(x["kind"] == 10 for x in by_sender), "no delivery to the named sender"  # VTR_EV_DELIVER
    assert {x["comm"] for x in by_sender} == {pad16(comm)}
    pings = [x for x in recs if x["comm"] == pad16("ping")]
    assert pings, {x["comm"] for x in recs}
    for x in recs:
        assert x["comm"].rstrip(b"\0").find(b"\0") < 0, x["comm"]
        if x["ifindex"] and x["kind"] != 6:  # a route lookup's device is the route's
            assert x["ifname"] == pad16(ifnames[x["ifindex"]]), (x["ifindex"], x["ifname"])
    assert {ifnames[x["ifindex"]] for x in recs if x["ifindex"]} >= {"veth0", "veth1", "lo"}
