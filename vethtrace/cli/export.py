"""`vethtrace export`: a recording as pcapng, for Wireshark and tshark."""
from __future__ import annotations

import argparse

import sys

from ..tracer import pcapng, safefile
from .common import replayed

NAME = "export"


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a recording for other tools")
    p.add_argument("file", help="recording")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-o", "--output", metavar="OUT.pcapng", help="pcapng for Wireshark/tshark: one interface per "
                   "(namespace, device), one record per hop, commented with hop and verdict")
    g.add_argument("--pcapng", dest="output", metavar="OUT", help=argparse.SUPPRESS)  # the old spelling of -o


def run(args) -> int:
    safefile.check(args.output, stdout_ok=True)
    rec, corr = replayed(args.file)
    n = pcapng.export(args.output, corr, rec.header.get("wall_offset_ns", 0))
    where = "standard output" if args.output == "-" else args.output
    print(f"wrote {n} packet records to {where}", file=sys.stderr)
    return 0
