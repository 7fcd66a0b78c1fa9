"""`vethtrace demo`: the article's experiment in a private namespace, traced, then removed."""
from __future__ import annotations

import os
import signal

from ..tracer import kernel, lab, runner
from ..ui.text import Style
from .common import child_command

NAME = "demo"


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="the article's experiment in a private namespace, traced and shown, then removed")
    p.add_argument("scenario", nargs="?", default="two-ips-fixed", choices=sorted(lab.SCENARIOS))


def run(args) -> int:
    kernel.require_root()
    scenario = lab.SCENARIOS[args.scenario]
    name = f"{lab.PREFIX}demo-{os.getpid()}"
    style = Style()
    lab.cleanup_stale()
    # SIGTERM/SIGHUP unwind like Ctrl-C so the namespace is always removed.
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    child = None
    try:
        with lab.lab(scenario.name, name=name) as built:
            print(style.paint(f"# {scenario.description}", "1"))
            print(style.dim(f"# namespace {built.name} (removed when the demo ends); running: vethtrace ping "
                            f"{' '.join(scenario.ping[1:])}"), flush=True)
            # The same installed vethtrace, never `-m` from the working directory.
            child = runner.start(built.exec_cmd([*child_command(), "ping", *scenario.ping[1:]]))
            try:
                rc = child.wait()
            except KeyboardInterrupt:
                # Let vethtrace ping stop ping and print its summary, then remove the lab.
                runner.stop(child, signal.SIGINT, grace=5.0)
                raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return rc  # ping's status: experiment 1 is meant to fail, and says so with 1


def _interrupt(signum, frame):
    raise KeyboardInterrupt
