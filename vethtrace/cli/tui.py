"""`vethtrace tui`: the interactive view, live or on a recording."""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from ..tracer.kernel import SetupError
from ..tracer.live import build_filters, pcap_expression
from ..tracer.sources import LiveEvents, ReplaySource
from .common import EXPRESSION_HELP, filter_args, self_name

NAME = "tui"


def add_parser(sub) -> None:
    me = self_name()
    p = sub.add_parser("tui", usage="vethtrace tui [-h] [filters] [FILE | -- COMMAND ...]", help="interactive: watch packets flow (live, or a recording), select one to see its path",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Live: traces the network namespace it runs in, like the other commands "
                                   f"(ip netns exec NS {me} tui). With FILE: replays a recording.",
                       epilog=f"examples:\n  ip netns exec vethtrace-two-ips-fixed {me} tui\n"
                              f"  ip netns exec vethtrace-two-ips-fixed {me} tui -- ping -c 3 -I veth0 192.168.2.1\n"
                              f"  {me} tui trace.jsonl\n"
                              f"  {me} tui trace.jsonl icmp and host 192.168.2.1\n\n"
                              "-- COMMAND runs COMMAND while tracing (its output is shown in a pane).\n"
                              "Keys: ? lists them; q or Ctrl-C quits and detaches the probes.")
    p.add_argument("words", nargs="*", metavar="[FILE] [EXPRESSION]",
                   help="a recording (vethtrace record) to replay instead of tracing live, when the first word "
                        "names a file; then " + EXPRESSION_HELP + " (on a recording: the conversations with a "
                        "matching packet)")
    filter_args(p)
    p.usage = "%(prog)s [options] [FILE] [EXPRESSION ...] [-- COMMAND ...]"


def file_and_expression(words: list[str]) -> tuple[str | None, list[str]]:
    """tcpdump's words after an optional recording: the first word is the recording when it
    names an existing file (a pcap-filter expression never does)."""
    if words and os.path.isfile(words[0]):
        return words[0], words[1:]
    return None, words


def run(args) -> int:
    from ..ui import tui  # Textual is imported only by this command
    args.file, args.expression = file_and_expression(args.words)
    pcap = pcap_expression(args.expression)  # a bad expression is said before anything else
    live_only = (args.command or args.interface is not None or args.host is not None or args.all_netns
                 or args.netns or args.ipv6)
    if args.file and live_only:
        raise SetupError("a recording is replayed as it was recorded: filters and -- COMMAND only apply "
                         "when tracing live (vethtrace tui [filters] [-- COMMAND])")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise SetupError("vethtrace tui needs a terminal; in scripts and pipes use "
                         + (f"`vethtrace show {args.file}`" if args.file else
                            "`vethtrace trace` or `vethtrace record -o -`"))
    if args.file:
        source = ReplaySource(args.file, pcap=pcap)
        status = tui.run(source)
        if source.rec.warning:
            print(f"vethtrace: warning: {source.rec.warning}", file=sys.stderr)
        return status
    if args.command and shutil.which(args.command[0]) is None:
        raise SetupError(f"{args.command[0]}: command not found")
    with LiveEvents(build_filters(args.interface, args.host, args.all_netns, args.ipv6, netns=args.netns, expression=args.expression),
                    ring_mb=args.buffer_mb) as src:
        return tui.run(src, args.command or None)
