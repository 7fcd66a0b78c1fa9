"""`vethtrace record`: events to a recording, until COMMAND exits, a duration, or Ctrl-C."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from ..tracer import kernel, recording, runner
from ..tracer.kernel import SetupError
from ..tracer.live import LiveSource, build_filters
from .common import SETTLE_S, StopSignals, filter_args

NAME = "record"


def add_parser(sub) -> None:
    p = sub.add_parser("record", help="record events to a JSON-lines file (until COMMAND exits or Ctrl-C)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="recording to write ('-' for stdout)")
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS", help="stop after this long")
    filter_args(p)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="command to run while recording")


def run(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    filters = build_filters(args.interface, args.host, args.all_netns, args.ipv6, args.netns)
    to_stdout = args.output == "-"
    proc = None
    status = 0
    with LiveSource(filters, ring_mb=args.buffer_mb) as src:
        # Opened only once the probes run: a run that cannot start leaves an older
        # recording of the same name untouched; a killed run leaves a readable prefix.
        if to_stdout:
            out = sys.stdout.buffer
        else:
            try:
                out = open(args.output, "wb")
            except OSError as exc:
                raise SetupError(f"cannot write {args.output}: {exc.strerror}") from None
        try:
            writer = recording.Writer(out, recording.header(kernel.context(), src.mechanism, command))
            print(f"vethtrace: recording ({src.mechanism}); {'running ' + ' '.join(command) if command else 'Ctrl-C stops'}",
                  file=sys.stderr)
            deadline = time.monotonic() + args.duration if args.duration else None
            with StopSignals() as stop:
                if command:
                    proc = runner.start(command)
                while not stop.requested:
                    writer.write(src.poll(100))
                    if proc is not None and proc.poll() is not None:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                if stop.requested:
                    status = 130
                    runner.stop(proc)
                time.sleep(SETTLE_S)
                writer.write(src.drain())
                writer.close(src.lost())
            if proc is not None:
                status = runner.stop(proc)
            print(f"vethtrace: {writer.count} events, {src.lost()} lost"
                  + ("" if to_stdout else f", written to {args.output}"), file=sys.stderr)
        finally:
            runner.stop(proc)
            if not to_stdout:
                out.close()
    return status if command else 0
