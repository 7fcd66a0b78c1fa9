"""pcap-filter expressions evaluated in the kernel, live: `vethtrace record EXPR -- COMMAND`
in the article's lab, with tcpdump on the same devices as the witness of what crossed them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import pcap
from conftest import ROOT, needs_root
from vethtrace.tracer import lab, recording
from vethtrace.tracer.events import PACKET_KINDS
from vethtrace.tracer.packet import parse

pytestmark = [pytest.mark.live, needs_root]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
PING = ["ping", "-c", "2", "-W", "1", "-I", "veth0", "192.168.2.1"]

# Run inside the lab: connections from 192.168.2.11 to 192.168.2.1 on ports 81 and 82 (a
# listener answers each), then a connection attempt to port 83, where nobody listens (RST).
TCP_CLIENT = r"""
import socket
servers = []
for port in (81, 82):
    s = socket.socket(); s.bind(("192.168.2.1", port)); s.listen(); servers.append(s)
for s in servers:
    c = socket.create_connection(s.getsockname(), source_address=("192.168.2.11", 0))
    a, _ = s.accept(); c.sendall(b"hello"); assert a.recv(5) == b"hello"; a.close(); c.close()
try:
    socket.create_connection(("192.168.2.1", 83), source_address=("192.168.2.11", 0))
except ConnectionRefusedError:
    pass
"""
TCP = [sys.executable, "-I", "-c", TCP_CLIENT]


def tcpdump(ns: str, dev: str, path: Path, expression: str = "not ip6") -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", dev, "--immediate-mode", "-U", "-n", "-w",
                             str(path), expression], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert "listening on" in proc.stderr.readline()  # its socket is open: a ready signal
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def record(ns: str, out: Path, *words: str, command=PING) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "vethtrace", "record", "-o", str(out),
                        *words, "--", *command], capture_output=True, text=True, timeout=60, env=ENV, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r


def traced(ns: str, tmp_path: Path, words: list[str], command=PING, devices=("veth0",), witness="not ip6"):
    """Record `words -- command` with tcpdump running on `devices`: (events, {dev: frames})."""
    dumps = {}
    try:
        for dev in devices:
            dumps[dev] = tcpdump(ns, dev, tmp_path / f"{dev}.pcap", witness)
        record(ns, tmp_path / "out.jsonl", *words, command=command)
    finally:
        for proc in dumps.values():
            stop(proc)
    return recording.read(str(tmp_path / "out.jsonl")).events, {d: pcap.summaries(str(tmp_path / f"{d}.pcap"))
                                                                for d in devices}


def packets(events) -> list:
    return [e for e in events if e.kind in PACKET_KINDS]


def crossed(events, dev: str) -> Counter:
    """What vethtrace saw cross a device, as tcpdump there sees it: sent from dev (xmit)
    or arrived at it from its peer (netif_rx; on lo that is the same crossing)."""
    kinds = ("xmit",) if dev == "lo" else ("xmit", "netif_rx")
    return Counter(e.pkt.summary() for e in events if e.dev == dev and e.kind in kinds and e.pkt)


def test_icmp_records_no_arp(tmp_path):
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:  # fresh: its ARP cache is empty
        events, seen = traced(ns.name, tmp_path, ["icmp"])
    assert any(s.startswith("ARP") for s in seen["veth0"]), seen  # the ARP exchange did happen
    assert packets(events), "nothing recorded"
    assert not [e for e in events if e.pkt is not None and e.pkt.l3 == "ARP"]
    assert not [e for e in events if e.kind in ("neigh_create", "neigh_update")]  # ARP's bookkeeping too
    assert all(e.pkt is not None and e.pkt.ip_proto == 1 for e in packets(events)), \
        {e.pkt.summary() for e in packets(events) if e.pkt}
    icmp_seen = Counter(s for s in seen["veth0"] if s.startswith("ICMP"))
    assert crossed(events, "veth0") == icmp_seen and sum(icmp_seen.values()) == 2


def test_tcp_port_records_only_that_connection(tmp_path):
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
        events, seen = traced(ns.name, tmp_path, ["tcp", "port", "81"], command=TCP, devices=("lo",),
                              witness="tcp")
    ports = {(e.pkt.sport, e.pkt.dport) for e in packets(events) if e.pkt is not None}
    assert ports and all(81 in p for p in ports), ports
    frames = [parse(f, 0, True) for f in pcap.read(str(tmp_path / "lo.pcap"))]
    assert any(82 in (f.sport, f.dport) for f in frames)  # the other connections did cross lo
    want = Counter(f.summary() for f in frames if 81 in (f.sport, f.dport))
    assert want and crossed(events, "lo") == want, (crossed(events, "lo"), want)


def test_a_filter_matching_nothing_records_nothing(tmp_path):
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
        events, seen = traced(ns.name, tmp_path, ["tcp", "port", "81"])
    assert seen["veth0"], "the ping sent nothing"
    assert events == []


def test_answers_are_kept_with_the_packet_that_matched(tmp_path):
    """Only echo requests match; their replies are kept with them (the kernel's matched-flow
    rule), and tcpdump on lo saw as many replies as were recorded there."""
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
        events, seen = traced(ns.name, tmp_path, ["icmp[icmptype]", "==", "icmp-echo"], devices=("lo",),
                              witness="icmp")
    kinds = Counter(e.pkt.icmp_type for e in packets(events) if e.pkt is not None and e.kind == "xmit")
    assert kinds[8] == 2 and kinds[0] == 2, kinds
    assert crossed(events, "lo") == Counter(seen["lo"])


def test_a_refused_connection_keeps_its_reset(tmp_path):
    """The expression matches only the SYN to port 83; the RST that answers it is kept."""
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
        events, _ = traced(ns.name, tmp_path, ["tcp", "dst", "port", "83", "and", "tcp[tcpflags]", "&", "tcp-syn",
                                               "!=", "0"], command=TCP, devices=("lo",), witness="tcp port 83")
    flags = {(e.pkt.sport, e.pkt.dport) for e in packets(events) if e.pkt is not None}
    assert any(d == 83 for _, d in flags) and any(s == 83 for s, _ in flags), flags


LONG = " or ".join(f"host 10.0.{i}.1" for i in range(40)) + " or portrange 1000-2000 or icmp[icmptype] == icmp-echo"


@pytest.mark.parametrize("expression", ["arp", "ether host 00:11:22:33:44:55", "vlan and icmp", "ip6 and tcp",
                                        "len > 100", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", LONG],
                         ids=["arp", "ether", "vlan", "ip6", "len", "flags", "long"])
def test_the_kernel_accepts_the_spliced_probes(expression):
    """Every kind of expression passes the verifier once spliced into every probe (the
    link-layer ones take the virtual-header path at the network-header copies)."""
    from vethtrace.tracer.live import LiveSource, build_filters
    with LiveSource(build_filters(expression=expression), want_fentry=False) as src:
        assert "tp_xmit" in src.report.attached and "tp_fib" in src.report.attached
