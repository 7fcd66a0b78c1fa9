"""`vethtrace export`: a recording as pcapng, for Wireshark and tshark."""
from __future__ import annotations

import sys

from ..tracer import pcapng
from ..tracer.kernel import SetupError
from ..tracer.sources import replay
from .common import REPLAY_EXPRESSION_HELP, expression_arg, replay_filter

NAME = "export"


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a recording for other tools")
    p.add_argument("file", help="recording")
    expression_arg(p, REPLAY_EXPRESSION_HELP)
    p.add_argument("--pcapng", required=True, metavar="OUT", help="pcapng for Wireshark/tshark: one interface per "
                   "(namespace, device), one record per hop, commented with hop and verdict")


def run(args) -> int:
    rec, corr = replay(args.file, replay_filter(args))
    try:
        n = pcapng.export(args.pcapng, corr, rec.header.get("wall_offset_ns", 0))
    except OSError as exc:
        raise SetupError(f"cannot write {args.pcapng}: {exc.strerror}") from None
    print(f"wrote {n} packet records to {args.pcapng}", file=sys.stderr)
    return 0
