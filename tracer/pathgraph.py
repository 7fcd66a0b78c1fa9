"""The path graph: places a packet can be, and the hops between them, as a networkx graph.

Nodes are places: a device in a namespace, a bridge forwarding between its ports, a
protocol handler of the stack (arp_rcv, icmp_rcv, ip_forward), a socket, or an end mark
(where a packet was dropped or left unanswered).  Every node belongs to one namespace
(its inode; corr.namespaces names it).
Edges are hops.  One model serves three views:
  - `steps_graph(journeys)`: a MultiDiGraph, one edge per hop, numbered in the order the
    packets took them (a journey, a conversation, a short run);
  - `aggregate_graph(journeys)`: a MultiDiGraph, one edge per distinct hop and role (an ARP
    request and an echo request over the same hop are two edges), with counts, and the
    stack's answers (the dashed "cause" links) counted the same way;
both carry the same node and edge attributes, so one renderer draws either.
"""
from __future__ import annotations

import networkx as nx

from .correlate import Correlator, Journey
from .verdict import DROPPED, IN_FLIGHT, INCOMPLETE, verdict

ROLES = ("request", "reply", "error", "arp request", "arp reply", "packet")


def place_node(netns: int, kind: str, name: str) -> str:
    return f"{kind}/{netns}/{name}"


def _add_place(g, netns: int, kind: str, name: str, **extra) -> str:
    node = place_node(netns, kind, name)
    if node not in g:
        g.add_node(node, kind=kind, name=name, netns=netns, **extra)
    return node


def journey_steps(j: Journey, corr: Correlator):
    """(from_node_args, to_node_args, hop) for each hop of j, plus the end mark if it ended
    badly.  Node args are (netns, kind, name, extra attrs)."""
    v = verdict(j, corr)
    places = [(h.netns or j.netns, *h.place) for h in j.hops]
    if not places:
        dev = next((e.dev for e in j.events if e.dev), "")
        if dev:
            places = [(j.netns, "device", dev)]
    steps = []
    for a, b, hop in zip(places, places[1:], j.hops[1:]):
        steps.append((a, b, hop.ts))
    if places and (v.outcome in (DROPPED, IN_FLIGHT, INCOMPLETE) or v.failure):
        end = j.end
        if v.label:  # the words of the rule that decided it
            label = v.label + (f"\nat {end.func}" if end is not None else "")
        elif end is None:
            label = "no end seen"
        elif v.outcome == DROPPED:
            label = f"dropped: {end.reason or 'NOT_SPECIFIED'}\nat {end.func}"
        else:
            label = f"no reply\n(consumed by {end.func})"
        steps.append((places[-1], (j.netns, "end", label), end.ts if end is not None else j.last))
    return steps, v, places


def steps_graph(journeys, corr: Correlator) -> nx.MultiDiGraph:
    """Every hop of the journeys as its own edge, numbered in time order."""
    g = nx.MultiDiGraph()
    todo = []
    for j in journeys:
        steps, v, places = journey_steps(j, corr)
        for p in places:
            _add_place(g, *p)
        for a, b, ts in steps:
            todo.append((ts, j, a, b, v))
    todo.extend(_causes(journeys, corr))
    todo.sort(key=lambda t: t[0])
    for n, (ts, j, a, b, v) in enumerate(todo, start=1):
        u = _add_place(g, *a)
        w = _add_place(g, *b)
        role = j.role if v is not None else "cause"
        kind = j.conversation.kind if j.conversation is not None else ""
        g.add_edge(u, w, step=n, ts=ts, role=role, journey=j.id if v is not None else None,
                   outcome=v.outcome if v is not None else "", summary=j.summary, count=1, kind=kind)
    _mark_veth_pairs(g, corr)
    return g


def _causes(journeys, corr: Correlator):
    """Dashed links from where a request ended to where the packet it caused starts: the
    stack that built the echo reply, or the ICMP error, or the ARP reply."""
    chosen = {j.id for j in journeys}
    out = []
    for j in journeys:
        conv = j.conversation
        if conv is None or j.role not in ("reply", "error", "arp reply"):
            continue
        want = "arp request" if j.role == "arp reply" else "request"
        causes = [r for r in conv.with_role(want) if r.id in chosen and r.start <= j.start]
        if not causes or not j.hops:
            continue
        r = causes[-1]
        if r.hops:
            a = (r.hops[-1].netns or r.netns, *r.hops[-1].place)
        else:
            dev = next((e.dev for e in r.events if e.dev), "")
            if not dev:
                continue
            a = (r.netns, "device", dev)
        b = (j.hops[0].netns or j.netns, *j.hops[0].place)
        out.append((j.start, j, a, b, None))
    return out


def aggregate_graph(journeys, corr: Correlator) -> nx.MultiDiGraph:
    """Distinct hops per role with how many packets took them, the kinds of conversation
    they belong to and their outcomes."""
    g = nx.MultiDiGraph()
    todo = []
    for j in journeys:
        steps, v, places = journey_steps(j, corr)
        for p in places:
            _add_place(g, *p)
        todo.extend((j, a, b, v) for a, b, _ in steps)
    todo.extend((j, a, b, v) for _, j, a, b, v in _causes(journeys, corr))
    for j, a, b, v in todo:
        u = _add_place(g, *a)
        w = _add_place(g, *b)
        role = j.role if v is not None else "cause"
        if not g.has_edge(u, w, key=role):
            g.add_edge(u, w, key=role, role=role, count=0, kinds=set(), outcomes={})
        d = g.edges[u, w, role]
        d["count"] += 1
        if j.conversation is not None:
            d["kinds"].add(j.conversation.kind)
        if v is not None:
            d["outcomes"][v.outcome] = d["outcomes"].get(v.outcome, 0) + 1
    for _, _, d in g.edges(data=True):
        d["outcome"] = max(d["outcomes"], key=d["outcomes"].get) if d["outcomes"] else ""
        d["kind"] = ",".join(sorted(d["kinds"]))
    _mark_veth_pairs(g, corr)
    return g


def _mark_veth_pairs(g, corr: Correlator) -> None:
    """Devices that are two ends of one veth pair get a `peer` attribute: the pairs each
    namespace's context names, and a hop from a device of one namespace straight to a
    device of another (only a veth pair joins namespaces at the link layer)."""
    for _, d in g.nodes(data=True):
        if d["kind"] != "device":
            continue
        for i in corr.namespaces.get(d["netns"]).get("interfaces", []) or (
                corr.context.get("interfaces", []) if not corr.context.get("netns") else []):
            if i.get("name") == d["name"] and i.get("peer"):
                other = place_node(d["netns"], "device", i["peer"])
                if other in g:
                    d["peer"] = other
    for u, w in list(g.edges()):
        a, b = g.nodes[u], g.nodes[w]
        if a["kind"] == b["kind"] == "device" and a["netns"] != b["netns"]:
            a.setdefault("peer", w)
            b.setdefault("peer", u)


def path_of(g, journey_id: int) -> list[str]:
    """The node sequence one journey took in a steps graph (for tests and queries)."""
    edges = sorted((d["step"], u, w) for u, w, d in g.edges(data=True) if d.get("journey") == journey_id)
    if not edges:
        return []
    return [edges[0][1]] + [w for _, _, w in edges]
