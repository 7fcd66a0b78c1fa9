"""A row of the conversation list: what it says (time, packet, verdict, path, in full and
brief) and what the filter matches on (protocols, addresses, devices, text), computed
once per change of its conversation."""
from __future__ import annotations

from vethtrace.tracer.correlate import Conversation, Correlator
from vethtrace.tracer.verdict import DROPPED, INCOMPLETE, verdict
from vethtrace.ui.labels import (MAX_HOPS, MAX_JOURNEYS, conversation_brief, conversation_path, conversation_summary,
                                 conversation_verdict)


class Row:
    """One line of the conversation list, computed once per change of its conversation."""

    __slots__ = ("conv", "time", "summary", "brief", "path", "outcome", "label", "verdict", "failure",
                 "text", "protos", "addrs", "devs", "events", "version", "lost", "_match")

    def __init__(self, conv: Conversation):
        self.conv = conv
        self.version = 0
        self.events = 0
        self.lost = False
        self._match = None

    def update(self, corr: Correlator, t0: int) -> int:
        """Recompute from the conversation; returns the change in events covered.  Around
        events the kernel lost (corr.losses) the verdict is INCOMPLETE (rule events.lost)."""
        conv = self.conv
        self.time = max(0, conv.start - t0) / 1e9
        self.summary = conversation_summary(conv)
        self.brief = conversation_brief(conv)
        self.path = conversation_path(conv, corr)
        self.outcome, self.label, self.verdict = conversation_verdict(conv, corr)
        self.lost = self.outcome == INCOMPLETE
        # An incomplete verdict is not a drop anyone can trust.
        self.failure = not self.lost and (self.outcome == DROPPED or self.verdict.failure or any(
            verdict(j, corr).failure for j in conv.journeys[-3:] if j.role in ("arp request", "request")))
        protos, addrs, devs = set(), set(), set()
        events = 0
        for j in conv.journeys:
            events += len(j.events)
        for j in conv.journeys[-MAX_JOURNEYS:]:
            p = j.pkt
            for q in (p, p.inner if p is not None else None):
                if q is None:
                    continue
                if q.l3 == "ARP":
                    protos.add("arp")
                elif q.l3 == "IPv6":
                    protos.add("ipv6")
                elif q.l3 == "IPv4":
                    protos.add("ipv4")
                    protos.add({1: "icmp", 6: "tcp", 17: "udp"}.get(q.ip_proto, f"proto{q.ip_proto}"))
                addrs.update(a for a in (q.src, q.dst) if a)
            devs.update(h.dev for h in j.hops[:MAX_HOPS] if h.dev)
            devs.update(e.dev for e in j.events[:4] if e.dev)  # where a never-sent packet waited
            if j.end is not None and j.end.dev:
                devs.add(j.end.dev)
        if conv.kind == "echo":
            protos.update(("echo", "ping"))
        self.protos, self.addrs, self.devs = protos, addrs, devs
        self.text = " ".join((self.summary, self.path, self.label, self.verdict.text, conv.title)).lower()
        delta, self.events = events - self.events, events
        self.version += 1
        self._match = None
        return delta

    def matches(self, flt) -> bool:
        """flt.matches(row), cached per row version and filter."""
        if flt is None:
            return True
        key = (id(flt), self.version)
        if self._match is None or self._match[0] != key:
            self._match = (key, flt.matches(self))
        return self._match[1]

