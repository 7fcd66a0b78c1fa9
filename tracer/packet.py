"""Parsing the packet bytes the probes copy into a short, typed summary.

The probes copy the first bytes of each packet (from the Ethernet header, or from the
network header when there is none); this module turns them into a `Packet`: ARP
op/sender/target, IPv4 addresses and protocol, ICMP type/code/id/seq (and, for ICMP
errors, the header of the packet being reported), TCP/UDP ports.
"""
from __future__ import annotations

import socket
import struct

ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17

ICMP_ECHOREPLY, ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_TIME_EXCEEDED = 0, 3, 8, 11
ICMP_NAMES = {0: "echo reply", 3: "unreachable", 5: "redirect", 8: "echo request", 11: "time exceeded"}
UNREACH_CODES = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable",
                 3: "port unreachable", 4: "fragmentation needed", 13: "administratively prohibited"}
L3_NAMES = {ETH_P_IP: "IPv4", ETH_P_ARP: "ARP", ETH_P_IPV6: "IPv6"}
IP_PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}

_ntoa = socket.inet_ntoa
_u16 = struct.Struct("!H").unpack_from
_arp = struct.Struct("!HHBBH6s4s6s4s").unpack_from
_ip = struct.Struct("!BBHHHBBH4s4s").unpack_from
_icmp = struct.Struct("!BBHHH").unpack_from
_ports = struct.Struct("!HH").unpack_from


def mac(b: bytes) -> str:
    return b.hex(":")


class Packet:
    """What one packet is, as far as its first bytes tell."""

    __slots__ = ("l3", "src", "dst", "ip_proto", "ip_id", "ttl", "arp_op", "sha", "tha",
                 "icmp_type", "icmp_code", "icmp_id", "icmp_seq", "sport", "dport", "inner", "_text", "_identity")

    def __init__(self, l3: str):
        self.l3 = l3
        self.src = self.dst = None
        self.ip_proto = self.ip_id = self.ttl = None
        self.arp_op = self.sha = self.tha = None
        self.icmp_type = self.icmp_code = self.icmp_id = self.icmp_seq = None
        self.sport = self.dport = None
        self.inner: Packet | None = None
        self._text: str | None = None
        self._identity: tuple | None | bool = False  # False: not worked out yet

    # -- what the correlator keys on ----------------------------------------------------
    @property
    def is_arp_request(self) -> bool:
        return self.arp_op == 1

    @property
    def is_arp_reply(self) -> bool:
        return self.arp_op == 2

    @property
    def is_echo(self) -> bool:
        return self.icmp_type in (ICMP_ECHO, ICMP_ECHOREPLY)

    @property
    def is_icmp_error(self) -> bool:
        return self.icmp_type in (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, 4, 5, 12)

    @property
    def identity(self) -> tuple | None:
        """What makes two skbs carry the same IPv4 packet (None if not IPv4): made once,
        the correlator asks for every new skb."""
        if self._identity is False:
            self._identity = None if self.l3 != "IPv4" or self.src is None else (
                self.src, self.dst, self.ip_proto, self.ip_id, self.icmp_type, self.icmp_id, self.icmp_seq,
                self.sport, self.dport)
        return self._identity

    def summary(self) -> str:
        """One line in tcpdump's spirit: `ARP who-has 192.168.2.1 tell 192.168.2.11`.
        Packets are shared by every event that carries the same packet (`cached`), so the
        line is made once: recording writes it for every event."""
        if self._text is None:
            self._text = self._describe()
        return self._text

    def _describe(self) -> str:
        if self.l3 == "ARP":
            if self.arp_op == 1:
                return f"ARP who-has {self.dst} tell {self.src}"
            if self.arp_op == 2:
                return f"ARP reply {self.src} is-at {self.sha}"
            return f"ARP op {self.arp_op} {self.src} > {self.dst}"
        if self.l3 != "IPv4" or self.src is None:
            return self.l3
        head = f"{self.src} > {self.dst}"
        if self.ip_proto == IPPROTO_ICMP and self.icmp_type is not None:
            if self.is_echo:
                return f"ICMP {ICMP_NAMES[self.icmp_type]} {head} id {self.icmp_id} seq {self.icmp_seq}"
            name = ICMP_NAMES.get(self.icmp_type, f"type {self.icmp_type}")
            if self.icmp_type == ICMP_DEST_UNREACH:
                name = UNREACH_CODES.get(self.icmp_code, f"unreachable code {self.icmp_code}")
            text = f"ICMP {name} {head}"
            if self.inner is not None:
                text += f" (about: {self.inner.summary()})"
            return text
        proto = IP_PROTO_NAMES.get(self.ip_proto, f"proto {self.ip_proto}")
        if self.sport is not None:
            return f"{proto} {self.src}:{self.sport} > {self.dst}:{self.dport}"
        return f"{proto} {head}"

    def to_json(self) -> dict:
        out = {"l3": self.l3}
        for name in self.__slots__[1:]:
            value = getattr(self, name)
            if value is None or name.startswith("_"):
                continue
            out[name] = value.to_json() if name == "inner" else value
        return out


def parse(data: bytes, protocol: int, l2: bool) -> Packet | None:
    """Parse copied bytes; `l2` says they start at an Ethernet header.  Only the first
    L3_PARSED bytes of the network header are looked at (`_network_part`), so that the same
    packet copied from its Ethernet header at one hop and from its IP header at another
    parses the same, and once (`cached`)."""
    part = _network_part(data, protocol, l2)
    return _parse_l3(part[1], 0, part[0]) if part is not None else None


# Network-header bytes parse() reads: an IPv4 header and its ICMP header, or an ICMP error
# with the IP and ICMP headers it quotes (56 bytes without IP options).  An Ethernet copy
# (96 bytes) holds 82 bytes of the network header and an IP copy of a ping 84, so both
# copies of a packet share their first 80 bytes, and their parse.
L3_PARSED = 80
_parsed: dict[tuple, Packet | None] = {}


def _network_part(data: bytes, protocol: int, l2: bool) -> tuple[int, bytes] | None:
    """(ethertype, the first L3_PARSED bytes of the network header), or None if there are none."""
    if not data:
        return None
    if l2:
        if len(data) < 14:
            return None
        return _u16(data, 12)[0], data[14:14 + L3_PARSED]
    return protocol, data[:L3_PARSED]


def cached(data: bytes, protocol: int, l2: bool) -> Packet | None:
    """`parse`, done once per packet: equal packets share one Packet object, whichever
    header they were copied from.  Bounded.  (The decoders also keep each copy's entry,
    so this is asked once per distinct copy.)"""
    key = _network_part(data, protocol, l2)
    if key is None:
        return None
    p = _parsed.get(key, _parsed)
    if p is _parsed:
        if len(_parsed) > 8192:
            _parsed.clear()
        p = _parsed[key] = _parse_l3(key[1], 0, key[0])
    return p


def clear_caches() -> None:
    """Forget every parsed packet (benchmarks start cold)."""
    _parsed.clear()


def _parse_l3(data: bytes, off: int, protocol: int, quoted: bool = False) -> Packet | None:
    n = len(data)
    if protocol == ETH_P_ARP:
        p = Packet("ARP")
        if n >= off + 28:
            _, _, _, _, op, sha, spa, tha, tpa = _arp(data, off)
            p.arp_op, p.sha, p.tha = op, mac(sha), mac(tha)
            p.src, p.dst = _ntoa(spa), _ntoa(tpa)
        return p
    if protocol == ETH_P_IP:
        p = Packet("IPv4")
        if n < off + 20:
            return p
        vihl, _, _, ip_id, _, ttl, proto, _, src, dst = _ip(data, off)
        p.src, p.dst, p.ip_proto, p.ip_id, p.ttl = _ntoa(src), _ntoa(dst), proto, ip_id, ttl
        l4 = off + (vihl & 0x0F) * 4
        if proto == IPPROTO_ICMP and n >= l4 + 8:
            t, code, _, ident, seq = _icmp(data, l4)
            p.icmp_type, p.icmp_code = t, code
            if t in (ICMP_ECHO, ICMP_ECHOREPLY):
                p.icmp_id, p.icmp_seq = ident, seq
            elif not quoted and t in (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, 4, 5, 12):
                p.inner = _parse_l3(data, l4 + 8, ETH_P_IP, quoted=True)
        elif proto in (IPPROTO_TCP, IPPROTO_UDP) and n >= l4 + 4:
            p.sport, p.dport = _ports(data, l4)
        return p
    return Packet(L3_NAMES.get(protocol, f"0x{protocol:04x}"))
