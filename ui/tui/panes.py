"""The detail and path panes as rich renderables: every hop of a conversation (device,
kernel function, namespace, time since the previous hop) with the correlator's notes,
and its journeys as columns of boxes and arrows.  Plain functions of a Row and its
Correlator, so tests can call them directly; the app only places them on the screen."""
from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from vethtrace.tracer.correlate import Correlator, Journey
from vethtrace.tracer.verdict import ANSWERED, CONSUMED, DELIVERED, DROPPED, IN_FLIGHT, INCOMPLETE, verdict
from vethtrace.ui.labels import (MARK, MAX_HOPS, MAX_JOURNEYS, end_text, hop_parts, journey_groups,
                                 journey_label, neighbour_notes, netns_label)
from vethtrace.ui.text import ROLE_LABEL, fmt_delta, route_text
from vethtrace.ui.tui.rows import Row

MAX_BOXES = 12        # boxes per column in the path pane
NARROW_DETAIL = 60    # a detail pane narrower than this leaves out the hop table's namespace column

# Default colours when no widget supplies its own (tests, `rich` printing).
OUTCOME_STYLES = {DELIVERED: "green", ANSWERED: "green", CONSUMED: "yellow", DROPPED: "bold red",
                  IN_FLIGHT: "cyan", INCOMPLETE: "bold magenta"}


def detail_renderable(row: Row, corr: Correlator, styles: dict | None = None, width: int | None = None):
    """Everything about one conversation: its verdict, then each distinct journey with a
    table of hops (device, kernel function, namespace, time since the previous hop) and
    the notes the correlator attached (routes, ARP state, ICMP errors, verdict, advice).
    Narrower than NARROW_DETAIL the namespace column is left out, so the times fit."""
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
                          "the reply or the end may be missing, so the verdict is a guess.", styles.get(INCOMPLETE, "")))
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
        parts.append(_hop_table(j, corr, namespaces=width is None or width >= NARROW_DETAIL))
        note = v.note or (v.guess.note if v.guess is not None else "")
        parts.append(_note(f"{MARK.get(v.outcome, '?')} {v.text}" + (f" {note}" if note else ""),
                           styles.get(v.outcome, "")))
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


def _hop_table(j: Journey, corr: Correlator, namespaces: bool = True) -> Table:
    t = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold dim",
              expand=False)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("device", no_wrap=True)
    t.add_column("kernel function", no_wrap=False, min_width=10)  # wraps, but is not squeezed away
    if namespaces:
        t.add_column("namespace", no_wrap=True, overflow="ellipsis", max_width=24)
    t.add_column("time", justify="right", no_wrap=True)

    def add_row(num, dev, fn, netns: int | None, delta) -> None:
        where = [netns_label(netns, corr) if netns is not None else ""] if namespaces else []
        # Rich reads a str cell as markup: names from a recording (where, dev) go in as Text
        t.add_row(*(Text(c) if isinstance(c, str) else c for c in (num, dev, fn, *where, delta)))

    prev = j.start
    if not j.hops:
        dev = next((e.dev for e in j.events if e.dev), "")
        queued = any(e.func == "__neigh_event_send" for e in j.events)
        what = "queued until ARP resolves; never transmitted" if queued else "never transmitted"
        add_row("", Text(dev or "?"), Text(what, "dim"), j.netns, "start")
    for n, h in enumerate(j.hops[:MAX_HOPS], 1):
        place, dev, fn = hop_parts(h)
        if place == "stack":
            dev_cell = Text("(stack)", "dim")
        elif place == "socket":
            dev_cell, fn = Text(f"(socket: {fn})", "dim"), "skb_copy_datagram_iovec"
        else:
            dev_cell = Text(dev)
        delta = "start" if n == 1 and h.ts == prev else fmt_delta(h.ts - prev)
        add_row(str(n), dev_cell, fn, h.netns, delta)
        prev = h.ts
    if len(j.hops) > MAX_HOPS:
        add_row("…", "", Text(f"{len(j.hops) - MAX_HOPS:,} more hops (events were lost, or the "
                                "journey absorbed later packets)", "dim"), None, "")
        prev = j.hops[-1].ts
    if j.end is not None:
        fn, dev = end_text(j)
        add_row("end", Text(dev, "dim"), fn, j.end.netns, fmt_delta(j.end.ts - prev))
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


