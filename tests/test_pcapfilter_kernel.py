"""The translated filters, run by the running kernel, against libpcap's own verdicts.

Each expression is compiled by libpcap; tracer/cbpf.py translates it, the kernel verifies
and runs it (BPF_PROG_TEST_RUN, tests/kernel_filter.py) on packet bytes, and the verdict
must equal `pcap_offline_filter` on the same bytes.  Packets: every packet copy in the
recorded traces (ARP, ICMP, at L2 and L3) and synthetic TCP, UDP, IPv6, VLAN, fragments,
IP options and truncated copies.
"""
from __future__ import annotations

import struct

import pytest

from conftest import TRACES, needs_root
from vethtrace.tracer import pcapfilter, recording
from vethtrace.tracer.pcapfilter import fake_ethernet

pytestmark = [pytest.mark.live, needs_root]

EXPRESSIONS = [
    "icmp", "arp", "ip", "ip6", "tcp", "udp", "vlan", "not arp", "icmp or arp",
    "host 192.168.2.1", "src host 192.168.2.11", "dst host 192.168.2.1 and icmp", "net 192.168.2.0/24",
    "net 10.0.0.0/8", "port 81", "tcp port 81", "udp port 53", "tcp dst port 81", "portrange 80-90",
    "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[13] & 4 != 0",
    "icmp[icmptype] == icmp-echo", "icmp[icmptype] == icmp-echoreply", "icmp[icmptype] != icmp-echo and icmp",
    "len <= 60", "len > 90", "greater 80", "less 70", "ip[8] == 64", "ip[6:2] & 0x1fff != 0",
    "ether host 00:11:22:33:44:55", "ether src 00:11:22:33:44:55", "ether broadcast", "ether[0] & 1 != 0",
    "arp and host 192.168.2.1", "ip6 and tcp", "ip6 and src port 81", "ip proto 17",
    "(tcp or udp) and not port 22", "ip[2:2] > 60", "tcp[0:2] == 81 or tcp[2:2] == 81", "ip and ip[0] & 0xf > 5",
    "icmp and icmp[4:2] == 1", "udp and udp[8] == 0x45", "ether proto 0x0806", "ether[12:2] == 0x0800",
    "vlan and icmp", "tcp and tcp[20] == 0x47", "ip[0:4] & 0xff == 0", "len >= 98 and icmp",
]


def _eth(dst: bytes, src: bytes, ethertype: int) -> bytes:
    return dst + src + struct.pack("!H", ethertype)


def _ipv4(proto: int, src: str, dst: str, payload: bytes, ihl: int = 5, frag: int = 0) -> bytes:
    opts = b"\x01" * ((ihl - 5) * 4)
    total = ihl * 4 + len(payload)
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 7, frag, 64, proto, 0,
                       bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))) + opts + payload


def _tcp(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 512, 0, 0) + b"GET /"


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _ipv6(nh: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + b"\xfd" + b"\0" * 14 + b"\x01" + \
        b"\xfd" + b"\0" * 14 + b"\x02" + payload


MAC_A, MAC_B, BCAST = bytes.fromhex("001122334455"), bytes.fromhex("66778899aabb"), b"\xff" * 6


def synthetic() -> list[tuple[bytes, bool, int]]:
    """(bytes, l2, ethertype) copies of packets the recordings do not have."""
    l3 = [
        (_ipv4(6, "192.168.2.11", "192.168.2.1", _tcp(40000, 81, 0x02)), 0x0800),
        (_ipv4(6, "192.168.2.1", "192.168.2.11", _tcp(81, 40000, 0x12)), 0x0800),
        (_ipv4(6, "192.168.2.1", "192.168.2.11", _tcp(81, 40000, 0x14)), 0x0800),
        (_ipv4(6, "10.1.2.3", "192.168.2.1", _tcp(22, 85, 0x10), ihl=7), 0x0800),
        (_ipv4(17, "192.168.2.11", "192.168.2.1", _udp(5353, 53, b"\x45abc")), 0x0800),
        (_ipv4(17, "192.168.2.11", "192.168.2.1", _udp(1, 2, b"x"), frag=0x2001), 0x0800),
        (_ipv4(1, "192.168.2.11", "192.168.2.1", struct.pack("!BBHHH", 8, 0, 0, 9, 1) + b"\0" * 56), 0x0800),
        (_ipv6(6, _tcp(40000, 81, 0x02)), 0x86DD),
        (_ipv6(17, _udp(81, 53, b"q")), 0x86DD),
    ]
    out = []
    for pkt, et in l3:
        out.append((pkt, False, et))
        out.append((_eth(MAC_B, MAC_A, et) + pkt, True, et))
        out.append((_eth(MAC_A, MAC_B, et) + pkt[:9], True, et))        # truncated copies
        out.append((pkt[:21], False, et))
    vlan = _eth(BCAST, MAC_A, 0x8100) + struct.pack("!HH", 5, 0x0800) + l3[6][0]
    out += [(vlan, True, 0x8100), (vlan[:16], True, 0x8100), (b"", True, 0), (b"", False, 0x0800)]
    return out


def recorded() -> list[tuple[bytes, bool, int, int]]:
    seen, out = set(), []
    for path in sorted(TRACES.glob("*.jsonl")):
        for ev in recording.read(str(path)).events:
            key = (ev.data, ev.l2, ev.protocol)
            if ev.data and key not in seen:
                seen.add(key)
                out.append((ev.data, ev.l2, ev.protocol, ev.len))
    return out


def packets():
    return [(d, l2, et, max(len(d), n)) for d, l2, et, n in recorded()] + \
           [(d, l2, et, len(d) + 40) for d, l2, et in synthetic()]


@pytest.fixture(scope="module")
def kernel_filter():
    from kernel_filter import KernelFilter
    return KernelFilter


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_translated_filter_agrees_with_libpcap(expression, kernel_filter):
    flt = pcapfilter.compile_filter(expression)
    pkts = packets()
    assert len(pkts) > 40
    l2 = kernel_filter(flt.l2.insns)
    l3 = kernel_filter(flt.l3.insns) if flt.l3 is not None else None
    virtual = kernel_filter(flt.l2.insns, virtual_eth=True)  # L3 copies DLT_RAW cannot judge
    try:
        kept = 0
        for data, is_l2, et, wirelen in pkts:
            data = data[:96]
            if is_l2:
                want, got = flt.l2.matches(data, wirelen), l2.run(data, wirelen)
            elif l3 is not None and et in (0x0800, 0x86DD):
                want, got = flt.l3.matches(data, wirelen), l3.run(data, wirelen)
            else:
                want = flt.l2.matches(fake_ethernet(et) + data, wirelen + 14)
                got = virtual.run(data, wirelen, et)
            assert bool(got) == want, (expression, is_l2, data.hex(), got)
            assert flt.matches(data, is_l2, et, wirelen) == want
            kept += want
    finally:
        for k in (l2, l3, virtual):
            if k is not None:
                k.close()


def test_the_witness_can_tell_apart(kernel_filter):
    """Not every verdict is the same: the comparison above would catch a filter that keeps
    or rejects everything."""
    flt = pcapfilter.compile_filter("icmp[icmptype] == icmp-echo")
    k = kernel_filter(flt.l2.insns)
    try:
        verdicts = {bool(k.run(d[:96], n)) for d, l2, et, n in packets() if l2}
    finally:
        k.close()
    assert verdicts == {True, False}
