"""`vethtrace run -- COMMAND`: any program (curl, nc, python), traced while it runs; then
each conversation it caused, explained.  Exit status is the program's."""
from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter

from ..tracer import kernel, recording, runner, safefile
from ..tracer.correlate import ConvKind, Correlator
from ..tracer.kernel import SetupError
from ..tracer.live import LiveSource, build_filters
from ..ui.text import Style, conversation_lines, path_key, summary_lines
from .common import EXPRESSION_HELP, SETTLE_S, StopSignals, check_diagram, expression_arg, filter_args, print_extras
from ..ui.exact import exact_journeys, exact_paths, summary_counts

NAME = "run"
# Conversations a fresh IPv6 interface makes by itself: shown as one line each, folded.
HOUSEKEEPING = (ConvKind.ROUTER,)


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run any command, trace while it runs, explain each conversation it caused",
                       description="Runs COMMAND (its output unchanged) and, while it runs, traces the packets "
                                   "first seen in this namespace (or those given with --netns), each followed "
                                   "wherever it goes (a veth peer's namespace, a bridge, a router) with what is "
                                   "sent back to it; then explains each conversation: its packets, their paths "
                                   "and how each ended.  Exit status is COMMAND's.  IPv6 is traced too "
                                   "(--no-ipv6 to leave it out).")
    p.add_argument("--events", action="store_true", help="also list the raw kernel events at the end")
    p.add_argument("-t", "--timestamps", action="store_true", help="the time of each packet, and after each hop "
                   "the time since the one before")
    p.add_argument("-v", "--verbose", action="store_true", help="also the details: probe mechanism, benign kernel notes")
    p.add_argument("--record", metavar="FILE", help="also save the trace as a recording")
    p.add_argument("--svg", metavar="FILE", help="also draw the packets' paths (.svg, .png or .dot)")
    p.add_argument("--no-ipv6", action="store_true", help="leave IPv6 out (traced by default here)")
    filter_args(p)
    expression_arg(p, EXPRESSION_HELP + "; the command to run goes after --")


def _command(args) -> list[str]:
    command = args.command
    if not command:
        raise SetupError("say what to run, e.g. `vethtrace run -- curl -s http://192.168.2.1:8000/`")
    prog = command[0]
    if os.sep in prog:
        ok = os.path.isfile(prog) and os.access(prog, os.X_OK)
    else:
        ok = shutil.which(prog) is not None
    if not ok:
        raise SetupError(f"cannot run {prog!r}: no such program (give its path, or install it)")
    return command


def run(args) -> int:
    command = _command(args)  # before anything is loaded: bad input leaves nothing behind
    if args.svg:
        check_diagram(args.svg, stdout_ok=False)  # the program's own output goes to standard output
    if args.record:
        safefile.check(args.record, stdout_ok=False)
    filters = build_filters(args.interface, args.host, args.all_netns, ipv6=not args.no_ipv6, netns=args.netns,
                            expression=args.expression)
    style = Style.for_terminal(args.verbose, time.time_ns() - time.monotonic_ns() if args.timestamps else None)
    kept = [] if (args.record or args.events) else None
    with LiveSource(filters, ring_mb=args.buffer_mb) as src:
        corr = Correlator(kernel.context())
        corr.losses = src.losses  # journeys around lost events are shown incomplete
        print(style.dim(f"vethtrace: tracing ({src.mechanism}) while {' '.join(command)} runs"),
              file=sys.stderr, flush=True)
        status = _run_command(command, src, corr, kept)
        time.sleep(SETTLE_S)
        _feed(src.drain(), corr, kept)
        lost = src.lost()
        kc = src.kernel_counts()  # read once: the summary and the recording agree
        print()
        for text in explain_lines(corr, style):
            print(text)
        print()
        exact = exact_paths(corr)  # rows from the kernel's counts when events were lost
        for j in corr.journeys:
            exact.note(j)
        counts, exact_lines = summary_counts(kc, exact, Counter(path_key(j, corr) for j in corr.journeys), lost)
        for text in summary_lines(corr, style, lost, counts=counts, exact=bool(exact_lines)) + exact_lines:
            print(text)
        print_extras(args, style, src, corr, kept, "vethtrace run " + " ".join(command),
                     exact=exact_journeys(kc, corr.journeys, lost) if args.svg else None)
        if args.record:
            recording.write_file(args.record, recording.header(corr.context, src.mechanism, command, corr.namespaces),
                                 kept, lost, counts=kc)
            print(style.dim(f"recording saved to {args.record}"))
    return status


def explain_lines(corr: Correlator, style: Style) -> list[str]:
    """Each conversation: a title line, then its journeys; housekeeping folded to one line."""
    lines = []
    for conv in corr.conversations:
        if conv.kind in HOUSEKEEPING:
            first = conv.journeys[0] if conv.journeys else None
            if first is not None:
                lines += style.wrap(f"[{conv.id}] ", (f"{first.summary}  (x{len(conv.journeys)}, IPv6 housekeeping)", "2"),
                                    cont="    ")
            continue
        lines += style.wrap(f"[{conv.id}] ", (conv.title, "1"), cont="    ")
        lines.extend(conversation_lines(conv, corr, style))
    return lines


def _feed(events, corr: Correlator, kept: list | None) -> None:
    corr.namespaces.learn(events)  # a namespace met for the first time: its name and context, now
    corr.feed(events)
    if kept is not None:
        kept.extend(events)


def _run_command(command: list[str], src: LiveSource, corr: Correlator, kept) -> int:
    """Run the command with vethtrace's terminal; read events until it exits.  Ctrl-C
    reaches it from the terminal; SIGTERM/SIGHUP to vethtrace stop it."""
    try:
        proc = runner.start(command)
    except OSError as exc:
        raise SetupError(f"cannot run {command[0]!r}: {exc.strerror}") from None
    try:
        with StopSignals() as stop:
            while proc.poll() is None and not stop.requested:
                _feed(src.poll(100), corr, kept)
            if stop.requested:
                runner.stop(proc)
        return proc.wait() if proc.returncode is None else proc.returncode
    finally:
        runner.stop(proc)
