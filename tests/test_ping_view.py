"""`vethtrace ping`'s view of an IPv6 ping (ui.ping.PingView), replayed from the trace that
tests/test_protocols_live.py::test_ping_of_an_ipv6_address_needs_no_flag recorded: the
fresh interfaces' housekeeping is one line saying how many packets, unless --verbose."""
from __future__ import annotations

from conftest import TRACES
from vethtrace.cli.ping import pings_ipv6
from vethtrace.tracer.sources import replay
from vethtrace.tracer.verdict import verdict
from vethtrace.ui.ping import TARGET_RE, PingView
from vethtrace.ui.text import Style

TRACE = TRACES / "proto-ping6-housekeeping.jsonl"
ICMP6_HOUSEKEEPING = {133, 135, 143}  # router solicitation, neighbour solicitation (DAD), MLDv2 report


def view_output(capsys, verbose: bool) -> str:
    _, corr = replay(str(TRACE))
    view = PingView(corr, Style(colour=False, width=None, verbose=verbose, group_fixes=True))
    view.line(b"PING fd07::2(fd07::2) 56 data bytes")
    view.line(b"64 bytes from fd07::2: icmp_seq=1 ttl=64 time=0.069 ms")
    view.line(b"64 bytes from fd07::2: icmp_seq=2 ttl=64 time=0.061 ms")
    view.line(b"--- fd07::2 ping statistics ---")
    return capsys.readouterr().out


def housekeeping():
    _, corr = replay(str(TRACE))
    return [j for j in corr.journeys if verdict(j, corr).rule == "ipv6.housekeeping"]


def test_the_trace_has_housekeeping_the_recorded_bytes_say_is_so():
    found = housekeeping()
    assert len(found) == 3
    # the witness: the ICMPv6 type in the bytes the probes copied, not the tool's verdict
    assert all(j.pkt.icmp_type in ICMP6_HOUSEKEEPING for j in found), [j.pkt.summary() for j in found]


def test_housekeeping_is_one_line_with_its_count(capsys):
    out = view_output(capsys, verbose=False)
    assert "IPv6 housekeeping of a fresh interface" not in out
    folded = [line for line in out.splitlines() if "IPv6 housekeeping of fresh interfaces" in line]
    assert len(folded) == 1 and f"{len(housekeeping())} packets not listed" in folded[0], out
    # the pings themselves are shown under their lines, answered
    assert out.count("✓ delivered to ping") == 2, out


def test_verbose_lists_each_housekeeping_packet(capsys):
    out = view_output(capsys, verbose=True)
    assert out.count("IPv6 housekeeping of a fresh interface") == len(housekeeping()), out
    assert "not listed; --verbose" not in out


def test_ipv6_ping_target_is_read_from_pings_first_line():
    assert TARGET_RE.match(b"PING fd07::2(fd07::2) 56 data bytes").group(1) == b"fd07::2"
    assert TARGET_RE.match(b"PING fd07::2(fd07::2) from fd07::1 va: 56 data bytes").group(1) == b"fd07::2"
    assert TARGET_RE.match(b"PING 192.168.2.1 (192.168.2.1) 56(84) bytes of data.").group(1) == b"192.168.2.1"


def test_an_ipv6_ping_is_traced_without_the_flag():
    assert pings_ipv6(["-c", "1", "fd07::2"]) and pings_ipv6(["-6", "-c", "1", "host.example"])
    assert pings_ipv6(["-c", "1", "fe80::1%va"])
    assert not pings_ipv6(["-c", "1", "-I", "veth0", "192.168.2.1"])
