"""`vethtrace lab`: the article's topologies and container-like ones, in namespaces of their own."""
from __future__ import annotations

from ..tracer import lab
from ..tracer.lab import LabError
from .common import self_name

NAME = "lab"


def add_parser(sub) -> None:
    p = sub.add_parser("lab", help="build, list or remove lab namespaces (`lab list` says what each shows)")
    p.add_argument("action", choices=["up", "down", "status", "list"])
    p.add_argument("scenario", nargs="?", help="one of: " + ", ".join(lab.scenario_names()))


def run(args) -> int:
    if args.action == "list":
        rows = lab.listing()
        width = max(len(n) for n, _ in rows)
        for name, what in rows:
            print(f"{name:<{width}}  {what}")
        return 0
    if args.action == "status":
        labs = lab.status()
        if args.scenario:
            _known(args.scenario)
            labs = [st for st in labs if st.scenario == args.scenario]
        if not labs:
            print(f"no {args.scenario} lab namespaces" if args.scenario else "no lab namespaces")
        for st in labs:
            print(f"{st.name}  ({st.scenario or 'unknown scenario'})")
            for i in st.interfaces:
                print(f"    {i.name:<8} {i.state:<6} {' '.join(i.addresses)}")
        return 0
    if not args.scenario:
        raise LabError(f"say which lab: one of {', '.join(lab.scenario_names())}")
    _known(args.scenario)
    topology = args.scenario in lab.TOPOLOGIES
    if args.action == "up":
        if topology:
            print(lab.describe_topology(lab.up_topology(args.scenario), self_name()))
        else:
            print(lab.describe(lab.up(args.scenario), self_name()))
        return 0
    if topology:
        spaces = ", ".join(lab.topology_namespaces(args.scenario).values())
        removed = lab.down_topology(args.scenario)
        print(f"removed {spaces}" if removed else f"no lab {args.scenario} to remove")
        return 0
    removed = lab.down(args.scenario)
    if not removed:  # like `lab up` of a lab that is up: the user asked for what cannot be done
        raise LabError(f"no lab {lab.ns_name(args.scenario)} to remove (`vethtrace lab status` lists the labs that are up)")
    print(f"removed {lab.ns_name(args.scenario)}")
    return 0


def _known(scenario: str) -> None:
    # `lab down` also takes a namespace name (vethtrace-...); status and up take scenarios
    if scenario not in lab.scenario_names() and not scenario.startswith(lab.PREFIX):
        raise LabError(f"unknown scenario {scenario!r}; choose one of: {', '.join(lab.scenario_names())} "
                       "(`vethtrace lab list` says what each shows)")
