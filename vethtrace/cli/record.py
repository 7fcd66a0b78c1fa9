"""`vethtrace record`: events to a recording, until COMMAND exits, a duration, or Ctrl-C."""
from __future__ import annotations

import argparse
import shutil
import sys
import time

from ..tracer.losses import FOOTER_WINDOWS
from ..tracer import kernel, netns, recording, runner, safefile
from ..tracer.netns import Namespaces
from ..tracer.correlate import Correlator
from ..tracer.kernel import SetupError
from ..tracer.live import LiveSource, build_filters
from .common import (EXPRESSION_HELP, SETTLE_S, ConversationCount, StopSignals, count_arg, duration_arg,
                     expression_arg, filter_args)

NAME = "record"


def add_parser(sub) -> None:
    p = sub.add_parser("record", help="record events to a JSON-lines file (until COMMAND exits or Ctrl-C)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="recording to write ('-' for stdout)")
    duration_arg(p)
    count_arg(p)
    filter_args(p)
    expression_arg(p, EXPRESSION_HELP + "; a command to run goes after --")
    p.usage = "%(prog)s -o FILE [options] [EXPRESSION ...] [-- COMMAND ...]"


def run(args) -> int:
    command = args.command
    if command and shutil.which(command[0]) is None:
        raise SetupError(f"{command[0]}: command not found (nothing was recorded)")
    safefile.check(args.output, stdout_ok=True)
    try:
        filters = build_filters(args.interface, args.host, args.all_netns, args.ipv6, netns=args.netns, expression=args.expression)
    except SetupError as exc:
        # `record -o F sleep 5`: words before `--` are an expression, a command goes after it.
        if args.expression and not command and shutil.which(args.expression[0]):
            raise SetupError(f"{exc}; to run {args.expression[0]} while recording, put it after --: "
                             f"vethtrace record -o {args.output} -- {' '.join(args.expression)}") from None
        raise
    to_stdout = args.output == "-"
    proc = None
    status = 0
    with LiveSource(filters, ring_mb=args.buffer_mb) as src:
        # Created only once the probes run, and put at its name (safefile) once it has its
        # header and the command has started: a run that cannot start leaves an older
        # recording of the same name untouched; a killed run leaves a readable prefix.
        out = safefile.create(args.output, stdout_ok=True)
        try:
            here = kernel.context()
            spaces = Namespaces([here])
            writer = recording.Writer(out, recording.header(here, src.mechanism, command, spaces))
            if command:
                try:
                    # with -o -, the command's output would land in the recording: send it to stderr
                    proc = runner.start(command, stdout=sys.stderr.fileno() if to_stdout else None)
                except OSError as exc:
                    raise SetupError(f"cannot run {command[0]}: {exc.strerror} (nothing was recorded)") from None
            out.commit()
            stop = StopSignals().__enter__()  # before saying "recording": a signal from then on stops cleanly
            print(f"vethtrace: recording ({src.mechanism}); {'running ' + ' '.join(command) if command else 'Ctrl-C stops'}",
                  file=sys.stderr)
            try:
                status = _record(args, src, writer, proc, stop, spaces)
            except safefile.OutputError as exc:
                out.cut_back()  # the file ends with the last whole line
                runner.stop(proc)
                where = "" if to_stdout else (f"; {args.output} keeps the {writer.count} events written before "
                                              f"(no footer: `vethtrace show {args.output}` shows them)")
                raise safefile.OutputError(f"{exc}; recording stopped{where}") from None
            print(f"vethtrace: {writer.count} events, {src.lost()} lost"
                  + ("" if to_stdout else f", written to {args.output}"), file=sys.stderr)
        finally:
            runner.stop(proc)
            out.close()
    return status if command else 0


def _record(args, src, writer, proc, stop: StopSignals, spaces: Namespaces) -> int:
    """Events to the writer until the command exits, the duration ends or a signal asks.
    Namespaces met for the first time are named and described then (spaces.learn), and
    written in the footer."""
    met: list[dict] = []
    status = 0
    deadline = time.monotonic() + args.duration if args.duration else None
    counted = ConversationCount(args.count)
    corr = Correlator(spaces.get(netns.current_inode()), keep=20_000, namespaces=spaces) if args.count else None
    with stop:
        while not stop.requested:
            events = src.poll(100)
            met += spaces.learn(events)
            writer.write(events)
            if corr is not None:
                corr.feed(events)
                if counted.reached(corr, time.monotonic_ns()):
                    break
            if proc is not None and proc.poll() is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
        if stop.requested:
            status = 130
            runner.stop(proc)
        time.sleep(SETTLE_S)
        for chunk in src.drain_chunks():  # a backlog is decoded and written a chunk at a time
            met += spaces.learn(chunk)
            writer.write(chunk)
        # the kernel's exact counts, read after the last event: show and render are exact with them
        writer.close(src.lost(), src.losses.as_list(FOOTER_WINDOWS), namespaces=met, counts=src.kernel_counts())
    if proc is not None:
        status = runner.stop(proc)
    return status
