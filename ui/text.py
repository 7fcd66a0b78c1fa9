"""Plain-text rendering of journeys, conversations and path summaries (for terminals and
pipes).  Consumes what tracer/ builds; never touches BPF."""
from __future__ import annotations

import os
import sys
from collections import Counter

from vethtrace.tracer.correlate import Conversation, Correlator, Journey
from vethtrace.tracer.packet import ICMP_NAMES, UNREACH_CODES
from vethtrace.tracer.verdict import ANSWERED, CONSUMED, DELIVERED, DROPPED, IN_FLIGHT, context_of, verdict

COLOURS = {DELIVERED: "32", ANSWERED: "32", CONSUMED: "33", DROPPED: "31", IN_FLIGHT: "36"}
MARKS = {DELIVERED: "✓", ANSWERED: "✓", CONSUMED: "■", DROPPED: "✗", IN_FLIGHT: "…"}


class Style:
    def __init__(self, colour: bool | None = None):
        if colour is None:
            colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def dim(self, text: str) -> str:
        return self.paint(text, "2")

    def outcome(self, outcome: str, text: str) -> str:
        return self.paint(f"{MARKS.get(outcome, '?')} {text}", COLOURS.get(outcome, "0"))


ROLE_LABEL = {"request": "request", "reply": "reply", "error": "error", "arp request": "ARP req",
              "arp reply": "ARP reply", "packet": "packet", "arp": "ARP"}


INCOMPLETE = "incomplete (events lost)"


def journey_lines(j: Journey, corr: Correlator, style: Style, indent: str = "    ") -> list[str]:
    v = verdict(j, corr)
    label = ROLE_LABEL.get(j.role, j.role)
    outcome = style.outcome(v.outcome, v.text)
    if corr.lost_events(j):  # what survived may miss hops or the end: no verdict is a success
        outcome = style.outcome(INCOMPLETE, f"incomplete: the kernel lost events meanwhile (ring buffer full); "
                                            f"from what was seen: {v.text}")
    lines = [f"{indent}{label:<9} {j.summary}",
             f"{indent}{'':<9} {j.path or _no_path(j)}",
             f"{indent}{'':<9} {outcome}"]
    for r in corr.routes_before(j) + j.routes:
        lines.append(f"{indent}{'':<9} {style.dim(route_text(r, corr, j))}")
    for e in j.icmp_errors:
        lines.append(f"{indent}{'':<9} {style.dim(f'the stack sent an ICMP error about it (type {e.arg >> 8} code {e.arg & 0xff})')}")
    if v.advice:
        lines.append(f"{indent}{'':<9} {style.paint('fix: ' + v.advice, '1')}")
    return lines


def _no_path(j: Journey) -> str:
    dev = next((e.dev for e in j.events if e.dev), "")
    return f"(never reached a device{'; it waited on ' + dev if dev else ''})"


def route_text(ev, corr: Correlator, j: Journey | None = None) -> str:
    """A route lookup in words, judged in the namespace that made it, saying whether it
    was an output lookup (a packet being sent) or an input one (a packet received)."""
    f = ev.fib
    ctx = context_of(corr, ev.netns)
    output = f["iif"] in (0, 1)
    lookup = f"{'output' if output else 'input'} lookup in {ctx.label}"
    if j is not None and j.pkt is not None and j.pkt.l3 == "ARP":
        owner = ctx.owner(f["dst"])
        if owner:
            verdict_ = f"local (on {owner}), so it may answer"
        elif ctx.known:
            verdict_ = f"not an address of {ctx.label}"
        else:
            verdict_ = f"dev {ev.dev} (no context recorded for {ctx.label})"
        return f"arp_process in {ctx.label} checked the route to {f['dst']}: {verdict_}"
    if ev.arg:
        return (f"route {f['src']} -> {f['dst']}: no route (error {ev.arg - (1 << 32) if ev.arg >= 1 << 31 else ev.arg}; "
                f"{lookup})")
    owner = ctx.owner(f["dst"])
    bound = ctx.name_of(f["oif"]) if output and f["oif"] not in (0, 1) else None
    how = " (ping -I)" if ev.comm == "ping" else " (SO_BINDTODEVICE)"
    if owner is None:
        text = f"route to {f['dst']}: dev {ev.dev}" + (f" (socket bound to {bound}{how})" if bound else "")
    elif bound:
        text = (f"route: {f['dst']} is local ({owner}), but the socket is bound to {bound}{how}, "
                f"so it leaves through {bound}")
    elif output:
        text = f"route: {f['dst']} is local ({owner}), so it goes through lo"
    else:
        text = f"route: {f['dst']} is local ({owner}), so it is delivered here"
    return f"{text} ({lookup})"


def fold_retries(journeys, key) -> list[tuple[Journey, int]]:
    """Consecutive journeys with equal key(journey) folded into (first, times)."""
    out: list[tuple[Journey, int]] = []
    previous = None
    for j in journeys:
        k = key(j)
        if out and k == previous:
            out[-1] = (out[-1][0], out[-1][1] + 1)
            continue
        out.append((j, 1))
        previous = k
    return out


def conversation_lines(conv: Conversation, corr: Correlator, style: Style, indent: str = "    ") -> list[str]:
    """Each journey of the conversation; identical retries (same packet, path and verdict)
    are printed once with a count."""
    blocks = {j.id: journey_lines(j, corr, style, indent) for j in conv.journeys}
    lines: list[str] = []
    for j, times in fold_retries(conv.journeys, lambda j: blocks[j.id]):
        block = blocks[j.id]
        if times > 1:
            block = [block[0] + f"  (x{times})", *block[1:]]
        lines.extend(block)
    return lines


def path_key(j: Journey, corr: Correlator) -> tuple[str, str, str]:
    v = verdict(j, corr)
    label = j.summary
    p = j.pkt
    if p is not None:
        if p.l3 == "ARP":
            label = "ARP request" if p.is_arp_request else "ARP reply"
        elif p.icmp_type is not None:
            name = ICMP_NAMES.get(p.icmp_type, f"type {p.icmp_type}")
            if p.icmp_type == 3:
                name = UNREACH_CODES.get(p.icmp_code, name)
            label = f"ICMP {name}"
    end = j.end
    how = v.outcome
    if corr.lost_events(j):
        return label, j.path or _no_path(j), INCOMPLETE
    if end is not None and not j.delivered:
        how += f" at {end.func}" + (f" ({end.reason})" if end.reason else "")
    elif j.delivered:
        how += f" to {j.delivered[-1].comm}"
    return label, j.path or _no_path(j), how


def summary_lines(corr: Correlator, style: Style, lost: int | None, journeys=None, counts=None) -> list[str]:
    """counts: path_key -> journeys, when the journeys are no longer all kept
    (tracer.retention)."""
    if counts is None:
        journeys = corr.journeys if journeys is None else journeys
        counts = Counter(path_key(j, corr) for j in journeys)
    packets = sum(counts.values())
    lines = [style.paint(f"--- vethtrace: {packets} packets, {len(counts)} distinct paths, "
                         f"{corr.events} events, {lost if lost is not None else 'unknown'} lost ---", "1")]
    if lost:
        lines.append(style.paint(f"WARNING: {lost} events were lost (ring buffer full); paths may be incomplete", "31;1"))
    width = max((len(k[0]) for k in counts), default=0)
    for (label, path, how), n in sorted(counts.items(), key=lambda kv: -kv[1]):
        outcome = how.split(" at ")[0].split(" to ")[0]
        lines.append(f"{n:>5}x  {label:<{width}}  {path}  {style.outcome(outcome, how)}")
    return lines


def event_lines(events, t0: int | None = None) -> list[str]:
    out = []
    for e in events:
        t0 = e.ts if t0 is None else t0
        out.append(f"{(e.ts - t0) / 1e6:10.3f} ms  cpu{e.cpu:<2} {e.describe()}")
    return out
