"""Plain-text rendering of journeys, conversations and path summaries (for terminals and
pipes).  Consumes what tracer/ builds; never touches BPF."""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections import Counter

from vethtrace.tracer.correlate import Conversation, Correlator, Journey
from vethtrace.tracer.packet import tcp_flag_text
from vethtrace.tracer.verdict import (ANSWERED, CONSUMED, DELIVERED, DROPPED, IN_FLIGHT, INCOMPLETE, context_of,
                                      verdict)

COLOURS = {DELIVERED: "32", ANSWERED: "32", CONSUMED: "33", DROPPED: "31", IN_FLIGHT: "36", INCOMPLETE: "35;1"}
MARKS = {DELIVERED: "✓", ANSWERED: "✓", CONSUMED: "■", DROPPED: "✗", IN_FLIGHT: "…", INCOMPLETE: "?"}
# whitespace other than a space: wrap() splits words at it and drops it
_OTHER_SPACE = re.compile(r"[^\S ]")


def terminal_width() -> int | None:
    """Columns to wrap at: COLUMNS if set (also for a pipe: tests and `COLUMNS=100 ... | less`),
    else the terminal's width, else None (a pipe or file: lines are left whole for grep)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


class Style:
    """How text is written: colour, the width lines are wrapped to (None: never), whether the
    details (benign kernel notes, probe mechanism) are shown, and, when `group_fixes`, the
    fixes already printed (each `fix:` line once; the summary says how many packets it
    applies to).  With `wall_offset_ns` (Unix time minus the probes' monotonic clock; 0 when
    unknown) each packet starts with its time and each hop says how long after the previous
    one it came (`-t`)."""

    def __init__(self, colour: bool | None = None, width: int | None = None, verbose: bool = True,
                 group_fixes: bool = False, wall_offset_ns: int | None = None):
        if colour is None:
            colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        self.colour, self.width, self.verbose = colour, width, verbose
        self.fixes: Counter | None = Counter() if group_fixes else None
        self.wall_offset_ns = wall_offset_ns

    @classmethod
    def for_terminal(cls, verbose: bool = False, wall_offset_ns: int | None = None) -> "Style":
        """The style of the subcommands' text: wrapped, jargon under -v, one fix per group."""
        return cls(width=terminal_width(), verbose=verbose, group_fixes=True, wall_offset_ns=wall_offset_ns)

    def clock(self, ts: int) -> str:
        """A probe timestamp as tcpdump prints one: local time of day to the microsecond (the
        monotonic seconds when the recording has no wall-clock offset)."""
        if not self.wall_offset_ns:
            return f"{ts / 1e9:.6f}"
        wall = ts + self.wall_offset_ns
        return time.strftime("%H:%M:%S", time.localtime(wall // 1_000_000_000)) + f".{wall % 1_000_000_000 // 1000:06d}"

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def wrap(self, prefix: str, *segments: tuple[str, str | None], cont: str | None = None) -> list[str]:
        """prefix + the segments ((text, colour code or None), painted each), wrapped at word
        boundaries to self.width; continuation lines start with `cont` (default: as many
        spaces as prefix), so a block keeps its indentation."""
        line = self._one_line(prefix, segments)
        if line is not None:
            return [line]
        cont = " " * len(prefix) if cont is None else cont
        rows: list[list[tuple[str, str | None]]] = [[]]
        used, carried = len(prefix), ""
        for text, code in segments:
            for space, word in re.findall(r"( *)(\S+)", text):
                space, carried = carried + space, ""
                if self.width and rows[-1] and used + len(space) + len(word) > self.width:
                    rows.append([])
                    used, space = len(cont), ""
                rows[-1].append((space + word, code))
                used += len(space) + len(word)
            carried += text[len(text.rstrip(" ")):]  # spaces between segments go before the next word
        return [(prefix if i == 0 else cont) + self._paint_runs(row) for i, row in enumerate(rows)]

    def _one_line(self, prefix: str, segments) -> str | None:
        """wrap()'s answer when it is one line (no width, or the words fit), made segment by
        segment instead of word by word: most lines of a long replay fit.  None when the
        word-by-word path must decide: too long, or whitespace other than spaces (which
        that path drops)."""
        if len(segments) == 1:  # most lines: one segment, nothing to merge
            text, code = segments[0]
            if _OTHER_SPACE.search(text):
                return None
            body = text.rstrip(" ")
            if self.width and len(prefix) + len(body) > self.width:
                return None
            if not (self.colour and code and body):
                return prefix + body
            word = body.lstrip(" ")
            return prefix + body[:len(body) - len(word)] + self.paint(word, code)
        runs: list[list] = []  # [text, code]: consecutive segments of one colour merged, as _paint_runs does
        carried, used = "", len(prefix)
        for text, code in segments:
            if _OTHER_SPACE.search(text):
                return None
            body = text.rstrip(" ")
            if not body:  # no word: its spaces go before the next word
                carried += text
                continue
            piece = carried + body
            carried = text[len(body):]
            used += len(piece)
            if runs and runs[-1][1] == code:
                runs[-1][0] += piece
            else:
                runs.append([piece, code])
        if self.width and used > self.width:
            return None
        if not self.colour:
            return prefix + "".join(text for text, _ in runs)
        out = [prefix]
        for text, code in runs:
            if not code:
                out.append(text)
                continue
            word = text.lstrip(" ")
            out.append(text[:len(text) - len(word)] + self.paint(word, code))  # leading spaces unpainted
        return "".join(out)

    def _paint_runs(self, row: list[tuple[str, str | None]]) -> str:
        out, k = [], 0
        while k < len(row):
            code, text = row[k][1], ""
            while k < len(row) and row[k][1] == code:
                text += row[k][0]
                k += 1
            lead = text[:len(text) - len(text.lstrip(" "))]  # spaces before a painted run stay unpainted
            out.append(lead + (self.paint(text[len(lead):], code) if code else text[len(lead):]))
        return "".join(out)

    def dim(self, text: str) -> str:
        return self.paint(text, "2")

    def outcome(self, outcome: str, text: str) -> str:
        return self.paint(*self.outcome_segment(outcome, text))

    @staticmethod
    def outcome_segment(outcome: str, text: str) -> tuple[str, str]:
        return f"{MARKS.get(outcome, '?')} {text}", COLOURS.get(outcome, "0")


ROLE_LABEL = {"request": "request", "reply": "reply", "error": "error", "arp request": "ARP req",
              "arp reply": "ARP reply", "packet": "packet", "arp": "ARP", "nd solicit": "NS", "nd advert": "NA"}


def journey_lines(j: Journey, corr: Correlator, style: Style, indent: str = "    ", fix: bool = True,
                  times: int = 1) -> list[str]:
    """One journey: packet, path, verdict, route lookups, ICMP errors and (when `fix`) its fix."""
    v = verdict(j, corr)
    label = ROLE_LABEL.get(j.role, j.role)
    note = v.note or (v.guess.note if v.guess is not None else "")
    outcome = style.outcome_segment(v.outcome, f"{v.text} {note}" if note and style.verbose else v.text)
    pad = f"{indent}{'':<9} "
    timed = style.wall_offset_ns is not None
    summary = (f"{style.clock(j.start)} " if timed else "") + j.summary + (f"  (x{times})" if times > 1 else "")
    path = timed_path(j) if timed and j.hops else j.path or _no_path(j)
    lines = [*style.wrap(f"{indent}{label:<9} ", (summary, None), cont=pad),
             *style.wrap(pad, (path, None)),
             *style.wrap(pad, outcome)]
    for r in corr.routes_before(j) + j.routes:
        lines += style.wrap(pad, (route_text(r, corr, j), "2"))
    for e in j.icmp_errors:
        lines += style.wrap(pad, (f"the stack sent an ICMP error about it (type {e.arg >> 8} code {e.arg & 0xff})", "2"))
    if fix:
        lines += fix_lines(v.advice, style, pad)
    return lines


def fix_lines(advice: str | None, style: Style, pad: str, times: int = 1) -> list[str]:
    """The `fix:` line for `times` packets; with style.fixes, only the first time this fix is met."""
    if not advice:
        return []
    first = style.fixes is None or style.fixes[advice] == 0
    if style.fixes is not None:
        style.fixes[advice] += times
    return style.wrap(pad, ("fix: " + advice, "1")) if first else []


def timed_path(j: Journey) -> str:
    """j.path with, after each hop, the time since the one before: `veth0 (veth_xmit) > veth1
    +4.1µs > stack: icmp_rcv +12µs` (the per-hop latency of tcpdump's -ttt)."""
    parts, here, before = [], None, None
    several = len(j.namespaces) > 1
    for h in j.hops:
        name = h.name
        if several and h.netns and h.netns != here:  # as Journey.path: the namespace where it enters one
            here = h.netns
            name = f"{j.spaces.name(here)}: {name}"
        parts.append(name if before is None else f"{name} {fmt_delta(h.ts - before, sep='')}")
        before = h.ts
    return " > ".join(parts)


def fmt_delta(ns: int, sep: str = " ") -> str:
    """+4.1 µs, +120 µs, +1.25 ms, +3.02 s (sep "": +4.1µs, for one-line paths)."""
    if ns < 0:
        return f"-{fmt_delta(-ns, sep)[1:]}"
    if ns < 10_000:
        return f"+{ns / 1000:.1f}{sep}µs"
    if ns < 1_000_000:
        return f"+{ns / 1000:.0f}{sep}µs"
    if ns < 1_000_000_000:
        return f"+{ns / 1e6:.2f}{sep}ms"
    return f"+{ns / 1e9:.2f}{sep}s"


def _no_path(j: Journey) -> str:
    dev = next((e.dev for e in j.events if e.dev), "")
    return f"(never reached a device{'; it waited on ' + dev if dev else ''})"


_route_texts: dict[tuple, str] = {}


def route_text(ev, corr: Correlator, j: Journey | None = None) -> str:
    """A route lookup in words, judged in the namespace that made it, saying whether it
    was an output lookup (a packet being sent) or an input one (a packet received).
    Made once per lookup and state of the correlator: a flood repeats the same few."""
    f = ev.fib
    p = j.pkt if j is not None else None
    key = (corr.version, ev.netns, ev.dev, ev.comm, ev.arg, f["src"], f["dst"], f["iif"], f["oif"],
           p is not None and p.l3 == "ARP", p is not None and p.is_icmp_error)
    text = _route_texts.get(key)
    if text is None:
        if len(_route_texts) > 1024:
            _route_texts.clear()
        text = _route_texts[key] = _route_text(ev, corr, j)
    return text


def _route_text(ev, corr: Correlator, j: Journey | None) -> str:
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
    # an ICMP error's lookup names the device the packet it answers came in on: not a socket's binding
    made_by_stack = j is not None and j.pkt is not None and j.pkt.is_icmp_error
    bound = ctx.name_of(f["oif"]) if output and f["oif"] not in (0, 1) and not made_by_stack else None
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
    blocks = {j.id: journey_lines(j, corr, style, indent, fix=False) for j in conv.journeys}
    lines: list[str] = []
    for j, times in fold_retries(conv.journeys, lambda j: blocks[j.id]):
        lines += journey_lines(j, corr, style, indent, fix=False, times=times) if times > 1 else blocks[j.id]
        lines += fix_lines(verdict(j, corr).advice, style, f"{indent}{'':<9} ", times)
    return lines


def path_key(j: Journey, corr: Correlator) -> tuple[str, str, str, str]:
    """(packet label, path, how it ended, outcome) of one journey: the summary's rows count
    journeys by it, and colour each by its outcome."""
    v = verdict(j, corr)
    label = j.summary
    p = j.pkt
    if p is not None:
        if p.l3 == "ARP":
            label = "ARP request" if p.is_arp_request else "ARP reply"
        elif p.is_icmp:
            label = f"{'ICMPv6' if p.l3 == 'IPv6' else 'ICMP'} {p.icmp_name()}"
        elif p.is_tcp and p.tcp_flags is not None:
            label = f"TCP [{tcp_flag_text(p.tcp_flags)}]{' data' if p.payload else ''}"
        elif p.is_udp:
            label = "UDP"
    end = j.end
    how = v.outcome
    if v.label:  # the rule's own words
        how = v.label
    elif v.outcome == DELIVERED and j.delivered:
        how += f" to {j.delivered[-1].comm}"
    elif end is not None and j.role == "arp reply" and v.outcome == ANSWERED:
        how = f"processed by {end.func}"  # a reply is taken in (the neighbour entry updated), not answered
    elif end is not None:
        how += f" at {end.func}" + (f" ({end.reason})" if end.reason else "")
    return label, j.path or _no_path(j), how, v.outcome


def summary_lines(corr: Correlator, style: Style, lost: int | None, journeys=None, counts=None,
                  exact: bool = False) -> list[str]:
    """counts: path_key -> journeys, when the journeys are no longer all kept
    (tracer.retention); exact: they are the kernel's own counts (tracer.counters), so
    losses leave them whole."""
    if counts is None:
        journeys = corr.journeys if journeys is None else journeys
        counts = Counter(path_key(j, corr) for j in journeys)
    packets = sum(counts.values())
    if not packets:  # e.g. ping failed before sending: one line, not an empty block
        return [style.paint(f"vethtrace: no packets were traced ({corr.events} {_plural(corr.events, 'event')}, "
                            f"{lost if lost is not None else 'unknown'} lost)", "1")]
    lines = style.wrap("", (f"--- vethtrace: {packets} {_plural(packets, 'packet')}, {len(counts)} distinct "
                            f"{_plural(len(counts), 'path')}, {corr.events} {_plural(corr.events, 'event')}, "
                            f"{lost if lost is not None else 'unknown'} lost ---", "1"))
    if lost:
        then = ("the counts below are the kernel's own, exact; journeys listed above may be incomplete"
                if exact else "paths may be incomplete")
        lines += style.wrap("", (f"WARNING: {lost} {_plural(lost, 'event')} {'was' if lost == 1 else 'were'} lost "
                                 f"(ring buffer full); {then}", "31;1"))
    width = max((len(k[0]) for k in counts), default=0)
    for (label, path, how, outcome), n in sorted(counts.items(), key=lambda kv: -kv[1]):
        prefix = f"{n:>5}x  {label:<{width}}  "
        lines += style.wrap(prefix, (path + "  ", None), style.outcome_segment(outcome, how))
    for advice, n in (style.fixes or {}).items():
        if n > 1:  # printed once, under its first packet: here how far it reaches
            lines += style.wrap("", (f"fix (applies to {n} packets above): {advice}", "1"), cont="    ")
    return lines


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def event_lines(events, t0: int | None = None) -> list[str]:
    out = []
    for e in events:
        t0 = e.ts if t0 is None else t0
        out.append(f"{(e.ts - t0) / 1e6:10.3f} ms  cpu{e.cpu:<2} {e.describe()}")
    return out
