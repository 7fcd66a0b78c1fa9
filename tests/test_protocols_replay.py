"""The protocol cases of tests/test_protocols_live.py, replayed from the traces those live
runs recorded (tests/traces/proto-*.jsonl; see tests/protocols.py for how they were
made): rule ids, facts and conversation links, without root."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, TRACES
from protocols import CHECKS, CLOSED_PORT, UDP_PORT, correlate, tcp_journeys
from vethtrace.tracer import recording, rules
from vethtrace.tracer.correlate import ConvKind, Role
from vethtrace.tracer.packet import parse
from vethtrace.tracer.verdict import verdict


def load(name: str):
    return correlate(recording.read(str(TRACES / f"proto-{name}.jsonl")))


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_case_replayed(name):
    CHECKS[name](load(name))


def test_verdicts_name_the_namespace_they_happened_in():
    corr = load("tcp-closed")
    syn = next(j for j in tcp_journeys(corr, CLOSED_PORT) if j.pkt.tcp_flags == 0x02)
    v = verdict(syn, corr)
    where = corr.namespaces.name(syn.end.netns)
    assert where.startswith("vtp-b-")
    assert f"nothing listens on tcp/{CLOSED_PORT} in {where}" in v.text
    assert f"ip netns exec {where} ss -ltn" in v.advice
    corr = load("udp-closed")
    dgram = next(j for j in corr.journeys if j.pkt is not None and j.pkt.is_udp and j.pkt.dport == UDP_PORT)
    assert corr.namespaces.name(dgram.end.netns) in verdict(dgram, corr).text


def test_wording_of_one_case():
    """The words, tested once (every other test asserts rule ids and facts)."""
    corr = load("rp-filter")
    req = next(j for j in corr.journeys if j.pkt is not None and j.pkt.is_echo_request)
    v = verdict(req, corr)
    b = corr.namespaces.name(req.end.netns)
    assert v.text == (f"dropped: IP_RPFILTER at {req.end.func}: the reverse-path filter of vb in {b} refused "
                      f"10.9.0.1; rp_filter is 1 there, the larger of all=1 and vb=1 (strict: the route back must "
                      f"leave through the same device), and the route back to 10.9.0.1 does not qualify")
    assert v.advice == (f"make it loose: ip netns exec {b} sysctl -w net.ipv4.conf.vb.rp_filter=2 (setting vb to 0 "
                        f"does not help while all=1: the kernel uses the larger value); or route 10.9.0.1 back "
                        f"through vb")


def test_tcp_close_is_not_a_failure_nor_a_loss():
    corr = load("tcp-listen")
    ids = {verdict(j, corr).rule for j in corr.journeys}
    assert "tcp.sender-copy.closed" in ids or "tcp.freed-unreported" in ids, ids
    assert not any(verdict(j, corr).failure for j in corr.journeys if j.pkt is not None and j.pkt.is_tcp)


def test_every_rule_has_an_id_and_says_what_it_reads():
    seen = set()
    for r in rules.RULES + rules.LOSSES:
        assert r.id and r.id not in seen and r.reads
        seen.add(r.id)


def test_ipv6_housekeeping_folds_into_one_conversation_per_sender():
    corr = load("ipv6-ping")
    router = [c for c in corr.conversations if c.kind == ConvKind.ROUTER]
    keys = [c.key for c in router]
    assert len(keys) == len(set(keys))
    assert all(j.role == Role.PACKET for c in router for j in c.journeys)


def test_icmpv6_error_cut_short_parses_what_fits():
    """An ICMPv6 error copied from its Ethernet header keeps 34 bytes of the quoted IPv6
    header: its source, no destination or ports; nothing is made up."""
    import socket
    import struct
    src, dst = socket.inet_pton(socket.AF_INET6, "fd07::2"), socket.inet_pton(socket.AF_INET6, "fd07::1")
    quoted = struct.pack("!IHBB16s16s", 6 << 28, 8, 17, 64, dst, src) + struct.pack("!HHHH", 5000, 9999, 8, 0)
    icmp = struct.pack("!BBHI", 1, 4, 0, 0) + quoted
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, 64, src, dst) + icmp
    frame = b"\x00" * 12 + b"\x86\xdd" + ip6
    p = parse(frame[:96], 0, True)
    assert p.is_icmp_error and p.icmp_name() == "port unreachable"
    assert p.inner is not None and p.inner.src == "fd07::1" and p.inner.dst is None and p.inner.sport is None
    assert "None" not in p.summary()  # says what it has, not a placeholder for what it lacks
    whole = parse(ip6, 0x86DD, False)  # an IP copy (96 bytes parsed from L3_PARSED) holds more
    assert whole.inner.src == "fd07::1"


def test_show_replays_a_protocol_trace():
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "vethtrace", "show", str(TRACES / "proto-udp-closed.jsonl")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert f"nothing listens on udp/{UDP_PORT}" in res.stdout and "ECONNREFUSED" in res.stdout


def test_tcp_diagram_legend_lists_what_is_drawn():
    from vethtrace.ui import diagram
    corr = load("tcp-listen")
    conv = next(c for c in corr.conversations if c.kind == ConvKind.TCP)
    dot = diagram.build(conv.journeys, corr).source
    assert "TCP: client to server" in dot and "TCP: server to client" in dot
    assert "echo request" not in dot
    assert "where a packet stopped" not in dot  # no journey of it ended badly: no end mark, none in the legend
    corr = load("tcp-closed")
    conv = next(c for c in corr.conversations if c.kind == ConvKind.TCP)
    dot = diagram.build(conv.journeys, corr).source
    assert "where a packet stopped" in dot and "no listener on tcp/8081" in dot


def test_local_error_read_from_the_queued_error():
    """The probes append the sock_extended_err of an error the stack queued itself to the
    header they copy; only that shape (origin LOCAL after a 20- or 40-byte header) is read."""
    import errno
    import struct
    from vethtrace.tracer.packet import local_error
    ee = struct.pack("=IBBBBII", errno.EMSGSIZE, 1, 0, 0, 0, 1000, 0)
    assert local_error(bytes(20) + ee) == ("IPv4", errno.EMSGSIZE, 1000)
    assert local_error(bytes(40) + ee) == ("IPv6", errno.EMSGSIZE, 1000)
    assert local_error(bytes(20)) is None  # recorded before the probes appended it
    assert local_error(bytes(20) + struct.pack("=IBBBBII", errno.EMSGSIZE, 2, 3, 4, 0, 1000, 0)) is None  # ICMP


def test_a_refused_send_recorded_without_the_queued_error_falls_back_to_the_route():
    found = load("mtu")
    jid = next(j.id for j in found.journeys if verdict(j, found).rule == "send.refused")
    # cut in a fresh replay: a verdict, once made, holds until the correlator is fed again
    corr = load("mtu")
    j = next(j for j in corr.journeys if j.id == jid)
    for d in j.delivered:
        d.data = d.data[:20]  # as the probes copied it before copy_local_error
    v = verdict(j, corr)
    assert v.rule == "send.refused" and "whose MTU is 1000" in v.text and "ping -s 972" in v.advice


def test_an_icmp_errors_route_is_not_told_as_a_socket_binding():
    """B's stack looks up the route of the port unreachable it sends with the device the
    datagram came in on; no socket was bound there (the live test's client binds nothing),
    so the lookup is told as the stack's, not as SO_BINDTODEVICE."""
    from vethtrace.ui.text import Style, journey_lines
    corr = load("udp-closed")
    err = next(j for j in corr.journeys if j.pkt is not None and j.pkt.is_icmp_error)
    text = "\n".join(journey_lines(err, corr, Style(colour=False, width=200)))
    assert "route to " in text and "output lookup in" in text, text
    assert "bound" not in text and "SO_BINDTODEVICE" not in text, text
