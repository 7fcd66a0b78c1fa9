"""`vethtrace doctor`: what this kernel allows and which probe mechanism will be used."""
from __future__ import annotations

import os

from ..tracer import kernel
from ..tracer.kernel import SetupError
from ..tracer.live import LiveSource, build_filters

NAME = "doctor"


def add_parser(sub) -> None:
    sub.add_parser("doctor", help="what this kernel allows and which probe mechanism will be used")


def run(args) -> int:
    rows = kernel.doctor()
    ok_all = True
    for name, ok, detail in rows:
        ok_all &= ok or name.startswith(("function", "tracepoint icmp_send"))
        print(f"{'ok ' if ok else 'NO '} {name:<38} {detail}")
    if os.geteuid() == 0 and os.path.exists(kernel.btf_path()):
        try:
            with LiveSource(build_filters(), want_fentry=True) as src:  # tries fentry again
                print(f"\nprobe mechanism: {src.mechanism}")
                for s in src.report.skipped:
                    print(f"  skipped {s}")
        except SetupError as exc:
            print(f"\nprobes cannot load: {exc}")
            return 1
    else:
        print("\nprobe mechanism: unknown until run as root")
    return 0 if ok_all else 1
