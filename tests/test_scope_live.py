"""Scope is a set of packets, live: what `vethtrace record` keeps from namespaces it was
not asked about.

Each test builds its own namespaces (`vtk-<role>-<pid>`), joined by one veth pair where a
test needs two, sends traffic only inside them to addresses configured there, and removes
them on the way out (also on failure).  The recorder runs in namespace A with the default
scope; the witnesses are the kernel's own facts: each recorded event carries the inode of
the namespace it happened in, and ping's own count of replies.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, needs_root
from experiments import correlate
from vethtrace.tracer import recording

pytestmark = [pytest.mark.live, needs_root]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")

# TCP inside one namespace, over its loopback: a server and a client making short
# connections until killed.  TCP frees most of its skbs without the consume_skb/kfree_skb
# tracepoints (tcp_eat_recv_skb, the retransmit queue), which is what left stale entries in
# the probes' `tracked` map on the old code.
TCP_CHATTER = r"""
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(64); port = srv.getsockname()[1]
def serve():
    while True:
        c, _ = srv.accept()
        with c:
            while (d := c.recv(65536)):
                c.sendall(d)
threading.Thread(target=serve, daemon=True).start()
while True:
    with socket.create_connection(("127.0.0.1", port)) as c:
        for _ in range(20):
            c.sendall(b"x" * 3000); n = 0
            while n < 3000:
                n += len(c.recv(65536))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def namespaces(*roles: str):
    """Fresh namespaces named vtk-<role>-<pid>; removed on exit, whatever happened."""
    names = {r: f"vtk-{r}-{os.getpid()}" for r in roles}
    try:
        for n in names.values():
            _ip("netns", "add", n)
            _ip("-n", n, "link", "set", "lo", "up")
        yield names
    finally:
        for n in names.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


def veth_pair(a: str, b: str, addr_a: str, addr_b: str) -> None:
    """veth0 in a (addr_a/24) and its peer veth1 in b (addr_b/24)."""
    _ip("-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b)
    _ip("-n", a, "addr", "add", f"{addr_a}/24", "dev", "veth0")
    _ip("-n", b, "addr", "add", f"{addr_b}/24", "dev", "veth1")
    _ip("-n", a, "link", "set", "veth0", "up")
    _ip("-n", b, "link", "set", "veth1", "up")


def inode(ns: str) -> int:
    return os.stat(f"/run/netns/{ns}").st_ino


def in_ns(ns: str, *argv: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)


class Recorder:
    """`vethtrace record` inside a namespace, started and stopped as a user would."""

    def __init__(self, ns: str, path, *options: str):
        self.proc = in_ns(ns, sys.executable, "-m", "vethtrace", "record", "-o", str(path), *options,
                          stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
        line = self.proc.stderr.readline()  # printed once the probes are attached
        assert "recording" in line, line + self.proc.stderr.read()

    def stop(self) -> None:
        time.sleep(0.2)  # the last events are in the ring buffer; let the reader drain them
        self.proc.send_signal(2)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def background(*procs_args):
    """Processes started for traffic, killed by pid on exit."""
    procs = []
    try:
        for ns, argv in procs_args:
            procs.append(in_ns(ns, *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_unrelated_namespace_contributes_no_event(tmp_path):
    """While `vethtrace record` runs in A (default scope) and A pings its peer B, namespace C
    floods pings and runs TCP to its own addresses, and A runs TCP too.  Not one event of C
    may be recorded, and A's ping is followed whole: request A:veth0 > B:veth1 > B's stack,
    reply B:veth1 > A:veth0 > A's stack > socket."""
    out = tmp_path / "scope.jsonl"
    with namespaces("a", "b", "c") as ns:
        veth_pair(ns["a"], ns["b"], "10.201.1.1", "10.201.1.2")
        _ip("-n", ns["c"], "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        _ip("-n", ns["c"], "addr", "add", "10.203.1.1/24", "dev", "veth0")
        _ip("-n", ns["c"], "addr", "add", "10.203.1.2/24", "dev", "veth1")
        _ip("-n", ns["c"], "link", "set", "veth0", "up")
        _ip("-n", ns["c"], "link", "set", "veth1", "up")
        rec = Recorder(ns["a"], out)
        try:
            with background((ns["a"], [sys.executable, "-I", "-c", TCP_CHATTER]),
                            (ns["c"], [sys.executable, "-I", "-c", TCP_CHATTER]),
                            (ns["c"], ["ping", "-f", "-q", "127.0.0.1"]),
                            (ns["c"], ["ping", "-f", "-q", "10.203.1.2"])):
                time.sleep(1.0)  # TCP in A leaves skbs the old probes tracked; C reuses them
                res = subprocess.run(["ip", "netns", "exec", ns["a"], "ping", "-c", "3", "-i", "0.3",
                                      "10.201.1.2"], capture_output=True, text=True)
                time.sleep(1.0)
            rec.stop()
        finally:
            rec.kill()
        assert res.returncode == 0, res.stdout + res.stderr
        a, b, c = inode(ns["a"]), inode(ns["b"]), inode(ns["c"])
    r = recording.read(str(out))
    from_c = [e for e in r.events if e.netns == c]
    assert not from_c, f"{len(from_c)} events of the unrelated namespace C, e.g. {from_c[0].describe()}"
    assert {e.netns for e in r.events} <= {a, b, 0}
    corr = correlate(r)
    echoes = [cv for cv in corr.conversations if cv.kind == "echo" and "10.201.1.2" in cv.key[1]]
    assert len(echoes) == 3, [cv.title for cv in echoes]
    for cv in echoes:
        (req,), (rep,) = cv.with_role("request"), cv.with_role("reply")
        assert _places(req)[:3] == [("veth0", a), ("veth1", b), ("stack", b)], _places(req)
        assert _places(rep)[:4] == [("veth1", b), ("veth0", a), ("stack", a), ("socket", a)], _places(rep)


def _places(j) -> list[tuple[str, int]]:
    """(device or stack/socket, namespace inode) of each hop."""
    out = []
    for h in j.hops:
        kind, name = h.place
        out.append((name if kind == "device" else kind, h.netns))
    return out


def test_netns_option_traces_the_named_namespace(tmp_path):
    """`--netns NAME`, run from the host namespace: the named namespace's packets are the
    scope (followed into its peer), the host's own traffic is not."""
    out = tmp_path / "named.jsonl"
    with namespaces("a", "b") as ns:
        veth_pair(ns["a"], ns["b"], "10.204.1.1", "10.204.1.2")
        proc = subprocess.Popen([sys.executable, "-m", "vethtrace", "record", "-o", str(out), "--netns", ns["a"]],
                                stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
        try:
            assert "recording" in proc.stderr.readline()
            res = subprocess.run(["ip", "netns", "exec", ns["a"], "ping", "-c", "1", "10.204.1.2"],
                                 capture_output=True, text=True)
            time.sleep(0.2)
            proc.send_signal(2)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert res.returncode == 0, res.stdout + res.stderr
        a, b = inode(ns["a"]), inode(ns["b"])
    r = recording.read(str(out))
    assert {e.netns for e in r.events} <= {a, b, 0}, {e.netns for e in r.events}
    (cv,) = [cv for cv in correlate(r).conversations if cv.kind == "echo"]
    (req,), (rep,) = cv.with_role("request"), cv.with_role("reply")
    assert _places(req)[:3] == [("veth0", a), ("veth1", b), ("stack", b)], _places(req)
    assert _places(rep)[:4] == [("veth1", b), ("veth0", a), ("stack", a), ("socket", a)], _places(rep)
