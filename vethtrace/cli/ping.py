"""`vethtrace ping`: the system ping, traced; under each line it prints, the packets behind it."""
from __future__ import annotations

import argparse
import ipaddress
import selectors
import shutil
import signal
import time

from ..tracer import kernel, recording, safefile
from ..tracer.correlate import Correlator
from ..tracer.losses import FOOTER_WINDOWS
from ..tracer.retention import Retention
from ..tracer.kernel import SetupError
from ..tracer.live import DEFAULT_RING_MB, LiveSource, build_filters
from ..tracer.runner import PtyCommand
from ..ui.ping import PingView
from ..ui.text import Style, path_key, summary_lines
from .common import SETTLE_S, check_diagram, positive, print_extras
from ..ui.exact import exact_journeys, exact_paths, noting, summary_counts

NAME = "ping"
OWN_FLAGS = ("--events", "--ipv6", "--verbose", "--timestamps", "-h", "--help")  # not -v, -t: ping's own
OWN_VALUES = ("--record", "--svg", "--buffer-mb", "--filter")


def add_parser(sub) -> None:
    p = sub.add_parser("ping", help="run ping and show the path of every request, reply and error",
                       description="Runs the system ping with your arguments, traces while it runs, and under each "
                                   "line ping prints shows the packets involved, their path and verdict.")
    p.add_argument("--events", action="store_true", help="also list the raw kernel events at the end")
    p.add_argument("--record", metavar="FILE", help="also save the trace as a recording")
    p.add_argument("--timestamps", action="store_true", help="the time of each packet, and after each hop the "
                   "time since the one before (-t is ping's own)")
    p.add_argument("--verbose", action="store_true", help="also the details: probe mechanism, benign kernel notes "
                   "(-v is ping's own)")
    p.add_argument("--ipv6", action="store_true", help="include IPv6 packets (on by itself when ping sends "
                   "IPv6: -6 or an IPv6 address among its arguments)")
    p.add_argument("--svg", metavar="FILE", help="also draw the packets' paths (.svg, .png or .dot)")
    p.add_argument("--buffer-mb", type=positive(int), default=DEFAULT_RING_MB, metavar="MB",
                   help=f"kernel ring buffer size (default {DEFAULT_RING_MB} MB); larger loses fewer events in floods "
                        "(counts stay exact: the kernel keeps them)")
    p.add_argument("--filter", metavar="EXPRESSION", help="a pcap-filter expression (also: vethtrace ping "
                   "EXPRESSION -- PING_ARGS): only packets it matches are traced, each followed to its end")
    p.add_argument("ping_args", nargs=argparse.REMAINDER, metavar="PING_ARGS", help="arguments for ping, unchanged")


def split_argv(argv: list[str]) -> list[str]:
    """`vethtrace ping [OWN OPTIONS] PING_ARGS...`: vethtrace's own options (ping has none of
    these names) are taken wherever they are, before or among ping's arguments; the rest goes
    to ping unchanged, even when it starts with '-' (argparse cannot).  After an explicit
    `--` everything is ping's."""
    own, rest, i = [], [], 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            # `vethtrace ping icmp and host X -- -c 1 X`: tcpdump's words before `--`.  An
            # expression never starts with '-', so `vethtrace ping -c 1 -- X` is all ping's.
            if rest and not rest[0].startswith("-"):
                own += ["--filter", " ".join(rest)]
                rest = []
            rest += argv[i + 1:]
            break
        if a in OWN_FLAGS:
            own.append(a)
        elif a in OWN_VALUES and i + 1 < len(argv):
            own += argv[i:i + 2]
            i += 1
        elif a.startswith(tuple(v + "=" for v in OWN_VALUES)):
            own.append(a)
        else:
            rest.append(a)
        i += 1
    return ["ping", *own, *(["--", *rest] if rest else [])]


def pings_ipv6(ping_args: list[str]) -> bool:
    """Does ping send IPv6 (-6, or an IPv6 address among its arguments)?  Then its packets
    are traced without --ipv6: a ping6 that traced nothing would explain nothing."""
    for a in ping_args:
        if a == "-6":
            return True
        try:
            if ipaddress.ip_address(a.split("%", 1)[0]).version == 6:
                return True
        except ValueError:
            pass
    return False


def run(args) -> int:
    ping_args = args.ping_args[1:] if args.ping_args[:1] == ["--"] else args.ping_args
    if not ping_args:
        raise SetupError("say what to ping, e.g. `vethtrace ping -c 2 -I veth0 192.168.2.1`")
    if shutil.which("ping") is None:
        raise SetupError("ping is not installed: apt-get install iputils-ping")
    if args.svg:
        check_diagram(args.svg, stdout_ok=False)  # ping's own lines go to standard output
    if args.record:
        safefile.check(args.record)
    style = Style.for_terminal(args.verbose, time.time_ns() - time.monotonic_ns() if args.timestamps else None)
    ipv6 = args.ipv6 or pings_ipv6(ping_args)
    with LiveSource(build_filters(ipv6=ipv6, expression=args.filter), ring_mb=args.buffer_mb) as src:
        corr = Correlator(kernel.context())
        corr.losses = src.losses  # journeys around lost events are shown incomplete
        view = PingView(corr, style)
        # Bounded memory: old journeys are forgotten once counted for the summary.
        exact = exact_paths(corr)  # rows from the kernel's counts when events are lost
        retained = Retention(corr, noting(exact, lambda j: path_key(j, corr)), on_conversations=view.forgotten)
        kept = [] if args.events else None
        writer = _recorder(args.record, corr, src, ping_args)
        sink = _Sink(corr, kept, writer)
        try:
            status = _run_ping(ping_args, src, sink, view)
            time.sleep(SETTLE_S)
            sink.drain(src)
            lost = src.lost()
            kc = src.kernel_counts()  # read once: the summary and the recording's footer agree
            if writer is not None:
                writer.close(lost, src.losses.as_list(FOOTER_WINDOWS), namespaces=sink.met, counts=kc)
                writer.f.commit()  # complete: only now at its name
        finally:
            if writer is not None:  # without commit (interrupted, failed): nothing left behind
                writer.f.close()
        view.rest()
        print()
        counts, exact_lines = summary_counts(kc, exact, retained.counts(), lost)
        for text in summary_lines(corr, style, lost, counts=counts, exact=bool(exact_lines)):
            print(text)
        for text in exact_lines:
            print(text)
        print_extras(args, style, src, corr, kept, "vethtrace ping " + " ".join(ping_args),
                     exact=exact_journeys(kc, corr.journeys, lost) if args.svg else None)
        if args.record:
            print(style.dim(f"recording saved to {args.record}"))
    return status


def _recorder(path: str | None, corr: Correlator, src: LiveSource, ping_args: list[str]):
    """A recording written as events arrive (safefile: a temporary file put at its name
    when complete), or None."""
    if not path:
        return None
    return recording.Writer(safefile.create(path), recording.header(corr.context, src.mechanism, ["ping", *ping_args],
                                                                    corr.namespaces))


class _Sink:
    """Where each decoded batch goes: the correlator, the recording (written as it comes,
    so nothing piles up), the --events list."""

    def __init__(self, corr: Correlator, kept: list | None, writer):
        self.corr, self.kept, self.writer = corr, kept, writer
        self.met: list[dict] = []  # namespaces first met after the recording's header: its footer names them

    def feed(self, events) -> None:
        self.met += self.corr.namespaces.learn(events)  # a namespace met for the first time: named now
        self.corr.feed(events)
        if self.writer is not None:
            self.writer.write(events)
        if self.kept is not None:
            self.kept.extend(events)

    def drain(self, src: LiveSource) -> None:
        """Everything the kernel has written so far, a chunk at a time (a flood's backlog
        decoded at once would hold hundreds of thousands of Events)."""
        for chunk in src.drain_chunks():
            self.feed(chunk)


def _run_ping(ping_args: list[str], src: LiveSource, sink: _Sink, view: PingView) -> int:
    cmd = PtyCommand(["ping", *ping_args]).start()
    interrupted = [0]

    def on_int(signum, frame):
        interrupted[0] += 1
        if interrupted[0] > 1:
            raise KeyboardInterrupt
        cmd.send(signal.SIGINT)  # ping prints its statistics and exits

    old = signal.signal(signal.SIGINT, on_int)
    sel = selectors.DefaultSelector()
    sel.register(cmd.fd, selectors.EVENT_READ)
    sel.register(src.epoll_fd(), selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            ready = {key.fd for key, _ in sel.select(0 if src.backlog else 0.1)}
            sink.feed(src.poll(0))  # a chunk at a time: the ring buffer is emptied often
            if cmd.fd in ready:
                data = cmd.read()
                if not data:
                    break
                buf += data.replace(b"\r\n", b"\n")
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    sink.drain(src)
                    if not view.explained(raw):  # its last events may still be on their way
                        time.sleep(SETTLE_S)
                        sink.drain(src)
                    view.line(raw)
        if buf:
            view.line(buf)
        return cmd.wait()
    finally:
        signal.signal(signal.SIGINT, old)
        sel.close()
        cmd.close(signal.SIGKILL, grace=1.0)
