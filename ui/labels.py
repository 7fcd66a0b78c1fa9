"""What the live TUI draws: one row per conversation (packet, short path, verdict), the
detail of a conversation (each hop with device, namespace, kernel function and timing,
plus the correlator's notes), and its path as boxes and arrows.

The renderers are plain functions of a Conversation and its Correlator, so tests can
call them directly; the widgets only place them on the screen.  Like ui/text.py this
module consumes what tracer/ builds and never touches BPF.
"""
from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.padding import Padding
from rich.style import Style as RichStyle
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from vethtrace.tracer.correlate import Conversation, Correlator, Hop, Journey
from vethtrace.tracer.events import nud_name
from vethtrace.tracer.verdict import (ANSWERED, CONSUMED, DELIVERED, DROPPED, IN_FLIGHT, PARKED, UNANSWERED, Verdict,
                            conversation_outcome, verdict)
from vethtrace.ui.text import MARKS, ROLE_LABEL, Style, fold_retries, journey_lines, path_key, route_text

LOST = "lost"  # a row whose journeys never ended while the kernel was losing events
MARK = dict(MARKS, **{LOST: "?"})
LOST_GRACE_NS = 1_000_000_000  # unfinished this long before the newest event, with events lost: incomplete
NEIGH_WINDOW_NS = 1_000_000_000  # neighbour changes this close to a journey belong to it
MAX_JOURNEYS = 200    # journeys of one conversation considered for rows and panes
MAX_HOPS = 40         # hops drawn per journey (a journey that lost its end can absorb later packets)
MAX_BOXES = 12        # boxes per column in the path pane
MAX_PATH = 240        # characters of a row's path
_PLAIN = Style(colour=False)

# Default colours when no widget supplies its own (tests, `rich` printing).
OUTCOME_STYLES = {DELIVERED: "green", ANSWERED: "green", CONSUMED: "yellow", DROPPED: "bold red",
                  IN_FLIGHT: "cyan", LOST: "bold magenta"}


# -- words for one hop / journey / conversation ---------------------------------------------
def hop_parts(h: Hop) -> tuple[str, str, str]:
    """(place, device, kernel function) of a hop: `veth0 (veth_xmit)` is the device veth0
    in veth_xmit; `stack: icmp_rcv` is the stack's handler; `socket (ping)` the socket
    (the "function" is then the program)."""
    kind, name = h.place
    if kind == "stack":
        return "stack", h.dev, name
    if kind == "socket":
        return "socket", "", name
    fn = h.name[:-1].split(" (", 1)[1] if h.name.endswith(")") and " (" in h.name else \
        ("netif_rx" if h.kind == "netif_rx" else h.kind)
    return name, h.dev or name, fn


def hop_short(h: Hop) -> str:
    """veth0 (veth_xmit) -> veth0; stack: icmp_rcv -> icmp_rcv; socket (ping) -> socket."""
    place, _, fn = hop_parts(h)
    return fn if place == "stack" else place


def journey_short_path(j: Journey) -> str:
    if not j.hops:
        return "(never sent)"
    if len(j.hops) > MAX_HOPS:
        return " > ".join(hop_short(h) for h in j.hops[:MAX_HOPS]) + f" > … ({len(j.hops) - MAX_HOPS} more)"
    return " > ".join(hop_short(h) for h in j.hops)


def _retry_key(j: Journey) -> tuple:
    """Cheap stand-in for "printed the same" (the list recomputes this often)."""
    e = j.end
    return (j.role, j.summary, j.path, e.func if e is not None else None, e.reason if e is not None else None,
            bool(j.delivered), bool(j.live), len(j.icmp_errors))


def journey_groups(conv: Conversation, corr: Correlator, exact: bool = False) -> list[tuple[Journey, int]]:
    """The conversation's journeys with identical retries folded: [(journey, times)].
    exact: two journeys are the same retry when ui.text would print them the same (the
    detail pane); otherwise when packet, path and end are the same (the list, cheaper).
    Only the last MAX_JOURNEYS journeys are looked at (an ARP exchange that is never
    answered gathers one per second for as long as the ping runs)."""
    key = (lambda j: journey_lines(j, corr, _PLAIN)) if exact else _retry_key
    return fold_retries(conv.journeys[-MAX_JOURNEYS:], key)


def conversation_summary(conv: Conversation) -> str:
    """`ICMP echo 192.168.2.11 > 192.168.2.1 id 7 seq 3`, `ARP who-has 192.168.2.1 tell ... (x3)`."""
    if not conv.journeys:
        return conv.kind
    if conv.kind == "echo":
        req = next((j for j in conv.journeys if j.role == "request"), None)
        p = req.pkt if req is not None else None
        if p is None:  # only the reply or an error was seen: describe the request it answers
            first = conv.journeys[0].pkt
            p = first.inner if first is not None and first.inner is not None else first
            if p is not None and p.icmp_type == 0:
                return f"ICMP echo {p.dst} > {p.src} id {p.icmp_id} seq {p.icmp_seq} (reply seen)"
        if p is not None:
            return f"ICMP echo {p.src} > {p.dst} id {p.icmp_id} seq {p.icmp_seq}"
    first = conv.journeys[0]
    text = first.summary
    if conv.kind == "arp":
        asked = len(conv.with_role("arp request"))
        if asked > 1:
            text += f" (x{asked})"
    return text


def conversation_path(conv: Conversation, corr: Correlator) -> str:
    """The short paths of the conversation's distinct journeys, request first:
    `veth0 > veth1 > icmp_rcv => lo > icmp_rcv > socket`."""
    seen: list[str] = []
    for j, _ in journey_groups(conv, corr):
        p = journey_short_path(j)
        if p not in seen:
            seen.append(p)
    text = " ⇒ ".join(seen)
    return text if len(text) <= MAX_PATH else text[:MAX_PATH - 1] + "…"


def journey_label(j: Journey, v: Verdict) -> str:
    """A short verdict for one journey: `✓ delivered to ping`, `✗ NEIGH_FAILED`."""
    mark = MARK.get(v.outcome, "?")
    end = j.end
    if v.outcome == DELIVERED:
        return f"{mark} delivered to {j.delivered[-1].comm}" if j.delivered else f"{mark} delivered"
    if v.outcome == ANSWERED:
        return f"{mark} answered"
    if v.outcome == DROPPED and end is not None:
        return f"{mark} dropped: {end.reason or 'NOT_SPECIFIED'}"
    if v.outcome == CONSUMED:
        if v.tag == UNANSWERED:
            return f"{mark} no reply"
        if v.tag == PARKED:
            return f"{mark} parked for ARP"
        return f"{mark} consumed by {end.func}" if end is not None else f"{mark} consumed"
    return f"{mark} in flight"


def conversation_verdict(conv: Conversation, corr: Correlator) -> tuple[str, str, Verdict]:
    """(outcome, short label, full verdict) for a conversation row."""
    v = conversation_outcome(conv, corr)
    outcome = v.outcome
    if outcome == DROPPED:
        dropped = next((j for j in conv.journeys if j.end is not None and j.end.kind == "kfree"
                        and not j.delivered and not j.live), None)
        if dropped is not None:
            return outcome, f"{MARK[DROPPED]} dropped: {dropped.end.reason or 'NOT_SPECIFIED'}", v
        err = next((j for j in conv.journeys if j.role == "error"), None)
        if err is not None:
            return outcome, f"{MARK[DROPPED]} {path_key(err, corr)[0]}", v
        return outcome, f"{MARK[DROPPED]} dropped", v
    if outcome == DELIVERED:
        rec = [j for j in conv.journeys if j.delivered]
        who = f" to {rec[-1].delivered[-1].comm}" if rec else ""
        what = "reply delivered" if conv.kind == "echo" else "delivered"
        return outcome, f"{MARK[DELIVERED]} {what}{who}", v
    if outcome == ANSWERED:
        return outcome, f"{MARK[ANSWERED]} answered", v
    last = conv.journeys[-1] if conv.journeys else None
    if outcome == CONSUMED and last is not None:
        for j in conv.journeys[-MAX_JOURNEYS:]:
            jv = verdict(j, corr)
            if jv.failure:
                return outcome, journey_label(j, jv), v
        return outcome, journey_label(last, verdict(last, corr)), v
    return outcome, f"{MARK[IN_FLIGHT]} in flight", v


def might_fail(conv: Conversation) -> bool:
    """Cheap test (no verdict): could this conversation be a drop or go unanswered?
    Used to keep failures visible when a flood is too fast to show everything."""
    answered = None
    for j in conv.journeys:
        if j.role == "error":
            return True
        e = j.end
        if e is None:
            continue
        if e.kind == "kfree" and not j.delivered:
            return True
        if j.role == "arp request":
            if answered is None:
                answered = any(k.role == "arp reply" for k in conv.journeys)
            if not answered:
                return True
    return False


class Row:
    """One line of the conversation list, computed once per change of its conversation."""

    __slots__ = ("conv", "time", "summary", "path", "outcome", "label", "verdict", "failure",
                 "text", "protos", "addrs", "devs", "events", "version", "lost", "_match")

    def __init__(self, conv: Conversation):
        self.conv = conv
        self.version = 0
        self.events = 0
        self.lost = False
        self._match = None

    def update(self, corr: Correlator, t0: int, lost_clock: int | None = None, lossy=()) -> int:
        """Recompute from the conversation; returns the change in events covered.
        lost_clock: when the kernel has lost events, the newest event's time; a
        conversation unfinished and quiet since well before it is marked incomplete.
        lossy: (from, to) times around which the kernel lost events; a conversation that
        overlaps one is marked "events lost": its hops or its end may be missing."""
        conv = self.conv
        self.time = max(0, conv.start - t0) / 1e9
        self.summary = conversation_summary(conv)
        self.path = conversation_path(conv, corr)
        self.outcome, self.label, self.verdict = conversation_verdict(conv, corr)
        self.failure = self.outcome == DROPPED or self.verdict.failure or any(
            verdict(j, corr).failure for j in conv.journeys[-3:] if j.role in ("arp request", "request"))
        quiet = max((j.last for j in conv.journeys), default=conv.start)
        self.lost = (lost_clock is not None and self.outcome == IN_FLIGHT
                     and lost_clock - quiet > LOST_GRACE_NS)
        if self.lost:
            self.outcome, self.label = LOST, f"{MARK[LOST]} incomplete (events lost)"
        elif lossy and _overlaps(conv.start, quiet, lossy):
            self.lost = True
            self.outcome, self.label = LOST, f"{MARK[LOST]} events lost ({self.label[2:]}?)"
            self.failure = False  # not a drop anyone can trust
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


def _overlaps(start: int, end: int, windows) -> bool:
    for a, b in reversed(windows):
        if b < start:
            return False
        if a <= end:
            return True
    return False


# -- time and places --------------------------------------------------------------------
def fmt_delta(ns: int) -> str:
    """+4.1 µs, +120 µs, +1.25 ms, +3.02 s."""
    if ns < 0:
        return f"-{fmt_delta(-ns)[1:]}"
    if ns < 10_000:
        return f"+{ns / 1000:.1f} µs"
    if ns < 1_000_000:
        return f"+{ns / 1000:.0f} µs"
    if ns < 1_000_000_000:
        return f"+{ns / 1e6:.2f} ms"
    return f"+{ns / 1e9:.2f} s"


def netns_label(netns: int, corr: Correlator) -> str:
    ctx = corr.context or {}
    if netns and netns == ctx.get("netns"):
        return ctx.get("name") or f"netns {netns}"
    return f"netns {netns}" if netns else "?"


def end_text(j: Journey) -> tuple[str, str]:
    """(function column, device) for the event that ended a journey."""
    e = j.end
    if e is None:
        return ("(no end seen yet)", "")
    if e.kind == "kfree":
        return (f"kfree_skb at {e.func} ({e.reason or 'NOT_SPECIFIED'})", e.dev)
    return (f"consume_skb at {e.func}", e.dev)


def neighbour_notes(j: Journey, corr: Correlator) -> list[str]:
    """ARP state changes for the address this journey needed (or asked about)."""
    p = j.pkt
    if p is None:
        return []
    if p.l3 == "ARP":
        addr = p.src if p.is_arp_reply else p.dst
    elif p.l3 == "IPv4":
        addr = p.dst
    else:
        return []
    last = j.end.ts if j.end is not None else j.last
    out = []
    for e in corr.neigh_changes(addr):
        if not (j.start - NEIGH_WINDOW_NS <= e.ts <= last + NEIGH_WINDOW_NS // 10):
            continue
        if p.is_arp_reply and e.ts < j.start:
            continue  # a reply only changes what comes after it
        gap = fmt_delta(abs(e.ts - j.start)).lstrip("+")
        when = f"{gap} before this packet" if e.ts < j.start else f"{gap} after it started"
        if e.kind == "neigh_create":
            out.append(f"ARP: neighbour entry for {addr} created on {e.dev} ({when})")
        else:
            out.append(f"ARP: neighbour {addr} on {e.dev}: {nud_name(e.arg2)} → {nud_name(e.arg)} ({when})")
    return out


# -- the detail pane ------------------------------------------------------------------------
def detail_renderable(row: Row, corr: Correlator, styles: dict | None = None):
    """Everything about one conversation: its verdict, then each distinct journey with a
    table of hops (device, kernel function, namespace, time since the previous hop) and
    the notes the correlator attached (routes, ARP state, ICMP errors, verdict, advice)."""
    styles = {**OUTCOME_STYLES, **(styles or {})}
    conv = row.conv
    parts: list = []
    head = Text()
    head.append(f"[{conv.id}] {row.summary}", "bold")
    head.append(f"   at {row.time:.3f} s", "dim")
    parts.append(head)
    outcome = Text(row.label, styles.get(row.outcome, ""))
    outcome.append(f"  {row.verdict.text}")
    parts.append(outcome)
    if row.lost:
        parts.append(Text("The kernel lost events around this conversation (its ring buffer was full): hops, "
                          "the reply or the end may be missing, so the verdict is a guess.", styles.get(LOST, "")))
    if len(conv.journeys) > MAX_JOURNEYS:
        parts.append(Text(f"({len(conv.journeys) - MAX_JOURNEYS:,} earlier packets of this conversation "
                          "are not shown)", "dim"))
    for j, times in journey_groups(conv, corr, exact=True):
        v = verdict(j, corr)
        label = ROLE_LABEL.get(j.role, j.role)
        title = Text()
        title.append(f"\n{label}", "bold underline")
        title.append(f"  {j.summary}")
        if times > 1:
            title.append(f"  (x{times}, identical)", "dim")
        parts.append(title)
        parts.append(_hop_table(j, corr))
        parts.append(_note(f"{MARK.get(v.outcome, '?')} {v.text}", styles.get(v.outcome, "")))
        notes = [route_text(r, corr, j) for r in corr.routes_before(j) + j.routes]
        notes += neighbour_notes(j, corr)
        notes += [f"the stack sent an ICMP error about it (type {e.arg >> 8} code {e.arg & 0xff})"
                  for e in j.icmp_errors]
        for n in notes:
            parts.append(_note(n, "dim"))
        if v.advice:
            parts.append(_note(f"fix: {v.advice}", "bold"))
    return Group(*parts)


def _note(text: str, style) -> Padding:
    """A note under a hop table, indented (also its wrapped lines)."""
    return Padding(Text(text, style), (0, 0, 0, 2))


def _hop_table(j: Journey, corr: Correlator) -> Table:
    t = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold dim",
              expand=False)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("device", no_wrap=True)
    t.add_column("kernel function", no_wrap=False)
    t.add_column("namespace", no_wrap=True, overflow="ellipsis", max_width=24)
    t.add_column("time", justify="right", no_wrap=True)
    prev = j.start
    if not j.hops:
        dev = next((e.dev for e in j.events if e.dev), "")
        queued = any(e.func == "__neigh_event_send" for e in j.events)
        what = "queued until ARP resolves; never transmitted" if queued else "never transmitted"
        t.add_row("", Text(dev or "?"), Text(what, "dim"), netns_label(j.netns, corr), "start")
    for n, h in enumerate(j.hops[:MAX_HOPS], 1):
        place, dev, fn = hop_parts(h)
        if place == "stack":
            dev_cell = Text("(stack)", "dim")
        elif place == "socket":
            dev_cell, fn = Text(f"(socket: {fn})", "dim"), "skb_copy_datagram_iovec"
        else:
            dev_cell = Text(dev)
        delta = "start" if n == 1 and h.ts == prev else fmt_delta(h.ts - prev)
        t.add_row(str(n), dev_cell, fn, netns_label(h.netns, corr), delta)
        prev = h.ts
    if len(j.hops) > MAX_HOPS:
        t.add_row("…", "", Text(f"{len(j.hops) - MAX_HOPS:,} more hops (events were lost, or the "
                                "journey absorbed later packets)", "dim"), "", "")
        prev = j.hops[-1].ts
    if j.end is not None:
        fn, dev = end_text(j)
        t.add_row("end", Text(dev, "dim"), fn, netns_label(j.end.netns, corr), fmt_delta(j.end.ts - prev))
    return t


# -- the path pane ------------------------------------------------------------------------
def _column(j: Journey, times: int, corr: Correlator, styles: dict) -> list[Text]:
    """One journey as a column of boxes joined by arrows, ending in its verdict."""
    v = verdict(j, corr)
    head = ROLE_LABEL.get(j.role, j.role) + (f" (x{times})" if times > 1 else "")
    boxes: list[tuple[str, str, str]] = []  # (place, function, style)
    deltas: list[str] = []
    prev = None
    for h in j.hops[:MAX_BOXES]:
        place, _, fn = hop_parts(h)
        boxes.append((place, fn,
                      styles.get("stack" if place == "stack" else "socket" if place == "socket" else "device", "")))
        deltas.append(fmt_delta(h.ts - prev) if prev is not None else "")
        prev = h.ts
    if not boxes:
        dev = next((e.dev for e in j.events if e.dev), "")
        boxes.append((dev or "?", "never sent", styles.get("waiting", "dim")))
        deltas.append("")
    if len(j.hops) > MAX_BOXES:
        boxes.append((f"… {len(j.hops) - MAX_BOXES} more", "", styles.get("waiting", "dim")))
        deltas.append("")
        prev = j.hops[-1].ts
    end = journey_label(j, v)
    if v.outcome == DROPPED and j.end is not None:
        end = f"{MARK[DROPPED]} {j.end.reason or 'dropped'}"
    inner = max(len(f"{p} {f}".strip()) for p, f, _ in boxes)
    width = max(inner + 4, len(end), len(head))
    lines = [Text(head, "bold underline")]
    mid = (inner + 4) // 2
    for n, ((place, fn, style), delta) in enumerate(zip(boxes, deltas)):
        if n:
            lines.append(Text(" " * mid + "▼ " + delta))
        lines.append(Text("╭" + "─" * (inner + 2) + "╮", style))
        box = Text("│ ", style)
        box.append(place, "bold")
        if fn:
            box.append(" " + fn, "dim")
        box.append(" " * (inner - len(f"{place} {fn}".strip())))
        box.append(" │", style)
        lines.append(box)
        lines.append(Text("╰" + "─" * (inner + 2) + "╯", style))
    if j.end is not None or v.outcome == DELIVERED:
        # How long until it was dropped or consumed (a delivered packet's end is when the
        # program read it: not part of the path).
        since = prev if prev is not None else j.start
        tail = fmt_delta(j.end.ts - since) if (j.end is not None and v.outcome != DELIVERED) else ""
        lines.append(Text(" " * mid + "▼ " + tail))
    lines.append(Text(end, styles.get(v.outcome, "")))
    for t in lines:
        t.pad_right(width - t.cell_len)
    return lines


def path_renderable(row: Row, corr: Correlator, width: int = 80, styles: dict | None = None) -> Text:
    """The conversation's distinct journeys side by side (request, reply, errors), each
    as boxes and arrows; columns that do not fit the width go to the next band."""
    styles = {**OUTCOME_STYLES, "device": "cyan", "stack": "blue", "socket": "green",
              "waiting": "dim", **(styles or {})}
    columns = [_column(j, n, corr, styles) for j, n in journey_groups(row.conv, corr)]
    gap = "   "
    bands: list[list[list[Text]]] = [[]]
    used = 0
    for col in columns:
        w = col[0].cell_len
        if bands[-1] and used + len(gap) + w > width:
            bands.append([])
            used = 0
        used += (len(gap) if bands[-1] else 0) + w
        bands[-1].append(col)
    out = Text(no_wrap=True, overflow="crop")
    for b, band in enumerate(bands):
        if b:
            out.append("\n")
        height = max(len(c) for c in band)
        for y in range(height):
            line = Text()
            for i, col in enumerate(band):
                if i:
                    line.append(gap)
                line.append_text(col[y] if y < len(col) else Text(" " * col[0].cell_len))
            line.rstrip()
            out.append_text(line)
            if y < height - 1 or b < len(bands) - 1:
                out.append("\n")
    return out


# -- the conversation list ----------------------------------------------------------------------
@dataclass
class Columns:
    """Column widths: time, packet, verdict, then the path, which takes the rest and is
    the one cut short (…) on narrow terminals."""

    time: int = 6
    summary: int = 46
    verdict: int = 25
    path: int = 30
    gap: int = 2

    @classmethod
    def fit(cls, width: int, time: int = 6, summary: int = 46, verdict: int = 25) -> "Columns":
        gap = 2
        verdict = max(7, min(verdict, 32))
        rest = max(20, width - time - verdict - 3 * gap)
        # The packet (with its seq) is cut last; the path gives way first, down to 16.
        summary = max(6, min(summary, rest - 16))
        return cls(time, summary, verdict, max(4, rest - summary), gap)

    @classmethod
    def for_rows(cls, width: int, rows: list["Row"]) -> "Columns":
        if not rows:
            return cls.fit(width)
        return cls.fit(width, time=max(6, len(f"{max(r.time for r in rows):.3f}")),
                       summary=max(len(r.summary) for r in rows), verdict=max(len(r.label) for r in rows))

    def cells(self, time: str, summary: str, verdict: str, path: str) -> list[tuple[str, int]]:
        return [(time, self.time), (summary, self.summary), (verdict, self.verdict), (path, self.path)]


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text.ljust(width)
    return text[:max(0, width - 1)] + "…"


def header_text(cols: Columns) -> Text:
    t = Text(no_wrap=True)
    for i, (text, w) in enumerate(cols.cells("secs".rjust(cols.time), "packet", "verdict",
                                              "path (request ⇒ reply)")):
        if i:
            t.append(" " * cols.gap)
        t.append(_fit(text, w))
    return t


class ListHeader(Widget):
    """Column titles over the list (the list tells it the widths)."""

    columns: Columns = Columns()

    def render(self) -> Text:
        return header_text(self.columns)


class ConversationList(ScrollView, can_focus=True):
    """A virtual list of Rows (only visible lines are rendered), so thousands of rows and
    a row set replaced ten times a second stay cheap."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]
    COMPONENT_CLASSES = {
        "conversation-list--cursor", "conversation-list--time", "conversation-list--path",
        "conversation-list--delivered", "conversation-list--answered", "conversation-list--consumed",
        "conversation-list--dropped", "conversation-list--in-flight", "conversation-list--lost",
    }

    class Highlighted(Message):
        """The row under the cursor changed (user: moved by a key or click)."""

        def __init__(self, row: Row | None, user: bool) -> None:
            super().__init__()
            self.row, self.user = row, user

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[Row] = []
        self.cursor = -1
        self.columns = Columns()
        self.header: ListHeader | None = None  # kept in step with the widths
        self._sent: tuple | None = None

    # -- content --------------------------------------------------------------------------
    @property
    def current(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def set_rows(self, rows: list[Row], *, follow: bool = False) -> None:
        """Replace the rows; the cursor stays on the same conversation when it is still
        there, goes to the newest row when following, else to the nearest older one."""
        keep = self.current
        self.rows = rows
        if follow and rows:
            self.cursor = len(rows) - 1
        elif keep is not None:
            self.cursor = self._index_near(keep)
        elif rows and self.cursor < 0:
            self.cursor = 0
        self.cursor = min(self.cursor, len(rows) - 1)
        self.virtual_size = Size(0, len(rows))
        self._fit_columns()
        if follow:
            self.scroll_end(animate=False, immediate=True)
        self._show_cursor()
        self.refresh()
        self._announce(user=False)

    def _index_near(self, row: Row) -> int:
        for i in range(len(self.rows) - 1, -1, -1):
            if self.rows[i] is row:
                return i
        cid = row.conv.id
        older = [i for i, r in enumerate(self.rows) if r.conv.id <= cid]
        return older[-1] if older else (0 if self.rows else -1)

    def _fit_columns(self) -> None:
        cols = Columns.for_rows(max(40, self.scrollable_content_region.width), self.rows)
        if cols != self.columns:
            self.columns = cols
            self.refresh()
            if self.header is not None:
                self.header.columns = cols
                self.header.refresh()

    def on_resize(self) -> None:
        self._fit_columns()

    def refresh_row(self, row: Row) -> None:
        self.refresh()
        if row is self.current:
            self._announce(user=False, force=True)

    def move_to(self, index: int, user: bool = True) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(index, len(self.rows) - 1))
        self._show_cursor()
        self.refresh()
        self._announce(user=user)

    def _show_cursor(self) -> None:
        if self.cursor >= 0:
            self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, immediate=True, x_axis=False)

    def _announce(self, user: bool, force: bool = False) -> None:
        row = self.current
        key = (id(row), row.version if row is not None else None)
        if force or user or key != self._sent:
            self._sent = key
            self.post_message(self.Highlighted(row, user))

    # -- keys and mouse --------------------------------------------------------------------
    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, step: int) -> None:
        self.move_to(self.cursor + step * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.rows) - 1)

    def on_click(self, event) -> None:
        y = event.y + int(self.scroll_offset.y)
        if 0 <= y < len(self.rows):
            self.move_to(y)

    # -- drawing ----------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = y + int(self.scroll_offset.y)
        if index >= len(self.rows) or width <= 0:
            return Strip.blank(width, base)
        row = self.rows[index]
        cols = self.columns
        outcome_class = "conversation-list--" + row.outcome.replace(" ", "-")
        styles = [self.get_component_rich_style("conversation-list--time", partial=True), RichStyle(),
                  self.get_component_rich_style(outcome_class, partial=True),
                  self.get_component_rich_style("conversation-list--path", partial=True)]
        text = Text(no_wrap=True, style=base)
        cells = cols.cells(f"{row.time:{cols.time}.3f}", row.summary, row.label, row.path)
        for i, ((value, w), style) in enumerate(zip(cells, styles)):
            if i:
                text.append(" " * cols.gap)
            text.append(_fit(value, w), style)
        if index == self.cursor:
            text.stylize(self.get_component_rich_style("conversation-list--cursor", partial=True))
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(0, width, base)
