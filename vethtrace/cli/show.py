"""`vethtrace show`: a recording replayed as conversations, paths and verdicts (or JSON)."""
from __future__ import annotations

import sys

from ..tracer import recording
from ..tracer.correlate import Correlator, device_crossings
from ..tracer.retention import ConversationStream
from ..tracer.sources import collector_paused, replay
from ..ui.text import Style, conversation_lines, event_lines, path_key, summary_lines

NAME = "show"


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="replay a recording: conversations, paths and verdicts")
    p.add_argument("file", help="recording made by `vethtrace record` ('-' for stdin)")
    p.add_argument("--events", action="store_true", help="list the events too")
    p.add_argument("--devices", action="store_true", help="list what crossed each device, as tcpdump on it would show")
    p.add_argument("--json", action="store_true", help="print each event as a JSON object (for jq), with the ids of "
                   "its journey and conversation, instead of the text")


def run(args) -> int:
    if not (args.json or args.devices or args.events):
        return _show_streamed(args.file)
    rec, corr = replay(args.file)
    if args.json:
        return _show_json(rec, corr)
    style = Style()
    _print_header(rec.header, style)
    for conv in corr.conversations:
        _print_conversation(conv, corr, style)
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
    """Events as JSON objects in recorded order (the recording's rows, named), each with
    the journey and conversation `show` puts it in: null for route and neighbour events,
    and the conversation also for a journey whose packet could not be parsed."""
    placed = {}
    for j in corr.journeys:
        ids = (j.id, j.conversation.id if j.conversation is not None else None)
        for e in j.events:
            placed[id(e)] = ids
    out = sys.stdout.buffer
    for k in range(0, len(rec.events), 4096):
        lines = []
        for e in rec.events[k:k + 4096]:
            d = e.to_json()
            d["journey"], d["conversation"] = placed.get(id(e), (None, None))
            lines.append(recording.dumps(d))
        out.write(b"\n".join(lines) + b"\n")
    out.flush()
    return 0


def _print_header(head: dict, style: Style) -> None:
    print(style.dim(f"recording: {' '.join(head.get('command') or []) or 'no command'}; kernel {head.get('kernel', '?')}; "
                    f"probes {head.get('mechanism', '?')}"))


def _print_conversation(conv, corr: Correlator, style: Style) -> None:
    print(style.paint(f"[{conv.id}] {conv.title}", "1"))
    for text in conversation_lines(conv, corr, style):
        print(text)


def _show_streamed(path: str) -> int:
    """The text view of a recording of any length in bounded memory: each conversation
    printed (in order) once nothing more can join it, then forgotten; the summary counts
    every journey (tracer.retention)."""
    style = Style()
    reader = recording.Reader(path)
    corr = Correlator(reader.context)
    stream = ConversationStream(corr, lambda j: path_key(j, corr))
    _print_header(reader.header, style)
    with collector_paused():
        for chunk in reader.chunks():
            corr.feed(chunk)
            if chunk:
                for conv in stream.ready(chunk[-1].ts):
                    _print_conversation(conv, corr, style)
        for conv in stream.ready(None):
            _print_conversation(conv, corr, style)
    print()
    print("\n".join(summary_lines(corr, style, reader.lost, counts=stream.counts())))
    return 0
