"""The `vethtrace` command line: one module per subcommand (`add_parser` + `run`).

This package is the only one that imports both `vethtrace.tracer` and `vethtrace.ui`."""
from __future__ import annotations

import argparse
import gc
import sys

from ..tracer.kernel import SetupError
from ..tracer.lab import LabError
from ..tracer.recording import RecordingError
from ..tracer.safefile import OutputError
from . import demo, doctor, export, lab, ping, record, render, run, schema, show, trace, tui
from .common import self_name, split_command

SUBCOMMANDS = (ping, run, record, trace, show, lab, demo, render, export, schema, tui, doctor)
COMMANDS = {m.NAME: m.run for m in SUBCOMMANDS}

# Traces make millions of small long-lived objects; the default GC thresholds would rescan
# them all constantly (bench/run.py: replay 2x slower).  The correlator breaks its own
# reference cycles when it prunes, so rare collections are enough.  Replays of a recording
# pause the collector altogether (sources.collector_paused).
GC_THRESHOLDS = (500_000, 1000, 1000)
# Live commands keep a bounded window of journeys and forget the rest as they go, so what
# they let go must be collected: under the batch thresholds a young collection came every
# 500k allocations and whatever it promoted was almost never collected again once it died
# (a 20k-ping flood that outran the reader peaked at 190-210 MB; with these, 118-127 MB,
# for about 15% more CPU in the reader: bench/scale.py, peak RSS rows).
LIVE_GC_THRESHOLDS = (100_000, 10, 10)
LIVE_COMMANDS = frozenset({"ping", "run", "record", "trace"})


def epilog() -> str:
    me = self_name()
    return f"""\
examples:
  {me} demo                                   the article's experiment 2, in a private namespace
  {me} lab up two-ips-fixed                   build a lab namespace to play in
  ip netns exec vethtrace-two-ips-fixed {me} ping -c 2 -I veth0 192.168.2.1
  {me} record -o trace.jsonl -- ping -c 1 -I veth0 192.168.2.1
  {me} run -- curl -s http://192.168.2.1:8000/   any program, traced and explained
  {me} show trace.jsonl
  {me} doctor
"""


class Parser(argparse.ArgumentParser):
    """Usage errors in one line that names the subcommand and where to read more (exit 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


class _Version(argparse.Action):
    """--version, with the version looked up only when asked (vethtrace.__getattr__)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show program's version number and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from .. import __version__
        print(f"vethtrace {__version__}")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    ap = Parser(
        prog="vethtrace", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog(),
        description="Trace where packets go inside the Linux kernel (veth0 -> veth1 -> stack -> lo -> socket) "
                    "and why they stop there.")
    ap.add_argument("--version", action=_Version)
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    for m in SUBCOMMANDS:
        m.add_parser(sub)
    return ap


def _subparser(ap: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def main(argv: list[str] | None = None) -> int:
    gc.set_threshold(*GC_THRESHOLDS)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ping"]:
        argv = ping.split_argv(argv)
    command: list[str] = []
    if argv[:1] in (["tui"], ["record"], ["run"]):
        argv, command = split_command(argv)
    ap = parser()
    args, extra = ap.parse_known_args(argv)
    if extra:  # said by the subcommand's own parser, so the usage shown is that subcommand's
        _subparser(ap, args.cmd).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.cmd in ("tui", "record", "run"):
        args.command = command
    if args.cmd in LIVE_COMMANDS:
        gc.set_threshold(*LIVE_GC_THRESHOLDS)
    try:
        return COMMANDS[args.cmd](args)
    except (SetupError, RecordingError, LabError, OutputError) as exc:
        print(f"vethtrace: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
