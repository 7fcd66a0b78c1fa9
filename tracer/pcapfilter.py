"""pcap-filter expressions (tcpdump's language): compiled by the system libpcap, evaluated
in user space on recorded packet bytes, and handed as classic BPF to tracer/cbpf.py, which
translates it for the probes.

Each expression is compiled twice, because the probes copy packets from two places: at a
device from the Ethernet header (`DLT_EN10MB`), after the stack took the packet in from
the network header (`DLT_RAW`, IPv4 or IPv6 by the version nibble).  Some expressions only
mean something with a link layer (`arp`, `ether host ...`): their `DLT_RAW` compile fails,
and an L3 copy is then judged by the L2 program run on the copy behind a made-up Ethernet
header that carries only the ethertype (`PcapFilter.l3_via_l2`).  So is an L3 copy of
anything but IPv4 and IPv6 (an ARP packet at its free), which `DLT_RAW` cannot carry: `host X`
then matches its ARP copies at the free as it did at the device.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import struct
from dataclasses import dataclass

DLT_EN10MB = 1
DLT_RAW = 12            # Linux's value (LINKTYPE_RAW in files)
SNAPLEN = 262144        # what tcpdump uses; a matching program returns it
NETMASK_UNKNOWN = 0xFFFFFFFF
ETH_HLEN = 14
IP_ETHERTYPES = (0x0800, 0x86DD)  # what DLT_RAW can carry


class FilterError(ValueError):
    """An expression libpcap cannot compile; the message is libpcap's own, on one line."""


class BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(BpfInsn))]


class PktHdr(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long),
                ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


_lib = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
        try:
            handle = ctypes.CDLL(name)
        except OSError:
            raise FilterError("filter expressions need libpcap: apt-get install libpcap0.8") from None
        P = ctypes.c_void_p
        for fn, res, args in (
                ("pcap_open_dead", P, [ctypes.c_int, ctypes.c_int]),
                ("pcap_close", None, [P]),
                ("pcap_compile", ctypes.c_int, [P, ctypes.POINTER(BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                                ctypes.c_uint32]),
                ("pcap_geterr", ctypes.c_char_p, [P]),
                ("pcap_freecode", None, [ctypes.POINTER(BpfProgram)]),
                ("pcap_offline_filter", ctypes.c_int, [ctypes.POINTER(BpfProgram), ctypes.POINTER(PktHdr),
                                                       ctypes.c_char_p])):
            f = getattr(handle, fn)
            f.restype, f.argtypes = res, args
        _lib = handle
    return _lib


class Program:
    """One compiled classic BPF program (owned: freed with the object)."""

    def __init__(self, expression: str, linktype: int):
        self.linktype = linktype
        self._prog = BpfProgram()
        lp = lib()
        pcap = lp.pcap_open_dead(linktype, SNAPLEN)
        if not pcap:
            raise FilterError("libpcap could not start a compiler (pcap_open_dead failed)")
        try:
            if lp.pcap_compile(pcap, ctypes.byref(self._prog), expression.encode(), 1, NETMASK_UNKNOWN) < 0:
                msg = (lp.pcap_geterr(pcap) or b"cannot compile").decode(errors="replace")
                raise FilterError(" ".join(msg.split()))
        finally:
            lp.pcap_close(pcap)
        self.insns = [(i.code, i.jt, i.jf, i.k) for i in self._prog.bf_insns[:self._prog.bf_len]]

    def __del__(self):
        if _lib is not None and self._prog.bf_insns:
            _lib.pcap_freecode(ctypes.byref(self._prog))

    def matches(self, data: bytes, wirelen: int | None = None) -> bool:
        """libpcap's own verdict on these bytes (`wirelen` is what `len` tests)."""
        hdr = PktHdr(0, 0, len(data), max(wirelen if wirelen is not None else len(data), len(data)))
        return lib().pcap_offline_filter(ctypes.byref(self._prog), ctypes.byref(hdr), data) != 0


def fake_ethernet(ethertype: int) -> bytes:
    """The Ethernet header an L3 copy is given for an L2-only program: no addresses."""
    return b"\0" * 12 + struct.pack("!H", ethertype & 0xFFFF)


@dataclass
class PcapFilter:
    expression: str
    l2: Program
    l3: Program | None          # None: DLT_RAW cannot express it, see l3_via_l2

    @property
    def l3_via_l2(self) -> bool:
        return self.l3 is None

    def matches(self, data: bytes, l2: bool, protocol: int, wirelen: int | None = None) -> bool:
        """Whether a copied packet matches, judged as the probes judge it."""
        if l2:
            return self.l2.matches(data, wirelen)
        if self.l3 is not None and protocol in IP_ETHERTYPES:
            return self.l3.matches(data, wirelen)
        return self.l2.matches(fake_ethernet(protocol) + data, None if wirelen is None else wirelen + ETH_HLEN)

    def matches_event(self, ev) -> bool:
        """A recorded event's packet copy, judged as the probe that copied it judged it."""
        return bool(ev.data) and self.matches(ev.data, ev.l2, ev.protocol, wire_length(ev))


# Where a device has already pulled the Ethernet header off skb->data (the peer's receive
# side), skb->len no longer counts it, while the probes' `len` does.
_PULLED = frozenset({"netif_rx", "receive", "func"})


def wire_length(ev) -> int:
    """`len` as the probes measure it (the bytes from where the copy starts), recovered from
    a recorded event's skb->len: exact at a transmit and at L3 copies taken at the network
    header; at a receive, the Ethernet header the device pulled is added back."""
    extra = ETH_HLEN if ev.l2 and ev.kind in _PULLED and ev.where not in ("veth_xmit", "loopback_xmit") else 0
    return max(ev.len + extra, len(ev.data))


def compile_filter(expression: str | list[str] | None) -> PcapFilter | None:
    """The expression (words joined as tcpdump joins them), or None when there is none.
    Raises FilterError with libpcap's message for an expression it cannot compile."""
    if isinstance(expression, (list, tuple)):
        expression = " ".join(expression)
    if not expression or not expression.strip():
        return None
    expression = expression.strip()
    try:
        l2 = Program(expression, DLT_EN10MB)
    except FilterError as exc:
        raise FilterError(f"bad filter expression {expression!r}: {exc} (see `man pcap-filter`)") from None
    try:
        l3 = Program(expression, DLT_RAW)
    except FilterError:
        l3 = None
    return PcapFilter(expression, l2, l3)
