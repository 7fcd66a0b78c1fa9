"""`vethtrace trace`: each packet's path, printed live as its journey ends."""
from __future__ import annotations

import sys
import time

from ..tracer import kernel, recording
from ..tracer.correlate import Correlator
from ..tracer.live import LiveSource, build_filters
from ..ui.text import Style, journey_lines, summary_lines
from .common import StopSignals, filter_args

NAME = "trace"
GRACE_NS = 200_000_000  # a clone (raw-socket copy) follows its original within this
KEEP_LIVE = 20_000  # journeys kept in memory by long-running live commands


def add_parser(sub) -> None:
    p = sub.add_parser("trace", help="print each packet's path live as its journey ends (Ctrl-C stops)")
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS", help="stop after this long")
    p.add_argument("--json", action="store_true", help="print events as JSON lines instead")
    filter_args(p)


def run(args) -> int:
    filters = build_filters(args.interface, args.host, args.all_netns, args.ipv6, args.netns)
    style = Style()
    with LiveSource(filters, ring_mb=args.buffer_mb) as src:
        corr = Correlator(kernel.context(), keep=KEEP_LIVE)
        pending: dict[int, object] = {}  # ended journeys, printed once no clone can join them
        if not args.json:
            corr.on_journey_end = lambda j: pending.__setitem__(j.id, j)

        def flush(everything: bool = False) -> None:
            now = time.monotonic_ns()  # the probes' clock (bpf_ktime_get_ns)
            for jid, j in list(pending.items()):
                if everything or now - j.last > GRACE_NS:
                    if j.ended or j.cut:
                        print("\n".join(journey_lines(j, corr, style, indent="")), flush=True)
                    del pending[jid]

        print(f"vethtrace: tracing ({src.mechanism}); Ctrl-C stops", file=sys.stderr)
        deadline = time.monotonic() + args.duration if args.duration else None
        with StopSignals() as stop:
            while not stop.requested and (deadline is None or time.monotonic() < deadline):
                events = src.poll(100)
                if args.json:
                    recording.write_lines(sys.stdout.buffer, events, rows=False)
                corr.feed(events)
                flush()
        if not args.json:
            flush(everything=True)
            print("\n".join(summary_lines(corr, style, src.lost())))
    return 0
