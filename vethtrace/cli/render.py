"""`vethtrace render`: a recording drawn as a diagram."""
from __future__ import annotations

import sys

from ..tracer.kernel import SetupError
from ..ui.exact import exact_journeys
from .common import REPLAY_EXPRESSION_HELP, check_diagram, draw, expression_arg, replay_filter, replayed

NAME = "render"


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="draw a recording as a diagram (.svg, .png, .pdf or .dot)",
                       description="Draw a recording: each conversation's hops numbered on their own (A1, A2, ... B1, ...), "
                                   "conversations that took the same steps drawn once with counts; --all adds every packet up. "
                                   "How to read it: docs/diagrams.md in the source tree.")
    p.add_argument("file", help="recording made by `vethtrace record` or `vethtrace ping --record`")
    expression_arg(p, REPLAY_EXPRESSION_HELP + "; conversation ids are those `show FILE EXPRESSION` lists")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="out.svg, out.png, out.pdf or out.dot ('-': SVG on standard output)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--conversation", type=int, metavar="ID", help="one conversation (IDs as `vethtrace show` lists them)")
    g.add_argument("--all", action="store_true", help="every packet, aggregated: counts on the edges (chosen anyway "
                   "when the numbered steps would not read: over 5000 packets, or more than 26 different sequences)")


def run(args) -> int:
    check_diagram(args.output)
    pcap = replay_filter(args)
    rec, corr = replayed(args.file, pcap)
    name = " ".join(rec.header.get("command") or []) or args.file
    if args.conversation is not None:
        conv = next((c for c in corr.conversations if c.id == args.conversation), None)
        if conv is None:
            raise SetupError(f"no conversation {args.conversation} in {args.file} "
                             f"(it has 1..{len(corr.conversations)}; `vethtrace show {args.file}` lists them)")
        draw(conv.journeys, corr, args.output, title=f"{conv.title}  ({name})", aggregate=False)
    else:
        # the footer's kernel counts, when events were lost (the whole recording's: not for a filtered view)
        exact = exact_journeys(rec.counts, corr.journeys, rec.lost) if pcap is None else None
        draw(corr.journeys, corr, args.output, title=name, aggregate=True if args.all else None, exact=exact)
    print(f"wrote {'standard output' if args.output == '-' else args.output}", file=sys.stderr)
    return 0
