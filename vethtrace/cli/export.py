"""`vethtrace export`: a recording as pcapng, for Wireshark and tshark."""
from __future__ import annotations

import sys

from ..tracer import pcapng, safefile
from .common import replayed

NAME = "export"


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a recording for other tools")
    p.add_argument("file", help="recording")
    p.add_argument("--pcapng", required=True, metavar="OUT", help="pcapng for Wireshark/tshark ('-': standard output): one interface per "
                   "(namespace, device), one record per hop, commented with hop and verdict")


def run(args) -> int:
    safefile.check(args.pcapng, stdout_ok=True)
    rec, corr = replayed(args.file)
    n = pcapng.export(args.pcapng, corr, rec.header.get("wall_offset_ns", 0))
    where = "standard output" if args.pcapng == "-" else args.pcapng
    print(f"wrote {n} packet records to {where}", file=sys.stderr)
    return 0
