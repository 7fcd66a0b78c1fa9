"""`vethtrace trace`: each packet's path, printed live as its journey ends."""
from __future__ import annotations

import sys
import time
from collections import deque

from ..tracer import kernel, recording
from ..tracer.correlate import Correlator
from ..tracer.events import PACKET_KINDS, json_object
from ..tracer.live import LiveSource, build_filters
from ..tracer.retention import Retention
from ..ui.text import Style, journey_lines, path_key, summary_lines
from ..ui.exact import exact_paths, noting, summary_counts
from .common import ConversationCount, StopSignals, count_arg, duration_arg, expression_arg, filter_args

NAME = "trace"
GRACE_NS = 200_000_000  # a clone (raw-socket copy) follows its original within this


def add_parser(sub) -> None:
    p = sub.add_parser("trace", help="print each packet's path live as its journey ends (Ctrl-C stops)")
    duration_arg(p)
    count_arg(p)
    p.add_argument("--json", action="store_true", help="print every event as a JSON object instead (the objects "
                   "`show --json` prints: with journey and conversation ids and wall-clock time), in time order, "
                   "each once its journey has ended")
    p.add_argument("-t", "--timestamps", action="store_true", help="the time of each packet, and after each hop "
                   "the time since the one before")
    p.add_argument("-v", "--verbose", action="store_true", help="also the details: benign kernel notes")
    filter_args(p)
    expression_arg(p)


class JsonStream:
    """`trace --json`: events printed in arrival order once their journey is known to have
    ended (so each carries its journey and conversation ids, as `show --json` does); an
    event whose journey is still going after HOLD_NS goes out without them."""

    HOLD_NS = 2_000_000_000

    def __init__(self, corr: Correlator, wall_offset_ns: int):
        self.corr, self.wall = corr, wall_offset_ns
        self.waiting: deque = deque()
        self.placed: dict[int, tuple] = {}

    def journey_ended(self, j) -> None:
        ids = (j.id, j.conversation.id if j.conversation is not None else None)
        for e in j.events:
            self.placed[id(e)] = ids

    def add(self, events) -> None:
        self.waiting.extend(events)

    def flush(self, now_ns: int | None = None) -> None:
        lines = []
        waiting, placed = self.waiting, self.placed
        while waiting:
            e = waiting[0]
            ids = placed.pop(id(e), None)
            if ids is None and now_ns is not None and e.kind in PACKET_KINDS and now_ns - e.ts < self.HOLD_NS:
                break  # its journey is still going: keep the order, wait for it
            if ids is None and now_ns is not None and now_ns - e.ts < GRACE_NS:
                break
            waiting.popleft()
            lines.append(recording.dumps(json_object(e, *(ids or (None, None)), self.wall)))
        if lines:
            sys.stdout.buffer.write(b"\n".join(lines) + b"\n")
            sys.stdout.buffer.flush()


def run(args) -> int:
    filters = build_filters(args.interface, args.host, args.all_netns, args.ipv6, netns=args.netns, expression=args.expression)
    style = Style.for_terminal(args.verbose, time.time_ns() - time.monotonic_ns() if args.timestamps else None)
    with LiveSource(filters, ring_mb=args.buffer_mb) as src:
        corr = Correlator(kernel.context())
        corr.losses = src.losses  # journeys around lost events are shown incomplete
        exact = exact_paths(corr)  # rows from the kernel's counts when events are lost
        retained = Retention(corr, noting(exact, lambda j: path_key(j, corr)))  # bounded memory, exact summary
        pending: dict[int, object] = {}  # ended journeys, printed once no clone can join them
        stream = JsonStream(corr, time.time_ns() - time.monotonic_ns()) if args.json else None
        if args.json:
            corr.on_journey_end = stream.journey_ended
        else:
            corr.on_journey_end = lambda j: pending.__setitem__(j.id, j)

        def flush(everything: bool = False) -> None:
            now = time.monotonic_ns()  # the probes' clock (bpf_ktime_get_ns)
            if stream is not None:
                if everything:
                    for j in corr.journeys:
                        stream.journey_ended(j)
                stream.flush(None if everything else now)
                return
            # in the order they ended: the ARP exchange before the echo request it released
            for jid, j in sorted(pending.items(), key=lambda item: item[1].last):
                if everything or now - j.last > GRACE_NS:
                    if j.ended or j.cut:
                        print("\n".join(journey_lines(j, corr, style, indent="")), flush=True)
                    del pending[jid]

        print(f"vethtrace: tracing ({src.mechanism}); Ctrl-C stops", file=sys.stderr)
        deadline = time.monotonic() + args.duration if args.duration else None
        counted = ConversationCount(args.count)
        with StopSignals() as stop:
            while not stop.requested and (deadline is None or time.monotonic() < deadline):
                events = src.poll(100)
                if stream is not None:
                    stream.add(events)
                corr.namespaces.learn(events)  # names and context of namespaces met for the first time
                corr.feed(events)
                flush()
                if counted.reached(corr, time.monotonic_ns()):
                    break
        flush(everything=True)
        if not args.json:
            lost = src.lost()
            counts, exact_lines = summary_counts(src.kernel_counts(), exact, retained.counts(), lost)
            print("\n".join(summary_lines(corr, style, lost, counts=counts, exact=bool(exact_lines)) + exact_lines))
    return 0
