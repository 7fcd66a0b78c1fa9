"""Parsing the packet bytes the probes copy into a short, typed summary.

The probes copy the first bytes of each packet (from the Ethernet header, or from the
network header when there is none); this module turns them into a `Packet`:
- ARP op/sender/target;
- IPv4 and IPv6 addresses, protocol (IPv6: the next header after hop-by-hop, routing and
  destination options), TTL / hop limit, total length;
- TCP ports, flags, seq/ack, payload length; UDP ports and payload length;
- ICMP and ICMPv6 type/code, echo id/seq, the MTU of "fragmentation needed" / "packet too
  big", neighbour discovery (NS/NA target, link-layer address option, router
  solicitations and advertisements), and for errors the header of the packet they quote
  (`inner`: its addresses, ports or echo id/seq).

What fits in a copy: an Ethernet copy holds 82 bytes of the network header (L3_PARSED
of them are read), an IP copy 96.  IPv4: an ICMP error with the IP header and 8 bytes
it quotes takes 56 bytes, a TCP header 40.  IPv6: an echo 48, an NS/NA with its option
72, a TCP header 60; an ICMPv6 error quotes a 40-byte IPv6 header after 48 bytes, so its
quoted destination and ports are cut off (110 bytes would be needed): `inner` then has
what fits (source, part of the rest is left None).
"""
from __future__ import annotations

import socket
import struct

ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58
IPV6_EXT_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options: skipped to the L4 header

ICMP_ECHOREPLY, ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_TIME_EXCEEDED = 0, 3, 8, 11
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})
ICMP_NAMES = {0: "echo reply", 3: "unreachable", 5: "redirect", 8: "echo request", 11: "time exceeded",
              12: "parameter problem"}
UNREACH_CODES = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable",
                 3: "port unreachable", 4: "fragmentation needed", 13: "administratively prohibited"}
ICMP_FRAG_NEEDED = 4  # code of ICMP_DEST_UNREACH

# ICMPv6 (RFC 4443, 4861)
ICMP6_DEST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED, ICMP6_PARAM_PROB = 1, 2, 3, 4
ICMP6_ECHO, ICMP6_ECHOREPLY = 128, 129
ND_ROUTER_SOLICIT, ND_ROUTER_ADVERT, ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT, ND_REDIRECT = 133, 134, 135, 136, 137
ICMP6_ERRORS = frozenset({1, 2, 3, 4})
ICMP6_NAMES = {1: "unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem",
               128: "echo request", 129: "echo reply", 130: "multicast listener query",
               131: "multicast listener report", 132: "multicast listener done", 133: "router solicitation",
               134: "router advertisement", 135: "neighbor solicitation", 136: "neighbor advertisement",
               137: "redirect", 143: "multicast listener report v2"}
UNREACH6_CODES = {0: "no route", 1: "administratively prohibited", 3: "address unreachable", 4: "port unreachable",
                  5: "source address failed policy", 6: "reject route"}

TCP_FLAGS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"), (0x40, "E"), (0x80, "W"))
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

L3_NAMES = {ETH_P_IP: "IPv4", ETH_P_ARP: "ARP", ETH_P_IPV6: "IPv6"}
IP_PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}

_ntoa = socket.inet_ntoa
_u16 = struct.Struct("!H").unpack_from
_u32 = struct.Struct("!I").unpack_from
_arp = struct.Struct("!HHBBH6s4s6s4s").unpack_from
_ip = struct.Struct("!BBHHHBBH4s4s").unpack_from
_ip6 = struct.Struct("!IHBB16s16s").unpack_from
_icmp = struct.Struct("!BBHHH").unpack_from
_ports = struct.Struct("!HH").unpack_from
_tcp = struct.Struct("!HHIIBB").unpack_from


def mac(b: bytes) -> str:
    return b.hex(":")


def _ntop6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def tcp_flag_text(flags: int) -> str:
    """tcpdump's letters: S, F, R, P, '.' for ACK (`S.` is a SYN-ACK)."""
    return "".join(c for bit, c in TCP_FLAGS if flags & bit) or "none"


class Packet:
    """What one packet is, as far as its first bytes tell."""

    __slots__ = ("l3", "src", "dst", "ip_proto", "ip_id", "ttl", "ip_len", "arp_op", "sha", "tha",
                 "icmp_type", "icmp_code", "icmp_id", "icmp_seq", "mtu", "nd_target", "lladdr",
                 "sport", "dport", "tcp_flags", "tcp_seq", "tcp_ack", "payload",
                 "inner", "_text", "_identity")

    def __init__(self, l3: str):
        self.l3 = l3
        self.src = self.dst = None
        self.ip_proto = self.ip_id = self.ttl = self.ip_len = None
        self.arp_op = self.sha = self.tha = None
        self.icmp_type = self.icmp_code = self.icmp_id = self.icmp_seq = None
        self.mtu = self.nd_target = self.lladdr = None
        self.sport = self.dport = None
        self.tcp_flags = self.tcp_seq = self.tcp_ack = self.payload = None
        self.inner: Packet | None = None
        self._text: str | None = None
        self._identity: tuple | None | bool = False  # False: not worked out yet

    # -- what the correlator keys on ----------------------------------------------------
    @property
    def is_ip(self) -> bool:
        return self.l3 in ("IPv4", "IPv6") and self.src is not None

    @property
    def is_icmp(self) -> bool:
        """ICMP for IPv4, ICMPv6 for IPv6."""
        return self.icmp_type is not None and self.ip_proto in (IPPROTO_ICMP, IPPROTO_ICMPV6)

    @property
    def is_arp_request(self) -> bool:
        return self.arp_op == 1

    @property
    def is_arp_reply(self) -> bool:
        return self.arp_op == 2

    @property
    def is_echo(self) -> bool:
        if self.ip_proto == IPPROTO_ICMPV6:
            return self.icmp_type in (ICMP6_ECHO, ICMP6_ECHOREPLY)
        return self.icmp_type in (ICMP_ECHO, ICMP_ECHOREPLY) and self.ip_proto == IPPROTO_ICMP

    @property
    def is_echo_request(self) -> bool:
        return self.icmp_type == (ICMP6_ECHO if self.ip_proto == IPPROTO_ICMPV6 else ICMP_ECHO) and self.is_echo

    @property
    def is_icmp_error(self) -> bool:
        if self.ip_proto == IPPROTO_ICMPV6:
            return self.icmp_type in ICMP6_ERRORS
        return self.ip_proto == IPPROTO_ICMP and self.icmp_type in ICMP_ERRORS

    @property
    def is_neighbor_solicit(self) -> bool:
        return self.ip_proto == IPPROTO_ICMPV6 and self.icmp_type == ND_NEIGHBOR_SOLICIT

    @property
    def is_neighbor_advert(self) -> bool:
        return self.ip_proto == IPPROTO_ICMPV6 and self.icmp_type == ND_NEIGHBOR_ADVERT

    @property
    def is_router_discovery(self) -> bool:
        """Router solicitations/advertisements and multicast listener reports: the
        housekeeping a fresh IPv6 interface sends by itself."""
        return self.ip_proto == IPPROTO_ICMPV6 and self.icmp_type in (130, 131, 132, 133, 134, 143)

    @property
    def is_tcp(self) -> bool:
        return self.ip_proto == IPPROTO_TCP and self.sport is not None

    @property
    def is_udp(self) -> bool:
        return self.ip_proto == IPPROTO_UDP and self.sport is not None

    def has_tcp_flag(self, bit: int) -> bool:
        return self.tcp_flags is not None and bool(self.tcp_flags & bit)

    @property
    def identity(self) -> tuple | None:
        """What makes two skbs carry the same IP packet (None if not IP): made once, the
        correlator asks for every new skb."""
        if self._identity is False:
            self._identity = None if not self.is_ip else (
                self.src, self.dst, self.ip_proto, self.ip_id, self.icmp_type, self.icmp_id, self.icmp_seq,
                self.sport, self.dport, self.tcp_seq, self.tcp_ack, self.tcp_flags, self.nd_target)
        return self._identity

    def summary(self) -> str:
        """One line in tcpdump's spirit: `ARP who-has 192.168.2.1 tell 192.168.2.11`.
        Packets are shared by every event that carries the same packet (`cached`), so the
        line is made once: recording writes it for every event."""
        if self._text is None:
            self._text = self._describe()
        return self._text

    def icmp_name(self) -> str:
        """`echo request`, `port unreachable`, `neighbor solicitation`, ..."""
        t, code = self.icmp_type, self.icmp_code
        if self.ip_proto == IPPROTO_ICMPV6:
            if t == ICMP6_DEST_UNREACH:
                return UNREACH6_CODES.get(code, f"unreachable code {code}")
            return ICMP6_NAMES.get(t, f"type {t}")
        if t == ICMP_DEST_UNREACH:
            return UNREACH_CODES.get(code, f"unreachable code {code}")
        return ICMP_NAMES.get(t, f"type {t}")

    def _describe(self) -> str:
        if self.l3 == "ARP":
            if self.arp_op == 1:
                return f"ARP who-has {self.dst} tell {self.src}"
            if self.arp_op == 2:
                return f"ARP reply {self.src} is-at {self.sha}"
            return f"ARP op {self.arp_op} {self.src} > {self.dst}"
        if not self.is_ip:
            return self.l3
        if self.dst is None:  # a quoted header cut short: only what fits is said
            return f"{self.l3} from {self.src or '?'}, the rest of its header not copied"
        head = f"{self.src} > {self.dst}"
        if self.is_icmp:
            proto = "ICMPv6" if self.ip_proto == IPPROTO_ICMPV6 else "ICMP"
            name = self.icmp_name()
            if self.is_echo:
                return f"{proto} {name} {head} id {self.icmp_id} seq {self.icmp_seq}"
            if self.is_neighbor_solicit and self.nd_target:
                return f"ICMPv6 neighbor solicitation who-has {self.nd_target} tell {self.src}"
            if self.is_neighbor_advert and self.nd_target:
                return f"ICMPv6 neighbor advertisement {self.nd_target} is-at {self.lladdr or '?'}"
            text = f"{proto} {name} {head}"
            if self.mtu:
                text += f" mtu {self.mtu}"
            if self.inner is not None:
                text += f" (about: {self.inner.summary()})"
            return text
        proto = IP_PROTO_NAMES.get(self.ip_proto, f"proto {self.ip_proto}")
        if self.sport is None:
            return f"{proto} {head}"
        a, b = (f"[{self.src}]", f"[{self.dst}]") if self.l3 == "IPv6" else (self.src, self.dst)
        text = f"{proto} {a}:{self.sport} > {b}:{self.dport}"
        if self.tcp_flags is not None:
            text += f" [{tcp_flag_text(self.tcp_flags)}] seq {self.tcp_seq}"
            if self.tcp_flags & TCP_ACK:
                text += f" ack {self.tcp_ack}"
        if self.payload is not None:
            text += f" len {self.payload}"
        return text

    def to_json(self) -> dict:
        out = {"l3": self.l3}
        for name in self.__slots__[1:]:
            value = getattr(self, name)
            if value is None or name.startswith("_"):
                continue
            out[name] = value.to_json() if name == "inner" else value
        return out


SO_EE_ORIGIN_LOCAL = 1
_EXTERR = struct.Struct("=IBBBBII")  # struct sock_extended_err, as the probes copy it (host order)
_LOCAL_ERROR_HEADERS = {20: "IPv4", 40: "IPv6"}  # what ip_local_error / ipv6_local_error put before it


def local_error(data: bytes) -> tuple[str, int, int] | None:
    """(family, errno, ee_info) of an error-queue message the stack made itself (a record of
    protocol 0 copied from the network header): the probes append its sock_extended_err
    (16 bytes) to the refused packet's header (copy_local_error).  ee_info is the MTU for
    EMSGSIZE.  None for any other data, and for recordings made before it was copied."""
    family = _LOCAL_ERROR_HEADERS.get(len(data) - _EXTERR.size)
    if family is None:
        return None
    errno, origin, _, _, _, info, _ = _EXTERR.unpack_from(data, len(data) - _EXTERR.size)
    if origin != SO_EE_ORIGIN_LOCAL or not 0 < errno < 4096:
        return None
    return family, errno, info


def parse(data: bytes, protocol: int, l2: bool) -> Packet | None:
    """Parse copied bytes; `l2` says they start at an Ethernet header.  Only the first
    L3_PARSED bytes of the network header are looked at (`_network_part`), so that the same
    packet copied from its Ethernet header at one hop and from its IP header at another
    parses the same, and once (`cached`)."""
    part = _network_part(data, protocol, l2)
    return _parse_l3(part[1], 0, part[0]) if part is not None else None


# Network-header bytes parse() reads: an IPv4 header and its ICMP header, or an ICMP error
# with the IP and ICMP headers it quotes (56 bytes without IP options), an IPv6 neighbour
# discovery message with its option (72).  An Ethernet copy (96 bytes) holds 82 bytes of
# the network header and an IP copy of a ping 84, so both copies of a packet share their
# first 80 bytes, and their parse.
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
        vihl, _, total, ip_id, _, ttl, proto, _, src, dst = _ip(data, off)
        p.src, p.dst, p.ip_proto, p.ip_id, p.ttl, p.ip_len = _ntoa(src), _ntoa(dst), proto, ip_id, ttl, total
        l4 = off + (vihl & 0x0F) * 4
        _parse_l4(p, data, l4, total - (l4 - off), quoted)
        return p
    if protocol == ETH_P_IPV6:
        p = Packet("IPv6")
        if n < off + 40:
            if n >= off + 24:  # a quoted header cut short: its source is there
                p.src = _ntop6(data[off + 8:off + 24])
            return p
        _, plen, nh, hlim, src, dst = _ip6(data, off)
        p.src, p.dst, p.ttl, p.ip_len = _ntop6(src), _ntop6(dst), hlim, plen + 40
        l4, left = off + 40, plen
        while nh in IPV6_EXT_HEADERS and n >= l4 + 2:
            nh, size = data[l4], (data[l4 + 1] + 1) * 8
            l4, left = l4 + size, left - size
        p.ip_proto = nh
        _parse_l4(p, data, l4, left, quoted)
        return p
    return Packet(L3_NAMES.get(protocol, f"0x{protocol:04x}"))


def _parse_l4(p: Packet, data: bytes, l4: int, length: int, quoted: bool) -> None:
    """The transport header at data[l4:], `length` bytes of L4 by the IP header."""
    n, proto = len(data), p.ip_proto
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) and n >= l4 + 8:
        t, code, _, ident, seq = _icmp(data, l4)
        p.icmp_type, p.icmp_code = t, code
        if p.is_echo:
            p.icmp_id, p.icmp_seq = ident, seq
        elif p.is_icmp_error:
            if proto == IPPROTO_ICMP and t == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
                p.mtu = seq  # next-hop MTU in the second half of the rest-of-header word
            elif proto == IPPROTO_ICMPV6 and t == ICMP6_PACKET_TOO_BIG:
                p.mtu = _u32(data, l4 + 4)[0]
            if not quoted:
                p.inner = _parse_l3(data, l4 + 8, ETH_P_IP if proto == IPPROTO_ICMP else ETH_P_IPV6, quoted=True)
        elif t in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT) and proto == IPPROTO_ICMPV6 and n >= l4 + 24:
            p.nd_target = _ntop6(data[l4 + 8:l4 + 24])
            # a source (NS) or target (NA) link-layer address option: type 1/2, 8 bytes
            if n >= l4 + 32 and data[l4 + 24] in (1, 2) and data[l4 + 25] == 1:
                p.lladdr = mac(data[l4 + 26:l4 + 32])
        return
    if proto == IPPROTO_UDP and n >= l4 + 4:
        p.sport, p.dport = _ports(data, l4)
        if n >= l4 + 6:
            p.payload = max(_u16(data, l4 + 4)[0] - 8, 0)
        return
    if proto == IPPROTO_TCP and n >= l4 + 4:
        p.sport, p.dport = _ports(data, l4)
        if n >= l4 + 8:
            p.tcp_seq = _u32(data, l4 + 4)[0]
        if n >= l4 + 14:  # a quoted header (8 bytes) stops before ack and flags
            _, _, _, ack, doff, flags = _tcp(data, l4)
            p.tcp_flags = flags
            p.tcp_ack = ack
            if not quoted:
                p.payload = max(length - (doff >> 4) * 4, 0)
