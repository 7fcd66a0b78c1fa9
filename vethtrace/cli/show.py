"""`vethtrace show`: a recording replayed as conversations, paths and verdicts (or JSON)."""
from __future__ import annotations

import sys

from ..tracer import recording
from ..tracer.correlate import device_crossings
from ..tracer.events import json_object
from ..ui.text import Style, conversation_lines, event_lines, summary_lines
from .common import replayed

NAME = "show"


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="replay a recording: conversations, paths and verdicts")
    p.add_argument("file", help="recording made by `vethtrace record` ('-' for stdin)")
    p.add_argument("--events", action="store_true", help="list the events too")
    p.add_argument("--devices", action="store_true", help="list what crossed each device, as tcpdump on it would show")
    p.add_argument("--json", action="store_true", help="print each event as a JSON object (for jq), with the ids of "
                   "its journey and conversation, instead of the text")


def run(args) -> int:
    rec, corr = replayed(args.file)
    if args.json:
        return _show_json(rec, corr)
    style = Style()
    head = rec.header
    print(style.dim(f"recording: {' '.join(head.get('command') or []) or 'no command'}; kernel {head.get('kernel', '?')}; "
                    f"probes {head.get('mechanism', '?')}"))
    for conv in corr.conversations:
        print(style.paint(f"[{conv.id}] {conv.title}", "1"))
        for text in conversation_lines(conv, corr, style):
            print(text)
    print()
    print("\n".join(summary_lines(corr, style, rec.lost)))
    if args.devices:
        for dev, rows in device_crossings(rec.events).items():
            print(style.paint(f"{dev}: {len(rows)} packets", "1"))
            for direction, text in rows:
                print(f"    {direction:<3} {text}")
    if args.events:
        print("\n".join(event_lines(rec.events)))
    return 0


def _show_json(rec, corr) -> int:
    """Events as JSON objects (events.json_object: the same objects `trace --json` prints) in
    recorded order, each with the journey and conversation `show` puts it in."""
    placed = {}
    for j in corr.journeys:
        ids = (j.id, j.conversation.id if j.conversation is not None else None)
        for e in j.events:
            placed[id(e)] = ids
    wall = rec.header.get("wall_offset_ns", 0)
    out = sys.stdout.buffer
    for k in range(0, len(rec.events), 4096):
        lines = [recording.dumps(json_object(e, *placed.get(id(e), (None, None)), wall))
                 for e in rec.events[k:k + 4096]]
        out.write(b"\n".join(lines) + b"\n")
    out.flush()
    return 0
