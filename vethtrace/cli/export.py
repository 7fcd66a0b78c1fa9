"""`vethtrace export`: a recording as pcapng, for Wireshark and tshark."""
from __future__ import annotations

import argparse

import sys

from ..tracer import pcapng
from ..tracer.kernel import SetupError
from ..tracer.sources import replay

NAME = "export"


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a recording for other tools")
    p.add_argument("file", help="recording")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-o", "--output", metavar="OUT.pcapng", help="pcapng for Wireshark/tshark: one interface per "
                   "(namespace, device), one record per hop, commented with hop and verdict")
    g.add_argument("--pcapng", dest="output", metavar="OUT", help=argparse.SUPPRESS)  # the old spelling of -o


def run(args) -> int:
    rec, corr = replay(args.file)
    try:
        n = pcapng.export(args.output, corr, rec.header.get("wall_offset_ns", 0))
    except OSError as exc:
        raise SetupError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"wrote {n} packet records to {args.output}", file=sys.stderr)
    return 0
