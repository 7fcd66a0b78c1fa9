"""TCP, UDP, ICMP errors, netfilter, rp_filter, MTU and IPv6, live: two fresh namespaces
joined by a veth pair, `vethtrace run` around a real client in A, real servers in B.
Witnesses: tcpdump on vb (its own text output), the kernel's counters in B (nstat), the
client's own errors (ECONNREFUSED, EMSGSIZE), and the advice applied, then run again.

Run under the shared lock: flock /tmp/vethtrace-live.lock .venv/bin/python -m pytest tests/test_protocols_live.py
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, TRACES, needs_root
from protocols import (A_IP, A_IP6, B_IP, B_IP6, CHECKS, CLOSED_PORT, TCP_PORT, UDP_PORT, UNOWNED6, correlate,
                       tcp_journeys)
from vethtrace.tracer import recording
from vethtrace.tracer.correlate import device_crossings
from vethtrace.tracer.packet import TCP_ACK, tcp_flag_text
from vethtrace.tracer.verdict import verdict

pytestmark = [pytest.mark.live, needs_root]
_serial = itertools.count()


class Pair:
    """Namespaces A and B (unique names), va in A and vb in B, IPv4 and IPv6 addresses."""

    def __init__(self):
        n = f"{os.getpid()}-{next(_serial)}"
        self.a, self.b = f"vtp-a-{n}", f"vtp-b-{n}"
        self.procs: list[subprocess.Popen] = []

    def up(self) -> "Pair":
        for ns in (self.a, self.b):
            sh("ip", "netns", "add", ns)
        sh("ip", "-n", self.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", self.b)
        for ns, dev, ip4, ip6 in ((self.a, "va", A_IP, A_IP6), (self.b, "vb", B_IP, B_IP6)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip4}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", dev, "nodad")  # no DAD delay
        return self

    def down(self) -> None:
        for p in self.procs:
            stop(p)
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def run(self, ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=60,
                              check=check)

    def start(self, ns: str, *argv: str, ready: str = "") -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        self.procs.append(p)
        if ready:  # a ready signal, not a sleep
            line = (p.stderr if ready == "listening on" else p.stdout).readline()
            assert ready in line, line
        return p

    def nstat(self, ns: str, counter: str) -> int:
        """The kernel's own counter in namespace ns (-s: the shared history file is left alone)."""
        out = self.run(ns, "nstat", "-asz", counter).stdout
        m = re.search(rf"^{counter}\s+(\d+)", out, re.M)
        assert m, out
        return int(m.group(1))

    def vethtrace(self, trace: Path, *client: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
        return subprocess.run(["ip", "netns", "exec", self.a, sys.executable, "-m", "vethtrace", "run",
                               "--record", str(trace), "--", *client],
                              capture_output=True, text=True, timeout=90, env=env, cwd=ROOT)


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    try:
        p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()


@pytest.fixture
def pair():
    p = Pair()
    try:
        yield p.up()
    finally:
        p.down()


def tcpdump(pair: Pair, path: Path) -> subprocess.Popen:
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump is not installed (scripts/setup installs it)")
    return pair.start(pair.b, "tcpdump", "-i", "vb", "--immediate-mode", "-U", "-n", "-w", str(path),
                      ready="listening on")


def tcpdump_text(path: Path) -> list[str]:
    """tcpdump's own reading of the capture (-S: absolute sequence numbers)."""
    out = subprocess.run(["tcpdump", "-r", str(path), "-n", "-S", "-tt"], capture_output=True, text=True).stdout
    return out.splitlines()


def client(code: str) -> list[str]:
    return [sys.executable, "-I", "-c", code]


def finish(name: str, res: subprocess.CompletedProcess, trace: Path):
    assert "Traceback" not in res.stderr, res.stderr
    assert "--- vethtrace:" in res.stdout and " 0 lost" in res.stdout, res.stdout + res.stderr
    rec = recording.read(str(trace))
    corr = correlate(rec)
    CHECKS[name](corr)
    if os.environ.get("VETHTRACE_UPDATE_TRACES"):
        TRACES.mkdir(exist_ok=True)
        shutil.copy(trace, TRACES / f"proto-{name}.jsonl")
    return rec, corr


SERVER_TCP = f"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{B_IP}", int(sys.argv[1]))); s.listen(); print("ready", flush=True)
c, _ = s.accept(); c.recv(100); c.sendall(b"hello\\n"); c.close()
"""
CLIENT_TCP = f"""
import socket, sys
try:
    s = socket.create_connection(("{B_IP}", int(sys.argv[1])), timeout=5)
except ConnectionRefusedError:
    print("ECONNREFUSED"); sys.exit(3)
s.sendall(b"hi"); print(s.recv(100).decode().strip()); s.close()
"""


def test_tcp_listening(pair, tmp_path):
    pair.start(pair.b, sys.executable, "-I", "-c", SERVER_TCP, str(TCP_PORT), ready="ready")
    dump = tcpdump(pair, tmp_path / "vb.pcap")
    res = pair.vethtrace(tmp_path / "t.jsonl", *client(CLIENT_TCP), str(TCP_PORT))
    stop(dump)
    assert res.returncode == 0 and "hello" in res.stdout, res.stdout + res.stderr
    rec, corr = finish("tcp-listen", res, tmp_path / "t.jsonl")
    # tcpdump on vb, in its own words: the same segments, flags and acknowledgements
    theirs = [(m.group(1), int(a.group(1)) if (a := re.search(r", ack (\d+)", line)) else None)
              for line in tcpdump_text(tmp_path / "vb.pcap") if (m := re.search(r"Flags \[([^\]]+)\]", line))]
    ours = [(tcp_flag_text(j.pkt.tcp_flags), j.pkt.tcp_ack if j.pkt.has_tcp_flag(TCP_ACK) else None)
            for j in tcp_journeys(corr, TCP_PORT)]
    assert sorted(ours) == sorted(theirs), (ours, theirs)
    assert "lost events" not in res.stdout and "QUEUE_PURGE at" not in res.stdout.split("--- vethtrace")[0]


def test_tcp_closed_port(pair, tmp_path):
    before = pair.nstat(pair.b, "TcpOutRsts")
    dump = tcpdump(pair, tmp_path / "vb.pcap")
    res = pair.vethtrace(tmp_path / "t.jsonl", *client(CLIENT_TCP), str(CLOSED_PORT))
    stop(dump)
    assert res.returncode == 3 and "ECONNREFUSED" in res.stdout, res.stdout + res.stderr  # the client's status
    rec, corr = finish("tcp-closed", res, tmp_path / "t.jsonl")
    assert pair.nstat(pair.b, "TcpOutRsts") - before >= 1  # the kernel's account: it sent a reset
    flags = [re.search(r"Flags \[([^\]]+)\]", line).group(1) for line in tcpdump_text(tmp_path / "vb.pcap")
             if f".{CLOSED_PORT}" in line and "Flags" in line]
    assert flags == ["S", "R."], flags
    syn = next(j for j in tcp_journeys(corr, CLOSED_PORT) if j.pkt.tcp_flags == 0x02)
    v = verdict(syn, corr)
    assert pair.b in v.text, v.text  # names the namespace where nothing listens
    # the advice, applied: start a server on that port in B; the same client now connects
    assert f"start a server on tcp/{CLOSED_PORT} in {pair.b}" in v.advice
    pair.start(pair.b, sys.executable, "-I", "-c", SERVER_TCP, str(CLOSED_PORT), ready="ready")
    again = pair.run(pair.a, *client(CLIENT_TCP), str(CLOSED_PORT), check=False)
    assert again.returncode == 0 and "hello" in again.stdout


CLIENT_UDP = f"""
import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1)
u.connect(("{B_IP}", {UDP_PORT})); u.send(b"x")
try:
    u.recv(100)  # a connected UDP socket is told of the port unreachable here
except ConnectionRefusedError:
    print("ECONNREFUSED"); sys.exit(7)
except socket.timeout:
    print("no answer"); sys.exit(0)
print("answered"); sys.exit(0)
"""
SERVER_UDP = f"""
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("{B_IP}", {UDP_PORT})); print("ready", flush=True)
data, peer = u.recvfrom(100); u.sendto(b"pong", peer)
"""


def test_udp_closed_port(pair, tmp_path):
    before = pair.nstat(pair.b, "UdpNoPorts")
    dump = tcpdump(pair, tmp_path / "vb.pcap")
    res = pair.vethtrace(tmp_path / "t.jsonl", *client(CLIENT_UDP))
    stop(dump)
    assert res.returncode == 7 and "ECONNREFUSED" in res.stdout, res.stdout + res.stderr
    rec, corr = finish("udp-closed", res, tmp_path / "t.jsonl")
    assert pair.nstat(pair.b, "UdpNoPorts") - before == 1
    text = tcpdump_text(tmp_path / "vb.pcap")
    assert any(f"{A_IP}" in line and f"{B_IP}.{UDP_PORT}: UDP" in line for line in text), text
    assert any(f"udp port {UDP_PORT} unreachable" in line for line in text), text
    dgram = next(j for j in corr.journeys if j.pkt is not None and j.pkt.is_udp and j.pkt.dport == UDP_PORT)
    v = verdict(dgram, corr)
    assert f"nothing listens on udp/{UDP_PORT} in {pair.b}" in v.text, v.text
    pair.start(pair.b, sys.executable, "-I", "-c", SERVER_UDP, ready="ready")
    again = pair.run(pair.a, *client(CLIENT_UDP), check=False)
    assert again.returncode == 0 and "answered" in again.stdout, again.stdout


def test_nftables_drop(pair, tmp_path):
    if shutil.which("nft") is None:
        pytest.fail("nft is not installed (scripts/setup installs nftables)")
    pair.run(pair.b, "nft", "add", "table", "inet", "vtp")
    pair.run(pair.b, "nft", "add", "chain", "inet", "vtp", "input", "{ type filter hook input priority 0; }")
    pair.run(pair.b, "nft", "add", "rule", "inet", "vtp", "input", "icmp", "type", "echo-request", "counter", "drop")
    dump = tcpdump(pair, tmp_path / "vb.pcap")
    res = pair.vethtrace(tmp_path / "t.jsonl", "ping", "-c", "1", "-W", "1", B_IP)
    stop(dump)
    assert res.returncode == 1, res.stdout
    rec, corr = finish("nft-drop", res, tmp_path / "t.jsonl")
    text = tcpdump_text(tmp_path / "vb.pcap")
    assert any("ICMP echo request" in line for line in text) and not any("echo reply" in line for line in text)
    req = next(j for j in corr.journeys if j.pkt is not None and j.pkt.is_echo_request)
    v = verdict(req, corr)
    assert pair.b in v.text
    # the advice, applied: the command lists the rule, and the kernel's own counter says it dropped one
    cmd = re.search(r"(ip netns exec \S+ nft list ruleset)", v.advice).group(1).split()
    assert cmd[3] == pair.b
    listed = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert re.search(r"icmp type echo-request counter packets 1 bytes \d+ drop", listed), listed
    pair.run(pair.b, "nft", "delete", "table", "inet", "vtp")
    assert pair.run(pair.a, "ping", "-c", "1", "-W", "1", B_IP, check=False).returncode == 0


RP_SRC = "10.9.0.1"


def test_rp_filter_strict(pair, tmp_path):
    # B routes 10.9.0.0/24 through another device (a second veth pair inside B: this kernel
    # has no dummy driver), so a packet from 10.9.0.1 arriving on vb fails the strict
    # reverse-path check; A sends it from that address.
    pair.run(pair.b, "ip", "link", "add", "vd", "type", "veth", "peer", "name", "vd2")
    pair.run(pair.b, "ip", "link", "set", "vd", "up")
    pair.run(pair.b, "ip", "link", "set", "vd2", "up")
    pair.run(pair.b, "ip", "route", "add", "10.9.0.0/24", "dev", "vd")
    pair.run(pair.b, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.vb.rp_filter=1")
    pair.run(pair.a, "ip", "addr", "add", f"{RP_SRC}/32", "dev", "va")
    # A's ARP asks from 192.168.7.1 (B would not answer an ARP from 10.9.0.1 on vb either)
    pair.run(pair.a, "sysctl", "-qw", "net.ipv4.conf.va.arp_announce=2")
    before = pair.nstat(pair.b, "TcpExtIPReversePathFilter")
    res = pair.vethtrace(tmp_path / "t.jsonl", "ping", "-c", "1", "-W", "1", "-I", RP_SRC, B_IP)
    assert res.returncode == 1, res.stdout
    rec, corr = finish("rp-filter", res, tmp_path / "t.jsonl")
    assert pair.nstat(pair.b, "TcpExtIPReversePathFilter") - before == 1
    req = next(j for j in corr.journeys if j.pkt is not None and j.pkt.is_echo_request)
    v = verdict(req, corr)
    assert "the larger of all=1 and vb=1" in v.text and pair.b in v.text, v.text
    # what the advice warns about: vb=0 does not help while all=1
    pair.run(pair.b, "sysctl", "-qw", "net.ipv4.conf.vb.rp_filter=0")
    pair.run(pair.a, "ping", "-c", "1", "-W", "1", "-I", RP_SRC, B_IP, check=False)
    assert pair.nstat(pair.b, "TcpExtIPReversePathFilter") - before == 2
    # the advice, applied as printed: the request then passes (answered by B's icmp_rcv)
    cmd = re.search(r"(ip netns exec \S+ sysctl -w \S+)", v.advice).group(1).split()
    subprocess.run(cmd, check=True, capture_output=True)
    res2 = pair.vethtrace(tmp_path / "t2.jsonl", "ping", "-c", "1", "-W", "1", "-I", RP_SRC, B_IP)
    corr2 = correlate(recording.read(str(tmp_path / "t2.jsonl")))
    req2 = next(j for j in corr2.journeys if j.pkt is not None and j.pkt.is_echo_request)
    assert req2.end is not None and req2.end.func == "icmp_rcv", (verdict(req2, corr2).text, res2.stdout)
    assert pair.nstat(pair.b, "TcpExtIPReversePathFilter") - before == 2


def test_mtu_refused(pair, tmp_path):
    pair.run(pair.a, "ip", "link", "set", "va", "mtu", "1000")
    dump = tcpdump(pair, tmp_path / "vb.pcap")
    res = pair.vethtrace(tmp_path / "t.jsonl", "ping", "-c", "1", "-s", "1400", "-M", "do", B_IP)
    stop(dump)
    assert res.returncode != 0
    assert "message too long, mtu=1000" in res.stdout + res.stderr  # ping's own account of EMSGSIZE
    rec, corr = finish("mtu", res, tmp_path / "t.jsonl")
    assert not any("length 1408" in line or "length 1400" in line for line in tcpdump_text(tmp_path / "vb.pcap"))
    j = next(j for j in corr.journeys if verdict(j, corr).rule == "send.refused")
    v = verdict(j, corr)
    size = int(re.search(r"ping -s (\d+)", v.advice).group(1))
    assert size == 972  # 1000 - 20 (IP) - 8 (ICMP)
    ok = pair.run(pair.a, "ping", "-c", "1", "-s", str(size), "-M", "do", B_IP, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_ipv6_ping(pair, tmp_path):
    before = pair.nstat(pair.b, "Icmp6InNeighborSolicits"), pair.nstat(pair.b, "Icmp6InEchos")
    dump = tcpdump(pair, tmp_path / "vb.pcap")
    res = pair.vethtrace(tmp_path / "t.jsonl", "ping", "-c", "1", B_IP6)
    stop(dump)
    assert res.returncode == 0, res.stdout + res.stderr
    rec, corr = finish("ipv6-ping", res, tmp_path / "t.jsonl")
    assert pair.nstat(pair.b, "Icmp6InEchos") - before[1] == 1
    assert pair.nstat(pair.b, "Icmp6InNeighborSolicits") - before[0] >= 1
    text = tcpdump_text(tmp_path / "vb.pcap")
    for what in (f"who has {B_IP6}", f"tgt is {B_IP6}", "echo request", "echo reply"):
        assert any(what in line for line in text), (what, text)
    crossed = [s for _, s in device_crossings(rec.events).get("vb", [])]
    assert any(s.startswith(f"ICMPv6 neighbor solicitation who-has {B_IP6}") for s in crossed), crossed
    assert any(s.startswith(f"ICMPv6 echo request {A_IP6} > {B_IP6}") for s in crossed), crossed


def test_ping_of_an_ipv6_address_needs_no_flag(pair, tmp_path):
    """`vethtrace ping ADDR6` traces IPv6 by itself: without --ipv6 it said "no packets were
    traced".  The fresh interfaces' housekeeping (MLD reports, router solicitations) is not a
    block under ping's lines (tests/test_ping_view.py replays this trace for the folded line)."""
    before = pair.nstat(pair.b, "Icmp6InEchos")
    dump = tcpdump(pair, tmp_path / "vb.pcap")
    trace = tmp_path / "t.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", COLUMNS="200")
    res = subprocess.run(["ip", "netns", "exec", pair.a, sys.executable, "-m", "vethtrace", "ping", "--record",
                          str(trace), "-c", "2", "-i", "0.5", B_IP6],
                         capture_output=True, text=True, timeout=90, env=env, cwd=ROOT)
    stop(dump)
    assert res.returncode == 0 and "2 received" in res.stdout, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert pair.nstat(pair.b, "Icmp6InEchos") - before == 2
    requests = [line for line in tcpdump_text(tmp_path / "vb.pcap") if f"{A_IP6} > {B_IP6}: ICMP6, echo request" in line]
    assert len(requests) == 2, requests
    under_ping, summary = res.stdout.split("--- vethtrace:")
    assert under_ping.count(f"ICMPv6 echo request {A_IP6} > {B_IP6}") == 2, res.stdout
    assert under_ping.count("✓ delivered to ping") == 2, res.stdout
    assert "IPv6 housekeeping of a fresh interface" not in under_ping, res.stdout
    assert "2x  ICMPv6 echo request" in summary and " 0 lost" in summary, summary
    if os.environ.get("VETHTRACE_UPDATE_TRACES"):
        shutil.copy(trace, TRACES / "proto-ping6-housekeeping.jsonl")


def test_nd_no_owner(pair, tmp_path):
    """IPv6 ping to an address of the pair's subnet that no interface has: A solicits it,
    B frees each solicitation unanswered; ping reports "Address unreachable"."""
    before_a = pair.nstat(pair.a, "Icmp6OutNeighborSolicits")
    before_b = pair.nstat(pair.b, "Icmp6InNeighborSolicits")
    dump = tcpdump(pair, tmp_path / "vb.pcap")
    res = pair.vethtrace(tmp_path / "t.jsonl", "ping", "-c", "1", "-W", "5", UNOWNED6)
    stop(dump)
    assert res.returncode != 0 and "Destination unreachable: Address unreachable" in res.stdout, res.stdout
    rec, corr = finish("nd-no-owner", res, tmp_path / "t.jsonl")
    text = tcpdump_text(tmp_path / "vb.pcap")
    asked = [line for line in text if f"who has {UNOWNED6}" in line]
    assert asked and not any(f"tgt is {UNOWNED6}" in line for line in text), text  # NS, never an NA
    solicits = [j for j in corr.journeys if j.pkt is not None and j.pkt.is_neighbor_solicit
                and j.pkt.nd_target == UNOWNED6]
    assert len(solicits) == len(asked), (len(solicits), asked)  # each one tcpdump saw on vb, and no other
    assert pair.nstat(pair.a, "Icmp6OutNeighborSolicits") - before_a >= len(asked)
    # the kernel's account in B: its neighbour discovery never took one in (freed before it)
    assert pair.nstat(pair.b, "Icmp6InNeighborSolicits") - before_b == 0
    v = verdict(solicits[0], corr)
    assert pair.b in v.text, v.text
    # the advice, applied as printed: B then has the address, and the same ping is answered
    cmd = re.search(r"(ip netns exec \S+ ip -6 addr add \S+ dev [^\s;]+)", v.advice).group(1).split()
    assert cmd[3] == pair.b
    subprocess.run(cmd, check=True, capture_output=True)
    for _ in range(100):  # a ready signal, not a sleep: until duplicate address detection is done
        if not pair.run(pair.b, "ip", "-6", "addr", "show", "dev", "vb", "tentative").stdout.strip():
            break
        time.sleep(0.1)
    again = pair.run(pair.a, "ping", "-c", "1", "-W", "5", UNOWNED6, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
