"""`vethtrace show`: a recording replayed as conversations, paths and verdicts (or JSON)."""
from __future__ import annotations

import sys
from collections import Counter

from ..tracer import recording
from ..tracer.correlate import Correlator, namespace_crossings
from ..tracer.events import json_object
from ..tracer.retention import ConversationStream
from ..tracer.sources import collector_paused
from ..ui.exact import exact_paths, noting, summary_counts
from ..ui.text import Style, conversation_lines, event_lines, path_key, summary_lines
from .common import REPLAY_EXPRESSION_HELP, expression_arg, replay_filter, replayed

NAME = "show"


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="replay a recording: conversations, paths and verdicts")
    p.add_argument("file", help="recording made by `vethtrace record` ('-' for stdin)")
    expression_arg(p, REPLAY_EXPRESSION_HELP + "; conversation ids are those of the filtered view")
    p.add_argument("--events", action="store_true", help="list the events too")
    p.add_argument("-t", "--timestamps", action="store_true", help="the time of each packet, and after each hop "
                   "the time since the one before")
    p.add_argument("-v", "--verbose", action="store_true", help="also the details: probe mechanism, benign kernel notes")
    p.add_argument("--devices", action="store_true", help="list what crossed each device, as tcpdump on it would show")
    p.add_argument("--json", action="store_true", help="print each event as a JSON object (for jq), with the ids of "
                   "its journey and conversation, instead of the text")


def run(args) -> int:
    pcap = replay_filter(args)
    # With an expression the recording is read whole: which conversations are kept is only
    # known once each is complete, and their ids are those of the filtered view.
    if not (args.json or args.devices or args.events or pcap is not None):
        return _show_streamed(args.file, args.verbose, args.timestamps)
    rec, corr = replayed(args.file, pcap)
    if args.json:
        return _show_json(rec, corr)
    style = Style.for_terminal(args.verbose, rec.header.get("wall_offset_ns", 0) if args.timestamps else None)
    _print_header(rec.header, style)
    for conv in corr.conversations:
        _print_conversation(conv, corr, style)
    print()
    if pcap is None:  # the footer's counts are the whole recording's, not a filtered view's
        print("\n".join(_exact_summary(corr, style, rec.lost, rec.counts, corr.journeys)))
    else:
        print("\n".join(summary_lines(corr, style, rec.lost)))
    if args.devices:
        spaces = corr.namespaces
        placed = namespace_crossings(rec.events)
        several = len({netns for netns, _, _ in placed}) > 1  # then a device is NAMESPACE/DEVICE
        for (netns, _, dev), rows in placed.items():
            where = f"{spaces.name(netns)}/{dev}" if several else dev
            print(style.paint(f"{where}: {len(rows)} packets", "1"))
            for direction, text in rows:
                print(f"    {direction:<3} {text}")
    if args.events:
        print("\n".join(event_lines(rec.events)))
    return 0


def _exact_summary(corr, style: Style, lost, kc, journeys) -> list[str]:
    """summary_lines of a recording read whole, with its footer's kernel counts (ui.exact)."""
    if not lost or kc is None:
        return summary_lines(corr, style, lost)
    exact = exact_paths(corr)
    for j in journeys:
        exact.note(j)
    counts, exact_lines = summary_counts(kc, exact, Counter(path_key(j, corr) for j in journeys), lost)
    return summary_lines(corr, style, lost, counts=counts, exact=bool(exact_lines)) + exact_lines


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


def _print_header(head: dict, style: Style, out=print) -> None:
    probes = f"; probes {head.get('mechanism', '?')}" if style.verbose else ""
    for line in style.wrap("", (f"recording: {' '.join(head.get('command') or []) or 'no command'}; "
                                f"kernel {head.get('kernel', '?')}{probes}", "2"), cont="    "):
        out(line)


def _print_conversation(conv, corr: Correlator, style: Style, out=print) -> None:
    for line in style.wrap(f"[{conv.id}] ", (conv.title, "1"), cont="    "):
        out(line)
    for text in conversation_lines(conv, corr, style):
        out(text)


HELD_LINES = 20_000  # text held back before the first write: a damaged small file prints nothing but its error


def _show_streamed(path: str, verbose: bool = False, timestamps: bool = False) -> int:
    """The text view of a recording of any length in bounded memory: each conversation
    printed (in order) once nothing more can join it, then forgotten; the summary counts
    every journey (tracer.retention).  Text is written in blocks of HELD_LINES, so a
    recording found damaged in its first part prints only the error."""
    reader = recording.Reader(path)
    style = Style.for_terminal(verbose, reader.header.get("wall_offset_ns", 0) if timestamps else None)
    reader.peek_namespaces()  # namespaces first met while recording: named before they are printed
    corr = Correlator(reader.context, namespaces=reader.namespaces)
    corr.losses = reader.peek_losses()  # read ahead from the footer, to mark journeys as they are printed
    # rows for the footer's kernel counts, learnt only if the summary may use them
    exact = exact_paths(corr) if reader.may_use_counts() else None
    key = lambda j: path_key(j, corr)  # noqa: E731
    stream = ConversationStream(corr, noting(exact, key) if exact is not None else key)
    held: list[str] = []
    _print_header(reader.header, style, held.append)
    with collector_paused():
        for chunk in reader.chunks():
            corr.feed(chunk)
            if chunk:
                for conv in stream.ready(chunk[-1].ts):
                    _print_conversation(conv, corr, style, held.append)
            if len(held) >= HELD_LINES:
                print("\n".join(held))
                held.clear()
        if not corr.losses:
            corr.losses = reader.losses  # could not be read ahead (a pipe): marks what is still held
        for conv in stream.ready(None):
            _print_conversation(conv, corr, style, held.append)
    counts, exact_lines = (summary_counts(reader.counts, exact, stream.counts(), reader.lost) if exact is not None
                           else (stream.counts(), []))
    held += ["", *summary_lines(corr, style, reader.lost, counts=counts, exact=bool(exact_lines)), *exact_lines]
    print("\n".join(held))
    if reader.warning:
        print(f"vethtrace: warning: {reader.warning}", file=sys.stderr)
    return 0
