"""The path graph: places a packet can be, and the hops between them, as a networkx graph.

Nodes are places: a device in a namespace, a bridge forwarding between its ports, a
protocol handler of the stack (arp_rcv, icmp_rcv, ip_forward), a socket, or an end mark
(where a packet was dropped or left unanswered).  Every node belongs to one namespace
(its inode; corr.namespaces names it).
Edges are hops.  One model serves three views (the first for tests and queries):
  - `steps_graph(journeys)`: a MultiDiGraph, one edge per hop, numbered in the order the
    packets took them (a journey, a conversation, a short run);
  - `sequence_graph(journeys)`: what a diagram of several conversations draws: one edge per
    hop and role, carrying the numbered steps of every conversation that took it.  Each
    conversation is numbered on its own (A1, A2, ... B1, ...); conversations that took the
    same steps are one sequence (three pings, one row), and repeated identical packets of
    one conversation are one step with a count;
  - `aggregate_graph(journeys)`: a MultiDiGraph, one edge per distinct hop and role (an ARP
    request and an echo request over the same hop are two edges), with counts, and the
    stack's answers (the dashed "cause" links) counted the same way;
all carry the same node and edge attributes, so one renderer draws any.
A bridge device is one node, the bridge, whether it forwards between its ports or hands a
packet to its own namespace's stack; an end mark sits in the namespace where it happened.
"""
from __future__ import annotations

import networkx as nx

from .correlate import Conversation, Correlator, Journey
from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from .verdict import DROPPED, IN_FLIGHT, INCOMPLETE, verdict

FOLD_AFTER = 8  # a conversation with more distinct packets than this folds repeats anywhere, not only in a row

ROLES = ("request", "reply", "error", "arp request", "arp reply", "packet")


def place_node(netns: int, kind: str, name: str) -> str:
    return f"{kind}/{netns}/{name}"


def _add_place(g, netns: int, kind: str, name: str, **extra) -> str:
    node = place_node(netns, kind, name)
    if node not in g:
        g.add_node(node, kind=kind, name=name, netns=netns, **extra)
    return node


def _bridges(corr: Correlator, netns: int) -> set[str]:
    """Names of the bridge devices the recorded context lists in a namespace."""
    return {i.get("name") for i in corr.namespaces.get(netns).get("interfaces", []) or ()
            if isinstance(i, dict) and i.get("kind") == "bridge"}


def _place(corr: Correlator, netns: int, kind: str, name: str) -> tuple:
    """Node args of a place: a device that is a bridge is the bridge's node."""
    if kind == "device" and name in _bridges(corr, netns):
        kind = "bridge"
    return (netns, kind, name)


def journey_steps(j: Journey, corr: Correlator):
    """(from_node_args, to_node_args, hop) for each hop of j, plus the end mark if it ended
    badly.  Node args are (netns, kind, name, extra attrs)."""
    v = verdict(j, corr)
    places, times = [], []
    for h in j.hops:
        p = _place(corr, h.netns or j.netns, *h.place)
        if not places or places[-1] != p:  # br0 (bridge) then br0 handing it to its stack: one place
            places.append(p)
            times.append(h.ts)
    if not places:
        dev = next((e.dev for e in j.events if e.dev), "")
        if dev:
            places = [_place(corr, j.netns, "device", dev)]
    steps = []
    seen = set(places[:1])
    for a, b, ts in zip(places, places[1:], times[1:]):
        # a place the packet already passed is a copy branching there (a bridge floods a
        # broadcast to its ports and its own stack): no hop from wherever the other copy was
        if b not in seen:
            steps.append((a, b, ts))
            seen.add(b)
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
        # the mark sits where the packet stopped (a bridge port's drop is in the bridge's namespace)
        where = end.netns if end is not None and end.netns else places[-1][0]
        steps.append((places[-1], (where, "end", label), end.ts if end is not None else j.last))
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


def step_name(j: Journey) -> str:
    """What a packet is in its conversation where its role's colour does not say it: a TCP
    segment (SYN, SYN-ACK, ACK, data N B, FIN, RST), a UDP datagram's size, an ICMP error's
    type; "" for an echo or ARP packet (the colour says it all)."""
    p = j.pkt
    if p is None:
        return ""
    if p.is_tcp and p.tcp_flags is not None:
        f = p.tcp_flags
        if f & TCP_RST:
            return "RST"
        if f & TCP_SYN:
            return "SYN-ACK" if f & TCP_ACK else "SYN"
        parts = [f"data {p.payload} B"] if p.payload else []
        if f & TCP_FIN:
            parts.append("FIN")
        return "+".join(parts) or "ACK"
    if p.is_udp and p.payload is not None:
        return f"data {p.payload} B"
    if j.role == "error":
        return p.icmp_name()
    return ""


def _fold(items: list) -> tuple:
    """A conversation's packets as ((story of one packet, times), ...): identical packets in a
    row are one; a long conversation (a TCP transfer) folds its repeats wherever they are."""
    out: list[list] = []
    for story in items:
        if out and out[-1][0] == story:
            out[-1][1] += 1
        else:
            out.append([story, 1])
    if len(out) > FOLD_AFTER:
        merged: dict = {}
        for story, times in out:
            merged[story] = merged.get(story, 0) + times
        out = [[story, times] for story, times in merged.items()]
    return tuple((story, times) for story, times in out)


def sequence_tags(n: int) -> list[str]:
    """A, B, ..., Z, AA, AB, ...: one per sequence ("" for a lone one: the article's 1, 2, 3)."""
    if n == 1:
        return [""]
    tags = []
    for i in range(n):
        tag = ""
        i += 1
        while i:
            i, r = divmod(i - 1, 26)
            tag = chr(65 + r) + tag
        tags.append(tag)
    return tags


def sequence_graph(journeys, corr: Correlator) -> nx.MultiDiGraph:
    """One edge per hop and role; its `steps` are (tag, number, name, packets) of each
    conversation's steps over it.  g.graph["sequences"]: [(tag, [conversation or journey,
    ...])] in the order they started: the conversations drawn as each tagged sequence."""
    journeys = sorted(journeys, key=lambda j: (j.start, j.id))
    g = nx.MultiDiGraph()
    causes = {j.id: (a, b) for _, j, a, b, _ in _causes(journeys, corr)}
    convs: dict = {}  # conversation (or lone journey) -> the story of each of its packets
    found = [journey_steps(j, corr) for j in journeys]
    _add_places(g, journeys, found)
    for j, (steps, _, places) in zip(journeys, found):
        own = [(a, b, j.role or "packet") for a, b, _ in steps]
        if j.id in causes:
            own.insert(0, (*causes[j.id], "cause"))
        owner = j.conversation if j.conversation is not None else j
        convs.setdefault(owner, []).append((j.role, step_name(j), tuple(own)))
    stories: dict[tuple, list] = {}  # conversations that took the same steps: one sequence
    for owner, items in convs.items():
        stories.setdefault(_fold(items), []).append(owner)
    g.graph["sequences"] = []
    drawn = [(story, owners) for story, owners in stories.items() if any(own for (_, _, own), _ in story)]
    drawn.sort(key=lambda kept: _chore(kept[1][0]))  # the conversations asked for first, housekeeping last
    for tag, (story, owners) in zip(sequence_tags(len(drawn)), drawn):
        n = 0
        for (role, name, own), times in story:
            packets = times * len(owners)
            for a, b, step_role in own:
                n += 1
                u, w = _add_place(g, *a), _add_place(g, *b)
                if not g.has_edge(u, w, key=step_role):
                    g.add_edge(u, w, key=step_role, role=step_role, steps=[], count=0, kinds=set())
                d = g.edges[u, w, step_role]
                d["steps"].append((tag, n, "" if step_role == "cause" else name, packets))
                d["count"] += packets
                d["kinds"].update(o.kind for o in owners if isinstance(o, Conversation))
        g.graph["sequences"].append((tag, owners))
    for _, _, d in g.edges(data=True):
        d["kind"] = ",".join(sorted(d["kinds"]))
    _mark_veth_pairs(g, corr)
    return g


HOUSEKEEPING = ("router", "other")  # conversation kinds nobody asked for (IPv6 reports, IGMP, ...)


def _chore(owner) -> bool:
    """Is this conversation (or lone journey) housekeeping rather than what was asked for?"""
    return not isinstance(owner, Conversation) or owner.kind in HOUSEKEEPING


def _add_places(g, journeys, found) -> None:
    """The journeys' places as nodes, in the order packets first reached them (the layout
    reads in that order): the conversations' packets first, housekeeping after."""
    chores = [kept for kept in zip(journeys, found)
              if _chore(kept[0].conversation if kept[0].conversation is not None else kept[0])]
    ids = {j.id for j, _ in chores}
    for j, (_, _, places) in [kept for kept in zip(journeys, found) if kept[0].id not in ids] + chores:
        for p in places:
            _add_place(g, *p)


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
        b = _place(corr, j.hops[0].netns or j.netns, *j.hops[0].place)
        if r.hops:
            # where the request ended in the namespace that answered (a flooded request also
            # ends elsewhere: the bridge's own stack saw a copy)
            h = next((h for h in reversed(r.hops) if (h.netns or r.netns) == b[0]), r.hops[-1])
            a = _place(corr, h.netns or r.netns, *h.place)
        else:
            dev = next((e.dev for e in r.events if e.dev), "")
            if not dev:
                continue
            a = _place(corr, r.netns, "device", dev)
        out.append((j.start, j, a, b, None))
    return out


def aggregate_graph(journeys, corr: Correlator, weights: dict | None = None) -> nx.MultiDiGraph:
    """Distinct hops per role with how many packets took them, the kinds of conversation
    they belong to and their outcomes.  weights: journey id -> the packets it stands for
    (the kernel's count of its path, tracer.counters), else 1 each."""
    g = nx.MultiDiGraph()
    todo = []
    found = [journey_steps(j, corr) for j in journeys]
    _add_places(g, journeys, found)
    for j, (steps, v, _) in zip(journeys, found):
        todo.extend((j, a, b, v) for a, b, _ in steps)
    todo.extend((j, a, b, v) for _, j, a, b, v in _causes(journeys, corr))
    for j, a, b, v in todo:
        u = _add_place(g, *a)
        w = _add_place(g, *b)
        role = (j.role or "packet") if v is not None else "cause"
        if not g.has_edge(u, w, key=role):
            g.add_edge(u, w, key=role, role=role, count=0, kinds=set(), outcomes={})
        d = g.edges[u, w, role]
        n = weights.get(j.id, 1) if weights else 1
        d["count"] += n
        if j.conversation is not None:
            d["kinds"].add(j.conversation.kind)
        if v is not None:
            d["outcomes"][v.outcome] = d["outcomes"].get(v.outcome, 0) + n
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
