"""`vethtrace lab`: the article's topologies in namespaces of their own."""
from __future__ import annotations

from ..tracer import lab
from ..tracer.lab import LabError
from .common import self_name

NAME = "lab"


def add_parser(sub) -> None:
    p = sub.add_parser("lab", help="build, list or remove the article's lab namespaces")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("scenario", nargs="?", help=", ".join(f"{n}: {s.description}" for n, s in lab.SCENARIOS.items()))


def run(args) -> int:
    if args.action == "status":
        labs = lab.status()
        if not labs:
            print("no lab namespaces")
        for st in labs:
            print(f"{st.name}  ({st.scenario or 'unknown scenario'})")
            for i in st.interfaces:
                print(f"    {i.name:<8} {i.state:<6} {' '.join(i.addresses)}")
        return 0
    if not args.scenario:
        raise LabError(f"say which lab: one of {', '.join(lab.SCENARIOS)}")
    if args.action == "up":
        built = lab.up(args.scenario)
        print(lab.describe(built, self_name()))
        return 0
    removed = lab.down(args.scenario)
    if not removed:  # like `lab up` of a lab that is up: the user asked for what cannot be done
        raise LabError(f"no lab {lab.ns_name(args.scenario)} to remove (`vethtrace lab status` lists the labs that are up)")
    print(f"removed {lab.ns_name(args.scenario)}")
    return 0
