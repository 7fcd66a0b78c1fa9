"""Graphviz diagrams of packet paths, in the spirit of the article's figure: each namespace a
cluster named like the trace names it (ip netns name, else netns:INODE), the protocol stack
a box inside it (a router's forwarding as its own place), a bridge as one box, the veth pair
as two linked devices, lo, the socket (client or server); numbered edges in the order the
packets took them, each conversation numbered on its own (A1, A2, ... B1, ...) and titled in
the legend, conversations that took the same steps drawn once with counts, the steps over
one hop the same way drawn as one cable; roles in different colours; a packet that ended
early ends in a red mark with its reason; a legend of only what is drawn.  The layout
follows the order packets first reached each place, replies drawn against it."""
from __future__ import annotations

import html
import math
import re
import shutil
from pathlib import Path

import graphviz

from vethtrace.tracer import safefile, untrusted
from vethtrace.tracer.correlate import Conversation, Correlator
from vethtrace.tracer.pathgraph import aggregate_graph, sequence_graph

ROLE_COLOURS = {"request": "#1f6fd1", "reply": "#1d9a4a", "error": "#d9730d", "arp request": "#8a4fc7",
                "arp reply": "#b07fe0", "nd solicit": "#8a4fc7", "nd advert": "#b07fe0", "packet": "#666666",
                "cause": "#999999"}
ROLE_LABELS = {"request": "echo request", "reply": "echo reply", "error": "ICMP error",
               "arp request": "ARP request", "arp reply": "ARP reply", "nd solicit": "neighbour solicitation",
               "nd advert": "neighbour advertisement", "packet": "other packet", "cause": "the stack answers"}
# TCP and UDP: requests are what the client sent, replies what the server sent
FLOW_LABELS = {"request": "client to server", "reply": "server to client"}


def role_label(role: str, kinds: set[str]) -> str:
    """The legend's words for a role, given the kinds of conversation drawn with it."""
    if role in FLOW_LABELS and kinds & {"tcp", "udp"}:
        flow = "TCP/UDP" if kinds >= {"tcp", "udp"} else "TCP" if "tcp" in kinds else "UDP"
        text = f"{flow}: {FLOW_LABELS[role]}"
        return f"{ROLE_LABELS[role]}; {text}" if "echo" in kinds else text
    return ROLE_LABELS[role]
STEP_LIMIT = 60  # up to this many journeys, always the step-by-step figure
SEQUENCE_LIMIT = 5000  # beyond this many, always the aggregate (the steps would cost as much to find)
SEQUENCES_SHOWN = 26   # more sequences than letters: the steps no longer read, aggregate


def _id(node: str) -> str:
    """Graphviz reads ':' in an edge endpoint as a port: keep ids to safe characters."""
    return re.sub(r"[^\w./-]", "_", node)


def _label(text: str, before: str = "") -> str:
    """A node label holding an untrusted name: shown as text, never as DOT or HTML.  Its
    line breaks (an end's "what\n(where)") stay line breaks; each line is made safe."""
    return graphviz.escape(before + "\n".join(untrusted.label(line) for line in text.split("\n")))


class DotMissing(RuntimeError):
    pass


def _netns_label(netns: int, corr: Correlator) -> str:
    return graphviz.escape(f"network namespace {untrusted.label(corr.namespaces.name(netns))}")


FORWARDERS = ("ip_forward", "ip6_forward")  # stack places where a namespace routes a packet on
STEP_LINES = 6  # step lines on one edge before the rest is said as a count


def _forward_label(node: str, g) -> str:
    """`ip_forward` and the devices it forwarded between (`ra ⇄ rb`)."""
    ends = sorted({g.nodes[x]["name"] for x in (*g.predecessors(node), *g.successors(node))
                   if g.nodes[x]["kind"] in ("device", "bridge")})
    between = " ⇄ ".join(ends[:3]) + (" …" if len(ends) > 3 else "")
    return _label(g.nodes[node]["name"] + (f"\nforwards {between}" if between else "\nforwards"), "router: ")


def _step_lines(steps) -> list[str]:
    """An edge's steps, one a line: `A1`, `B2 SYN`, `C3 ACK ×4`; many are cut with a count."""
    lines = [f"{tag}{n}" + (f" {name}" if name else "") + (f" ×{times}" if times > 1 else "")
             for tag, n, name, times in steps]
    if len(lines) > STEP_LINES:
        lines = lines[:STEP_LINES - 1] + [f"… {len(lines) - STEP_LINES + 1} more steps"]
    return lines


def _edge(dot, tail: str, head: str, back: bool, attrs: dict) -> None:
    """One edge; drawn backwards (dir=back) when it goes against the layout's order."""
    if back:
        attrs = {("arrowtail" if k == "arrowhead" else k): v for k, v in attrs.items()}
        attrs["dir"] = "back"
    dot.edge(_id(tail), _id(head), **attrs)


def to_dot(g, corr: Correlator, title: str = "", aggregate: bool = False,
           counted: int | None = None) -> graphviz.Digraph:
    """counted: the counts are the kernel's (events were lost), and this many packets went
    on paths not seen in detail (not drawn)."""
    dot = graphviz.Digraph("vethtrace", graph_attr={
        "rankdir": "LR", "fontname": "Helvetica", "fontsize": "12", "labelloc": "t", "label": graphviz.escape(untrusted.label(title)),
        "nodesep": "0.35", "ranksep": "0.6", "compound": "true"},
        node_attr={"fontname": "Helvetica", "fontsize": "11"}, edge_attr={"fontname": "Helvetica", "fontsize": "10"})
    order = {n: i for i, n in enumerate(g.nodes)}  # the order packets first reached each place
    by_ns: dict[int, list] = {}
    pairs: set[tuple[str, str]] = set()
    for node, d in g.nodes(data=True):
        by_ns.setdefault(d["netns"], []).append((node, d))
    # namespaces in the order packets reached them, so the figure reads from left to right
    for i, (netns, nodes) in enumerate(sorted(by_ns.items(), key=lambda kv: order[kv[1][0][0]])):
        with dot.subgraph(name=f"cluster_ns{i}") as ns:
            ns.attr(label=_netns_label(netns, corr), style="rounded,dashed", color="#888888", fontcolor="#555555")
            stack = [(n, d) for n, d in nodes if d["kind"] == "stack"]
            if stack:
                with ns.subgraph(name=f"cluster_stack{i}") as st:
                    st.attr(label="protocol stack", style="rounded,filled", fillcolor="#eef3fb", color="#9db4d6")
                    for n, d in stack:
                        if d["name"] in FORWARDERS:
                            st.node(_id(n), _forward_label(n, g), shape="box", style="rounded,filled,bold",
                                    fillcolor="#fdebd3", color="#d9730d")
                        else:
                            st.node(_id(n), _label(d["name"]), shape="box", style="rounded,filled", fillcolor="white")
            ports = _bridge_ports(netns, corr)
            for n, d in nodes:
                kind = d["kind"]
                if kind == "device":
                    what = ("loopback" if d["name"] == "lo" else "veth" if "peer" in d else "")
                    if d["name"] in ports:
                        what = (what + ", " if what else "") + f"port of {untrusted.label(ports[d['name']])}"
                    label = untrusted.label(d["name"]) + (f"\n({what})" if what else "")
                    ns.node(_id(n), graphviz.escape(label), shape="box", style="filled", fillcolor="#fff7d6", color="#c9a227")
                elif kind == "bridge":
                    ns.node(_id(n), _label(d["name"] + "\n(bridge)"), shape="box3d", style="filled",
                            fillcolor="#fdebd3", color="#d9730d")
                elif kind == "socket":
                    side = _side(n, g)
                    ns.node(_id(n), _label(d['name'] + (f"\n({side})" if side else ""), "socket\n"), shape="cds",
                            style="filled", fillcolor="#e3f4e8", color="#1d9a4a")
                elif kind == "end":
                    ns.node(_id(n), _label(d['name'], "✗ "), shape="octagon", style="filled", fillcolor="#fde2e1",
                            color="#c62828", fontcolor="#8e0000")
            # The veth pair: two devices wired to each other (here when both ends are).
            for n, d in nodes:
                peer = d.get("peer")
                if peer and g.nodes[peer]["netns"] == netns and (peer, n) not in pairs:
                    pairs.add((n, peer))
                    a, b = sorted((n, peer), key=order.get)
                    ns.edge(_id(a), _id(b), dir="none", style="bold", color="#c9a227", penwidth="3",
                            label="veth pair", fontcolor="#9a7a10", weight="10")
    # Pairs between namespaces, drawn outside the clusters (so no node moves into another).
    for n, d in g.nodes(data=True):
        peer = d.get("peer")
        if peer and g.nodes[peer]["netns"] != d["netns"] and (peer, n) not in pairs:
            pairs.add((n, peer))
            a, b = sorted((n, peer), key=order.get)
            dot.edge(_id(a), _id(b), dir="none", style="bold", color="#c9a227", penwidth="3",
                     label="veth pair", fontcolor="#9a7a10", weight="10")
    counts = [d.get("count", 1) for _, _, d in g.edges(data=True)]
    top = max(counts, default=1)
    cables: dict[tuple, list] = {}  # (tail, head, backwards) -> the step edges drawn there as one
    for u, w, d in g.edges(data=True):
        role = d.get("role", "packet")
        colour = ROLE_COLOURS.get(role, "#666666")
        attrs = {"color": colour, "fontcolor": colour}
        if role == "cause":
            attrs.update(style="dashed", arrowhead="empty")
        if aggregate:
            n = d["count"]
            attrs["label"] = f"×{n}"
            attrs["penwidth"] = f"{1 + 4 * math.log(n) / math.log(top) if top > 1 else 1.5:.2f}"
        elif "steps" in d:
            attrs["label"] = graphviz.escape("\n".join(_step_lines(d["steps"])))
            attrs["penwidth"] = "1.6"
        else:
            attrs["label"] = str(d["step"])
            attrs["penwidth"] = "1.6"
        ends = g.nodes[w]["kind"] == "end"
        if ends:
            attrs["color"] = attrs["fontcolor"] = "#c62828"
        # against the flow (a reply going back): laid out forward, arrow drawn backward, so
        # request and reply share one left-to-right order instead of knotting
        back = order[u] > order[w] and not ends
        tail, head = (w, u) if back else (u, w)
        if "steps" in d and role != "cause" and not ends and not aggregate:
            cables.setdefault((tail, head, back), []).append((min(d["steps"])[:2], colour, _step_lines(d["steps"]), attrs))
        else:
            _edge(dot, tail, head, back, attrs)
    for (tail, head, back), parts in cables.items():
        if len(parts) == 1:
            _edge(dot, tail, head, back, parts[0][3])
            continue
        # several roles over one hop the same way: one cable of parallel coloured lines, its
        # label's lines each in its line's colour (dot overlaps the labels of many parallel edges)
        parts.sort(key=lambda part: part[0])
        rows = "<br/>".join(f'<font color="{c}">{html.escape(line)}</font>' for _, c, lines, _ in parts for line in lines)
        _edge(dot, tail, head, back, {"color": ":".join(c for _, c, _, _ in parts), "label": f"<{rows}>",
                                      "penwidth": "1.6"})
    # the legend's roles: the edges drawn in their role's colour (an edge into an end mark is red)
    edges = [d for _, w, d in g.edges(data=True) if g.nodes[w]["kind"] != "end"]
    kinds = {k for d in edges for k in d.get("kinds", ())} | {d.get("kind", "") for d in edges if "kinds" not in d}
    _legend(dot, {d.get("role", "packet") for d in edges}, aggregate, kinds,
            any(d["kind"] == "end" for _, d in g.nodes(data=True)), g.graph.get("sequences", ()), counted)
    return dot


def _kinds(d) -> set:
    return set(d.get("kinds") or ()) or {d.get("kind", "")}


def _side(node: str, g) -> str:
    """A TCP/UDP socket's side: the server gets what the client sent (requests), the client
    the replies; "" when it is not a TCP/UDP socket or got both."""
    roles = {d.get("role") for _, _, d in g.in_edges(node, data=True) if _kinds(d) & {"tcp", "udp"}}
    return {frozenset({"request"}): "server", frozenset({"reply"}): "client"}.get(frozenset(roles), "")


def _bridge_ports(netns: int, corr: Correlator) -> dict[str, str]:
    """Device name -> the bridge it is a port of, as the namespace's recorded context says."""
    return {i["name"]: i["master"] for i in corr.namespaces.get(netns).get("interfaces", []) or ()
            if isinstance(i, dict) and isinstance(i.get("name"), str) and isinstance(i.get("master"), str)}


def sequence_title(owners) -> str:
    """The conversations one sequence of steps stands for, in words: a conversation's title;
    pings that took the same steps as one (`... id 7 seq 1–3 (3 exchanges, the same steps)`)."""
    first = owners[0]
    text = first.title if isinstance(first, Conversation) else first.summary
    if len(owners) == 1:
        return text
    seqs = [o.key[3] for o in owners if isinstance(o, Conversation) and o.kind == "echo"]
    if len(seqs) == len(owners) and text.rsplit(" seq ", 1)[-1] == str(seqs[0]):
        run = sorted(seqs)
        span = f"{run[0]}–{run[-1]}" if run == list(range(run[0], run[-1] + 1)) else ", ".join(map(str, run[:6])) + (
            " …" if len(run) > 6 else "")
        return f"{text.rsplit(' seq ', 1)[0]} seq {span} ({len(owners)} exchanges, the same steps)"
    more = "conversations" if isinstance(first, Conversation) else "packets"
    return f"{text} (and {len(owners) - 1} more {more}, the same steps)"


def _legend(dot, roles: set[str], aggregate: bool, kinds: set[str] = frozenset(), ends: bool = True,
            sequences=(), counted: int | None = None) -> None:
    """Only what is drawn: the roles of the edges (named for the kinds of conversation), the
    end mark if there is one, and the conversation each tagged sequence of steps stands for."""
    rows = "".join(f'<tr><td><font color="{ROLE_COLOURS[r]}">━━▶</font></td><td align="left">{role_label(r, kinds)}'
                   '</td></tr>' for r in ROLE_COLOURS if r in roles)
    if ends:
        rows += '<tr><td><font color="#c62828">✗</font></td><td align="left">where a packet stopped, and why</td></tr>'
    if aggregate and counted is not None:
        how = ("edge labels: packets that took the hop, as the kernel counted them (exact; events were lost, "
               "so each path is drawn from one packet seen in full)")
        if counted:
            how += f"; {counted} packets on paths not seen in detail are not drawn"
    elif aggregate:
        how = "edge labels: packets that took the hop"
    elif len(sequences) > 1:
        how = "edge labels: each conversation's steps in order (A1, A2, ...); ×N: N packets"
    else:
        how = "edge labels: order of the hops" + ("; ×N: N packets" if any(
            len(owners) > 1 for _, owners in sequences) else "")
    rows += f'<tr><td colspan="2" align="left"><font point-size="9">{how}</font></td></tr>'
    if len(sequences) > 1 or any(len(owners) > 1 for _, owners in sequences):
        for tag, owners in sequences:
            # untrusted words (addresses, program names) as text: escaped for an HTML-like label
            words = html.escape(untrusted.label(sequence_title(owners)), quote=True)
            mark = f"<b>{tag}</b>" if tag else ""  # graphviz refuses an empty <b></b>
            rows += f'<tr><td align="right">{mark}</td><td align="left">{words}</td></tr>'
    with dot.subgraph(name="cluster_legend") as lg:
        lg.attr(label="legend", style="rounded", color="#bbbbbb", fontcolor="#777777")
        lg.node("legend", f'<<table border="0" cellspacing="2">{rows}</table>>', shape="plaintext")


def build(journeys, corr: Correlator, title: str = "", aggregate: bool | None = None,
          exact=None) -> graphviz.Digraph:
    """The figure of these journeys: step by step (each conversation numbered), or with
    aggregate=True added up; None chooses: the steps while they stay readable (few journeys,
    or many that repeat a few sequences, as a flood of identical pings does).
    exact: (journeys, weights, unseen) of ui.exact.exact_journeys when events were lost: an
    aggregate then counts the kernel's packets on each path, drawn from journeys seen in full;
    with it, None chooses the aggregate (the steps of the survivors would not be the packets')."""
    journeys = list(journeys)
    if aggregate is None and exact is not None:
        aggregate = True
    g = None
    if aggregate is None:
        aggregate = len(journeys) > SEQUENCE_LIMIT
        if STEP_LIMIT < len(journeys) <= SEQUENCE_LIMIT:
            g = sequence_graph(journeys, corr)
            aggregate = len(g.graph["sequences"]) > SEQUENCES_SHOWN
    counted = None
    if aggregate and exact is not None:
        drawn, weights, unseen = exact
        losses, corr.losses = corr.losses, None  # each was seen in full: its verdict is as the kernel ended it
        try:
            g = aggregate_graph(drawn, corr, weights)
        finally:
            corr.losses = losses
        counted = unseen
    elif aggregate:
        g = aggregate_graph(journeys, corr)
    elif g is None:
        g = sequence_graph(journeys, corr)
    return to_dot(g, corr, title, aggregate, counted)


FORMATS = ("svg", "png", "pdf", "dot", "gv")
STDOUT_FORMATS = ("svg", "dot")


class DiagramError(RuntimeError):
    """The diagram cannot be drawn or written; one line says why."""


def output_format(path: str) -> str:
    """The format a name's suffix asks for (none, or '-' for standard output: SVG);
    DiagramError for a suffix graphviz is not asked to draw."""
    if path == "-":
        return "svg"
    fmt = Path(path).suffix.lstrip(".").lower() or "svg"
    if fmt not in FORMATS:
        raise DiagramError(f"{path}: say which format with the suffix: "
                           + ", ".join(f".{f}" for f in FORMATS) + " (or - for SVG on standard output)")
    return fmt


def write(dot: graphviz.Digraph, path: str) -> str:
    """Write the diagram in the format its suffix names (.svg, .png, .pdf, .dot; '-': SVG
    to standard output), through safefile.  Without the `dot` program, writes the .dot
    text beside it and raises DotMissing naming that file."""
    fmt = output_format(path)
    if fmt in ("dot", "gv"):
        safefile.write_bytes(path, dot.source.encode(), stdout_ok=True)
        return path
    if shutil.which("dot") is None:
        if path == "-":
            raise DotMissing("graphviz's `dot` program is not installed (apt-get install graphviz)")
        fallback = str(Path(path).with_suffix(".dot"))
        safefile.write_bytes(fallback, dot.source.encode())
        raise DotMissing(f"graphviz's `dot` program is not installed (apt-get install graphviz), "
                         f"so wrote {fallback} instead of {path}")
    safefile.check(path, stdout_ok=True)  # before dot runs: a bad name costs nothing
    try:
        data = dot.pipe(format=fmt)
    except (graphviz.CalledProcessError, BrokenPipeError, OSError) as exc:
        # dot refused the input (it closes the pipe early): say so instead of writing nothing
        detail = getattr(exc, "stderr", b"") or b""
        first = detail.decode(errors="replace").strip().splitlines()[:1]
        raise DiagramError(f"graphviz's dot could not draw {path}"
                           + (f": {untrusted.term(first[0])[:200]}" if first else "")) from None
    safefile.write_bytes(path, data, stdout_ok=True)
    return path


def render_conversation(conv, corr: Correlator, path: str) -> str:
    """One conversation (request + reply, or an ARP exchange) as a numbered figure."""
    return write(build(conv.journeys, corr, title=conv.title, aggregate=False), path)
