"""What the subcommands share: errors they report as one line, the filter options, the
stop signals of a reading loop, drawing diagrams, and how vethtrace names itself."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys

from ..tracer.kernel import SetupError

SETTLE_S = 0.03  # after a command prints a line, the events that explain it are already queued; drain once more


def filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (applied in the kernel)")
    g.add_argument("-i", "--interface", help="only packets on this interface")
    g.add_argument("--host", metavar="IPV4", help="only packets from or to this IPv4 address")
    g.add_argument("--netns", action="append", default=[], metavar="NAME",
                   help="trace the packets first seen in this `ip netns` namespace instead of this one "
                        "(repeatable); each is followed wherever it goes")
    g.add_argument("--all-netns", action="store_true", help="trace every network namespace, not just this one")
    g.add_argument("--ipv6", action="store_true", help="include IPv6 (router/multicast housekeeping is hidden by default)")
    p.add_argument("--buffer-mb", type=int, default=32, metavar="MB",
                   help="kernel ring buffer size (default 32 MB); larger loses fewer events in floods")


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


def draw(journeys, corr, path: str, title: str, aggregate: bool | None = None) -> None:
    from ..ui import diagram  # graphviz is only needed here
    try:
        diagram.write(diagram.build(journeys, corr, title=title, aggregate=aggregate), path)
    except diagram.DotMissing as exc:
        raise SetupError(str(exc)) from None


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


def self_name() -> str:
    """self_command() as one string for printed examples."""
    return " ".join(self_command())
