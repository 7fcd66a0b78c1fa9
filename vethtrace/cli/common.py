"""What the subcommands share: errors they report as one line, the filter options, the
stop signals of a reading loop, drawing diagrams, and how vethtrace names itself."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys

from ..tracer import safefile
from ..tracer.kernel import SetupError
from ..tracer.live import DEFAULT_RING_MB
from ..tracer.sources import replay

SETTLE_S = 0.03  # after a command prints a line, the events that explain it are already queued; drain once more


def positive(kind: type):
    """An argparse type: a number above zero (a duration, a count, a size)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def duration_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--duration", type=positive(float), metavar="SECONDS", help="stop after this long")


def count_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--count", type=positive(int), metavar="COUNT",
                   help="stop once COUNT conversations have ended (as tcpdump -c stops after COUNT packets)")


EXPRESSION_HELP = ("a pcap-filter expression, as tcpdump takes it (e.g. icmp and host 192.168.2.1; several "
                   "words are joined): evaluated in the kernel on each new packet; a packet that matched is "
                   "followed to its end")
REPLAY_EXPRESSION_HELP = ("a pcap-filter expression, as tcpdump takes it: keep the conversations that have a "
                          "matching packet (with the packets that answer it)")


def expression_arg(p: argparse.ArgumentParser, help: str = EXPRESSION_HELP) -> None:
    p.add_argument("expression", nargs="*", metavar="EXPRESSION", help=help)


def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """`... [EXPRESSION] -- COMMAND`: argparse would take COMMAND's words for the
    expression (or a file), so the command is cut off at the first `--` first."""
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def replay_filter(args):
    """The compiled EXPRESSION of a replaying command, or None (bad ones: SetupError)."""
    from ..tracer.live import pcap_expression
    return pcap_expression(args.expression)


def filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (applied in the kernel)")
    g.add_argument("-i", "--interface", help="only packets on this interface")
    g.add_argument("--host", metavar="ADDR", help="only packets from or to this IPv4 or IPv6 address "
                   "(IPv6: the same as the expression `host ADDR`)")
    g.add_argument("--netns", action="append", default=[], metavar="NAME",
                   help="trace the packets first seen in this `ip netns` namespace instead of this one "
                        "(repeatable); each is followed wherever it goes")
    g.add_argument("--all-netns", action="store_true", help="trace every network namespace, not just this one")
    g.add_argument("--ipv6", action="store_true", help="include IPv6 (router/multicast housekeeping is hidden by default)")
    p.add_argument("--buffer-mb", type=positive(int), default=DEFAULT_RING_MB, metavar="MB",
                   help=f"kernel ring buffer size (default {DEFAULT_RING_MB} MB); larger loses fewer events in floods "
                        "(counts stay exact: the kernel keeps them)")


class StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP ask a reading loop to stop after the batch in hand (so no
    batch is half-written or uncounted); a second signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self) -> "StopSignals":
        self.requested = False
        self._old = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}
        return self

    def _on_signal(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def draw(journeys, corr, path: str, title: str, aggregate: bool | None = None, exact=None) -> None:
    from ..ui import diagram  # graphviz is only needed here
    try:
        diagram.write(diagram.build(journeys, corr, title=title, aggregate=aggregate, exact=exact), path)
    except (diagram.DotMissing, diagram.DiagramError) as exc:
        raise SetupError(str(exc)) from None


def check_diagram(path: str, stdout_ok: bool = True) -> None:
    """Refuse a diagram name that cannot be written before any work is done."""
    from ..ui import diagram
    try:
        diagram.output_format(path)
    except diagram.DiagramError as exc:
        raise SetupError(str(exc)) from None
    if path == "-" and not stdout_ok:
        raise SetupError("'-' (standard output) is not possible here: name a file")
    safefile.check(path, stdout_ok)


def replayed(path: str, pcap=None):
    """sources.replay(path, pcap), saying on stderr, in one line, if the recording was cut short."""
    rec, corr = replay(path, pcap)
    if rec.warning:
        print(f"vethtrace: warning: {rec.warning}", file=sys.stderr)
    return rec, corr


def self_command() -> list[str]:
    """How to run this same vethtrace again, as a command a user can paste or a namespace
    can exec: the absolute path of the installed script, else this interpreter in isolated
    mode (-I: nothing is imported from the working directory)."""
    script = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if os.path.basename(script) == "vethtrace" and os.path.isfile(script):
        return [os.path.abspath(script)]
    found = shutil.which("vethtrace")
    if found and os.path.realpath(os.path.dirname(found)) == os.path.realpath(os.path.dirname(sys.executable)):
        return [found]
    return [sys.executable, "-I", "-m", "vethtrace"]


def child_command() -> list[str]:
    """self_command() for a child vethtrace runs itself (the demo's `vethtrace ping`):
    always through this interpreter in isolated mode, so neither the working directory nor
    an empty PYTHONPATH entry (which means the working directory) is ever imported from."""
    cmd = self_command()
    return cmd if cmd[0] == sys.executable else [sys.executable, "-I", *cmd]


def self_name() -> str:
    """self_command() as one string for printed examples."""
    return " ".join(self_command())


class ConversationCount:
    """`-c COUNT`: has COUNT conversations ended?  A conversation has ended once each of its
    journeys has, and nothing happened in it for `quiet_ns` (a reply is a new journey that
    starts after its request ended)."""

    def __init__(self, count: int | None, quiet_ns: int = 200_000_000):
        self.count, self.quiet_ns = count, quiet_ns
        self.ended_ids: set[int] = set()

    def reached(self, corr, now_ns: int) -> bool:
        if not self.count:
            return False
        for conv in corr.conversations:
            if conv.id in self.ended_ids or not conv.journeys:
                continue
            if all(j.ended or j.cut for j in conv.journeys) and \
                    now_ns - max(j.last for j in conv.journeys) > self.quiet_ns:
                self.ended_ids.add(conv.id)
        return len(self.ended_ids) >= self.count


def print_extras(args, style, src, corr, kept, title: str, exact=None) -> None:
    """What `ping` and `run` print after their summary: the probe mechanism (-v), the raw
    events (--events), and where the diagram (--svg) went; exact: ui.exact.exact_journeys,
    for a diagram that counts the kernel's packets when events were lost."""
    from ..ui.text import event_lines
    if style.verbose:
        print(style.dim(f"probes: {src.mechanism}"))
    if args.events:
        print("\n".join(event_lines(kept)))
    if args.svg:
        draw(corr.journeys, corr, args.svg, title=title, exact=exact)
        print(style.dim(f"diagram saved to {args.svg}"))
