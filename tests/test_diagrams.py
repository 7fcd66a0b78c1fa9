"""Path graphs, diagrams, pcapng export and the recording schema, on recorded traces of
the article's experiments."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import COMPAT1, ROOT, TRACES
from experiments import correlate
from vethtrace.tracer import recording, sources
from vethtrace.tracer.pathgraph import aggregate_graph, path_of, steps_graph
from vethtrace.ui import diagram

GOLDEN = ROOT / "tests" / "golden"


def load(name):
    rec = recording.read(str(TRACES / f"{name}.jsonl"))
    return rec, correlate(rec)


def label(g, node):
    d = g.nodes[node]
    return f"{d['kind']}:{d['name']}"


def test_exp2_graph_follows_the_article():
    _, corr = load("exp2")
    g = steps_graph(corr.journeys, corr)
    conv = next(c for c in corr.conversations if c.kind == "echo")
    (req,) = conv.with_role("request")
    (rep,) = conv.with_role("reply")
    assert [label(g, n) for n in path_of(g, req.id)] == ["device:veth0", "device:veth1", "stack:icmp_rcv"]
    assert [label(g, n) for n in path_of(g, rep.id)] == ["device:lo", "stack:icmp_rcv", "socket:ping"]
    # The stack's answer links the request's end to the reply's start.
    causes = [(label(g, u), label(g, w)) for u, w, d in g.edges(data=True) if d["role"] == "cause"]
    assert ("stack:icmp_rcv", "device:lo") in causes
    # Steps are numbered 1..N in time order without gaps.
    steps = sorted(d["step"] for _, _, d in g.edges(data=True))
    assert steps == list(range(1, len(steps) + 1))
    ts = [d["ts"] for _, _, d in sorted(g.edges(data=True), key=lambda e: e[2]["step"])]
    assert ts == sorted(ts)
    # veth0 and veth1 are marked as one pair.
    veth0 = next(n for n, d in g.nodes(data=True) if d["name"] == "veth0")
    assert g.nodes[g.nodes[veth0]["peer"]]["name"] == "veth1"


def test_exp1_aggregate_counts_and_end_marks():
    _, corr = load("exp1")
    g = aggregate_graph(corr.journeys, corr)
    by_label = {(label(g, u), label(g, w)): d for u, w, d in g.edges(data=True)}
    assert by_label[("device:veth0", "device:veth1")]["count"] == 3
    assert by_label[("device:veth1", "stack:arp_rcv")]["count"] == 3
    ends = {d["name"]: n for n, d in g.nodes(data=True) if d["kind"] == "end"}
    assert any("NEIGH_FAILED" in name for name in ends)
    assert any("no reply" in name and "arp_process" in name for name in ends)
    dropped = next(n for name, n in ends.items() if "NEIGH_FAILED" in name)
    assert sum(d["count"] for _, _, d in g.in_edges(dropped, data=True)) == 2  # both pings


def test_dot_structure():
    _, corr = load("exp2")
    conv = next(c for c in corr.conversations if c.kind == "echo")
    src = diagram.build(conv.journeys, corr, title=conv.title).source
    for needle in ("cluster_ns0", "cluster_stack0", "cluster_legend", "protocol stack", "veth pair",
                   "socket\nping", 'label="network namespace'):
        assert needle in src, needle
    assert src.count(" -> ") >= 6


@pytest.mark.parametrize("name,conv_id", [("exp1", None), ("exp2", 2), ("exp2-default", None), ("exp3", None)])
def test_dot_matches_reviewed_golden(name, conv_id):
    """Golden DOT files were produced by this code, rendered to PNG, reviewed by eye, then
    frozen, normalised (no inodes or lab names).  Regenerate with VETHTRACE_UPDATE_GOLDEN=1
    and review again."""
    _, corr = load(name)
    journeys = next(c for c in corr.conversations if c.id == conv_id).journeys if conv_id else corr.journeys
    src = normalised(diagram.build(journeys, corr, title=name).source)
    path = GOLDEN / f"{name}.dot"
    if os.environ.get("VETHTRACE_UPDATE_GOLDEN"):
        path.write_text(src)
    assert src == path.read_text()


def normalised(dot: str) -> str:
    """DOT without what differs from one recording run to the next (namespace inodes, lab
    namespace names), so re-recorded traces keep matching the reviewed diagrams."""
    dot = re.sub(r"\b40265\d{5,}\b", "NETNS", dot)
    return re.sub(r"\bvethtrace-[A-Za-z0-9][A-Za-z0-9-]*", "NETNS-NAME", dot)


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "vethtrace", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def test_render_svg_png_and_without_dot(tmp_path):
    if shutil.which("dot") is None:
        pytest.fail("graphviz is not installed (scripts/setup installs it)")
    for suffix in ("svg", "png"):
        out = tmp_path / f"flow.{suffix}"
        res = run("render", str(TRACES / "exp2.jsonl"), "-o", str(out), "--conversation", "2")
        assert res.returncode == 0, res.stderr
        head = out.read_bytes()[:200]
        assert (b"<svg" in head or b"<?xml" in head) if suffix == "svg" else head.startswith(b"\x89PNG")
    env = dict(os.environ, PATH=str(tmp_path / "nothing-here"))
    res = run("render", str(TRACES / "exp1.jsonl"), "-o", str(tmp_path / "x.svg"), env=env)
    assert res.returncode == 2 and "dot" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert (tmp_path / "x.dot").read_text().startswith("digraph")
    res = run("render", str(TRACES / "exp1.jsonl"), "-o", str(tmp_path / "y.svg"), "--conversation", "99")
    assert res.returncode == 2 and "no conversation 99" in res.stderr


def tshark_rows(path):
    res = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-E", "separator=/t",
                          "-e", "frame.interface_name", "-e", "frame.comment", "-e", "_ws.col.Info"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return [line.split("\t", 2) for line in res.stdout.splitlines() if line]


def test_pcapng_opens_in_tshark(tmp_path):
    if shutil.which("tshark") is None:
        pytest.fail("tshark is not installed (scripts/setup installs it)")
    out = tmp_path / "exp2.pcapng"
    res = run("export", str(TRACES / "exp2.jsonl"), "--pcapng", str(out))
    assert res.returncode == 0, res.stderr
    rows = tshark_rows(out)
    by_iface = {}
    for iface, comment, info in rows:
        # interfaces are named NAMESPACE/DEVICE (issue 9); this trace has one namespace
        ns, _, dev = iface.rpartition("/")
        assert ns.startswith("vethtrace-"), iface
        by_iface.setdefault(dev, []).append((comment, info))
    assert {"veth0", "veth1", "lo"} <= set(by_iface)
    # Wireshark's own dissection agrees with the article: echo requests cross veth0/veth1,
    # echo replies cross lo; every record says which hop and which verdict it belongs to.
    assert any("Echo (ping) request" in info for _, info in by_iface["veth0"])
    assert any("Echo (ping) request" in info for _, info in by_iface["veth1"])
    assert not any("Echo (ping) reply" in info for _, info in by_iface["veth0"] + by_iface["veth1"])
    assert any("Echo (ping) reply" in info for _, info in by_iface["lo"])
    assert all(c.startswith("vethtrace: ") and "verdict: " in c for c, _ in sum(by_iface.values(), []))
    assert any("Who has 192.168.2.1" in info for _, info in by_iface["veth0"])


def test_pcapng_names_each_namespace_device(tmp_path):
    """The bridge lab's two veth0 are two interfaces, each named with its namespace."""
    if shutil.which("tshark") is None:
        pytest.fail("tshark is not installed (scripts/setup installs it)")
    out = tmp_path / "bridge.pcapng"
    res = run("export", str(TRACES / "netns-bridge.jsonl"), "--pcapng", str(out))
    assert res.returncode == 0, res.stderr
    names = {ns["name"] for ns in recording.read(str(TRACES / "netns-bridge.jsonl")).namespaces}
    ifaces = {iface for iface, _, _ in tshark_rows(out)}
    veth0 = {i for i in ifaces if i.endswith("/veth0")}
    assert len(veth0) == 2 and {i.rsplit("/", 1)[0] for i in veth0} <= names, ifaces
    assert {i.rsplit("/", 1)[1] for i in ifaces} == {"veth0", "a1", "b1", "br0", "(socket)"}, ifaces


def test_schema_validates_every_recorded_line(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    res = run("schema")
    schema = json.loads(res.stdout)
    validator = jsonschema.Draft202012Validator(schema)
    for trace in sorted([*TRACES.glob("*.jsonl"), *COMPAT1.glob("*.jsonl")]):  # as recorded, and rewritten in format 2
        rec = recording.read(str(trace))
        v2 = tmp_path / trace.name
        recording.write_file(str(v2), recording.header(rec.context, "tp_btf"), rec.events, 0)
        for path in (trace, v2):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                errors = list(validator.iter_errors(json.loads(line)))
                assert not errors, f"{path}:{n}: {errors[0].message}"
    assert list(validator.iter_errors({"ts": 1}))  # an event needs its kind
    row = json.loads(v2.read_text().splitlines()[1])
    assert not list(validator.iter_errors(row))
    assert list(validator.iter_errors(row[:-1]))  # a row needs every column
    assert list(validator.iter_errors([*row[:1], "xmit?", *row[2:]]))  # and a known kind
    head = json.loads(v2.read_text().splitlines()[0])
    assert not list(validator.iter_errors(head))
    del head["fields"]
    assert list(validator.iter_errors(head))  # a format 2 header names its columns


@pytest.mark.parametrize("name", ["exp2", "proto-tcp-closed", "proto-udp-closed"])
def test_pcapng_has_no_made_up_frames_and_knows_directions(tmp_path, name):
    """Frees are not records; copies from the IP header are raw IP, not behind an invented
    Ethernet header; tshark reads each transmit as sent and each netif_rx/receive as received."""
    if shutil.which("tshark") is None:
        pytest.fail("tshark is not installed (scripts/setup installs it)")
    out = tmp_path / f"{name}.pcapng"
    res = run("export", str(TRACES / f"{name}.jsonl"), "--pcapng", str(out))
    assert res.returncode == 0, res.stderr
    got = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-E", "separator=/t",
                          "-e", "frame.protocols", "-e", "frame.p2p_dir", "-e", "frame.comment"],
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    rows = [line.split("\t", 2) for line in got.stdout.splitlines() if line]
    _, corr = load(name)
    hops = [e for j in corr.journeys for e in j.events if e.data and e.kind not in ("kfree", "consume")]
    assert len(rows) == len(hops) and any(e.kind in ("kfree", "consume") for j in corr.journeys for e in j.events)
    kinds = {"xmit": "0", "netif_rx": "1", "receive": "1"}  # p2p_dir: 0 sent, 1 received
    for protocols, direction, comment in rows:
        kind = comment.split()[1]
        assert kind not in ("kfree", "consume"), comment
        assert direction == kinds.get(kind, ""), (kind, direction)
        if kind in kinds or kind == "deliver":  # a socket's copy starts at the IP header
            assert protocols.startswith("eth:" if kind in kinds else "raw:ip"), (kind, protocols)
    assert {c.split()[1] for _, _, c in rows} >= {"xmit", "netif_rx", "receive"}


def test_aggregate_edges_are_per_role_with_the_stacks_answers():
    """`render --all`: an ARP request and an echo request over the same hop are two edges,
    each in its role's colour; the stack's answer (icmp_rcv -> lo) is drawn, counted."""
    _, corr = load("exp2")
    g = aggregate_graph(corr.journeys, corr)
    hop = {(d["role"], d["count"]) for u, w, d in g.edges(data=True)
           if (label(g, u), label(g, w)) == ("device:veth0", "device:veth1")}
    assert hop == {("arp request", 1), ("request", 2)}
    causes = {(label(g, u), label(g, w)): d["count"] for u, w, d in g.edges(data=True) if d["role"] == "cause"}
    assert causes[("stack:icmp_rcv", "device:lo")] == 2
    src = diagram.build(corr.journeys, corr, aggregate=True).source
    veth = [line for line in src.splitlines() if re.search(r"veth0\S* -> \S*veth1", line)]
    assert {diagram.ROLE_COLOURS["arp request"], diagram.ROLE_COLOURS["request"]} <= {
        m for line in veth for m in re.findall(r'color="(#\w+)"', line)}


@pytest.mark.parametrize("name", ["exp1", "exp2", "proto-tcp-listen", "proto-udp-closed", "proto-nft-drop"])
def test_aggregate_legend_lists_only_what_is_drawn(name):
    _, corr = load(name)
    g = aggregate_graph(corr.journeys, corr)
    # an edge into an end mark is drawn red, not in its role's colour
    drawn = {d["role"] for _, w, d in g.edges(data=True) if g.nodes[w]["kind"] != "end"}
    kinds = {k for _, w, d in g.edges(data=True) for k in d["kinds"] if g.nodes[w]["kind"] != "end"}
    legend = next(line for line in diagram.build(corr.journeys, corr, aggregate=True).source.splitlines()
                  if "<table" in line)
    for role in diagram.ROLE_COLOURS:
        words = diagram.role_label(role, kinds) if role in drawn else diagram.ROLE_LABELS[role]
        assert (words in legend) == (role in drawn), (role, drawn)
    # TCP and UDP conversations are not called echo requests
    assert ("echo request" in legend) == ("request" in drawn and "echo" in kinds)


# -- the diagram as graphviz lays it out: clusters, bridges, routers, numbering, labels ---------
# These read the DOT through graphviz itself (`dot -Tjson`): which node sits in which cluster,
# where each label lands; the recording's header (namespaces, interfaces, sysctls) and events
# are the witness for what should be there.
ALL_TRACES = sorted(p.stem for p in TRACES.glob("*.jsonl"))
MULTI = ["netns-two-netns", "netns-bridge", "netns-router", "proto-tcp-listen", "proto-tcp-closed",
         "proto-udp-closed", "proto-ipv6-ping", "proto-nft-drop", "exp1", "exp2", "exp3"]


def laid_out(src: str) -> dict:
    res = subprocess.run(["dot", "-Tjson"], input=src.encode(), capture_output=True)
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)


def text_of(label: str) -> str:
    """An edge or node label as it reads: an HTML-like label's lines without their markup."""
    if "<font" in label or "<br/>" in label or "<table" in label:
        label = html.unescape(re.sub(r"<[^>]*>", "", label.replace("<br/>", "\n").replace("</tr>", "\n")))
    return label


def namespaces_of(rec) -> dict[int, str]:
    """inode -> name, as the recording's header names them."""
    return {ns["netns"]: ns["name"] for ns in (rec.namespaces or [rec.context])}


def clusters(layout) -> dict[str, tuple[str, set[str]]]:
    """Top-level namespace cluster -> (label, names of the nodes inside it, nested too)."""
    objs = layout["objects"]
    return {o["name"]: (o.get("label", ""), {objs[i]["name"] for i in o.get("nodes", [])})
            for o in objs if o["name"].startswith("cluster_ns")}


def node_netns(name: str) -> int | None:
    m = re.match(r"(?:device|stack|socket|bridge|end)/(\d+)/", name)
    return int(m.group(1)) if m else None


def drawn(name: str, aggregate: bool = False):
    rec, corr = sources.replay(str(TRACES / f"{name}.jsonl"))  # as `vethtrace render` reads it
    return rec, corr, laid_out(diagram.build(corr.journeys, corr, title=name, aggregate=aggregate).source)


@pytest.mark.parametrize("name", ALL_TRACES)
def test_each_namespace_is_one_cluster_with_its_name(name):
    rec, _, layout = drawn(name)
    names = namespaces_of(rec)
    by_inode: dict[int, set[str]] = {}
    for cluster, (label, nodes) in clusters(layout).items():
        inodes = {node_netns(n) for n in nodes} - {None}
        assert len(inodes) == 1, (cluster, inodes)  # one namespace a cluster
        (inode,) = inodes
        assert inode not in by_inode, f"namespace {inode} drawn as two clusters"
        by_inode[inode] = nodes
        assert label == f"network namespace {names[inode]}", (label, names[inode])
    # every place of the diagram is inside its namespace's cluster
    places = {o["name"] for o in layout["objects"] if node_netns(o["name"]) is not None}
    assert places and places == set().union(*by_inode.values())


def test_bridge_is_one_node_inside_its_namespace_with_its_ports():
    rec, _, layout = drawn("netns-bridge")
    (home, bridge), = [(ns["netns"], i["name"]) for ns in rec.namespaces for i in ns["interfaces"]
                       if i.get("kind") == "bridge"]
    ports = {i["name"] for ns in rec.namespaces if ns["netns"] == home for i in ns["interfaces"]
             if i.get("master") == bridge}
    assert len(ports) == 2
    objs = layout["objects"]
    named = [o["name"] for o in objs if node_netns(o["name"]) == home and o["name"].endswith(f"/{bridge}")]
    assert len(named) == 1, named  # one node for the bridge device, forwarding or local
    (cluster,) = [nodes for _, nodes in clusters(layout).values() if named[0] in nodes]
    assert {f"device/{home}/{p}" for p in ports} <= cluster
    # it forwards between its ports: edges join it with each port
    index = {o["_gvid"]: o["name"] for o in objs}
    joined = {index[e["tail"]] if index[e["head"]] == named[0] else index[e["head"]] for e in layout["edges"]
              if named[0] in (index[e["tail"]], index[e["head"]])}
    assert {f"device/{home}/{p}" for p in ports} <= joined
    # the request dropped by the bridge port's STP state is marked in the bridge's namespace
    where = {ev.netns for ev in rec.events if ev.kind == "kfree" and ev.reason == "BRIDGE_INGRESS_STP_STATE"}
    assert where == {home}
    (mark,) = [o["name"] for o in objs if o["name"].startswith("end/") and "BRIDGE_INGRESS_STP_STATE" in o.get("label", "")]
    assert node_netns(mark) == home and mark in cluster


def test_router_namespace_forwards_between_its_devices():
    rec, _, layout = drawn("netns-router")
    (router,) = [ns for ns in rec.namespaces if ns["sysctl"]["ipv4"]["ip_forward"] == 1]
    devices = {f"device/{router['netns']}/{i['name']}" for i in router["interfaces"] if i["name"] != "lo"}
    objs = layout["objects"]
    index = {o["_gvid"]: o["name"] for o in objs}
    into: dict[str, set] = {}
    out: dict[str, set] = {}
    for e in layout["edges"]:
        if "dashed" in e.get("style", "") or e.get("dir") == "none":
            continue  # the stack answering, the veth pair: not a packet passing
        a, b = index[e["tail"]], index[e["head"]]
        if e.get("dir") == "back":
            a, b = b, a
        out.setdefault(a, set()).add(b)
        into.setdefault(b, set()).add(a)
    # a place of its stack that packets enter from one of its devices and leave by the other
    forwarders = [n for n in into if n.startswith(f"stack/{router['netns']}/")
                  and any(into[n] & {d} and out.get(n, set()) & (devices - {d}) for d in devices)]
    assert len(forwarders) == 1, forwarders
    assert into[forwarders[0]] == out[forwarders[0]] == devices  # both ways
    (cluster,) = [nodes for _, nodes in clusters(layout).values() if forwarders[0] in nodes]
    assert devices <= cluster


def steps_of(layout) -> list[tuple[str, int]]:
    """(tag, number) of every step written on an edge."""
    out = []
    for e in layout["edges"]:
        for line in text_of(e.get("label", "")).split("\n"):
            m = re.match(r"([A-Z]*)(\d+)\b", line)
            if m:
                out.append((m.group(1), int(m.group(2))))
    return out


@pytest.mark.parametrize("name", MULTI)
def test_each_conversation_is_numbered_on_its_own(name):
    """No step number is written twice; each sequence counts 1..N without gaps; with several
    conversations every step says whose it is, and the legend names each sequence once."""
    rec, corr, layout = drawn(name)
    steps = steps_of(layout)
    assert steps and len(steps) == len(set(steps)), sorted(steps)
    tags: dict[str, list[int]] = {}
    for tag, n in steps:
        tags.setdefault(tag, []).append(n)
    for tag, numbers in tags.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), (tag, sorted(numbers))
    with_hops = [c for c in corr.conversations if any(len(j.hops) > 1 or j.end for j in c.journeys)]
    if len(with_hops) > 1:
        assert "" not in tags
        legend = text_of(next(o for o in layout["objects"] if o["name"] == "legend")["label"])
        for tag in tags:
            assert len(re.findall(rf"^{tag}(?=\S)", legend, re.M)) == 1, (tag, legend)
    assert len(tags) <= len(corr.conversations)


def test_pings_that_took_the_same_steps_are_one_sequence():
    """exp2's two echo exchanges took the same path: one sequence, each of its steps counted
    twice; the ARP exchange is another."""
    _, corr, layout = drawn("exp2")
    tags = {tag for tag, _ in steps_of(layout)}
    assert len(tags) == 2
    echo = [c for c in corr.conversations if c.kind == "echo"]
    assert len(echo) == 2
    counts = [text_of(e["label"]) for e in layout["edges"] if "×2" in text_of(e.get("label", ""))]
    assert len(counts) >= 5  # request 2 hops, the stack's answer, reply 2 hops


@pytest.mark.parametrize("name", ALL_TRACES)
@pytest.mark.parametrize("aggregate", [False, True], ids=["steps", "all"])
def test_edge_labels_do_not_overlap(name, aggregate):
    """Where graphviz put each edge label, its box (from its lines and font size) overlaps no
    other label and no node."""
    _, _, layout = drawn(name, aggregate)
    boxes = []
    for e in layout["edges"]:
        if "lp" not in e:
            continue
        x, y = map(float, e["lp"].split(","))
        lines = text_of(e["label"]).split("\n")
        size = float(e.get("fontsize", 14))
        w, h = 0.55 * size * max(map(len, lines)), 1.15 * size * len(lines)
        boxes.append((text_of(e["label"]), x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    nodes = []
    for o in layout["objects"]:
        if "pos" in o and "width" in o:
            x, y = map(float, o["pos"].split(","))
            w, h = float(o["width"]) * 72, float(o["height"]) * 72
            nodes.append((o["name"], x - w / 2, y - h / 2, x + w / 2, y + h / 2))

    def meet(a, b):
        return a[1] + 1 < b[3] and b[1] + 1 < a[3] and a[2] + 1 < b[4] and b[2] + 1 < a[4]
    clashes = [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1:] + nodes if meet(a, b)]
    assert not clashes


@pytest.mark.parametrize("name", ALL_TRACES)
@pytest.mark.parametrize("aggregate", [False, True], ids=["steps", "all"])
def test_legend_colours_are_the_colours_drawn(name, aggregate):
    """The legend's arrows are exactly the colours of the edges drawn (less the red of the
    edges into end marks and the veth pair's gold), whatever their words."""
    _, _, layout = drawn(name, aggregate)
    legend = next(o for o in layout["objects"] if o["name"] == "legend")["label"]
    listed = set(re.findall(r'<font color="(#\w+)">━━▶', legend))
    colours = {c for e in layout["edges"] for c in e.get("color", "").split(":")} - {"#c62828", "#c9a227"}
    assert listed == colours
    assert ("#c62828" in {e.get("color") for e in layout["edges"]}) == ("✗" in text_of(legend))


@pytest.mark.parametrize("name", ["proto-tcp-listen", "proto-tcp-closed"])
def test_tcp_steps_are_named_for_their_segments(name):
    """The segments' kinds on the edges are those tcpdump's flag letters of the packets say
    (S: SYN, S.: SYN-ACK, F: FIN, R: RST), and nothing is called an echo request."""
    from vethtrace.tracer.packet import tcp_flag_text
    rec, corr, layout = drawn(name)
    letters = {tcp_flag_text(j.pkt.tcp_flags) for c in corr.conversations if c.kind == "tcp" for j in c.journeys}
    want = {w for f, w in (("S", "SYN"), ("S.", "SYN-ACK")) if f in letters}
    want |= {"FIN" for f in letters if "F" in f} | {"RST" for f in letters if "R" in f}
    words = {w for e in layout["edges"] for w in re.findall(r"\b(SYN-ACK|SYN|FIN|RST)\b", text_of(e.get("label", "")))}
    assert want and words == want
    legend = text_of(next(o for o in layout["objects"] if o["name"] == "legend")["label"])
    assert "echo" not in legend


def test_hostile_program_name_in_the_legend_stays_text(tmp_path):
    """A program name (here the owner of an error queue, which titles its sequence) crafted to
    close the legend's HTML and add a node: graphviz reads it as text."""
    hostile = '</td></tr></table>>]; injected [shape=box]; x [label=<<b>'
    lines = (TRACES / "proto-mtu.jsonl").read_text().splitlines()
    head = json.loads(lines[0])
    rows = []
    for line in lines[1:]:
        row = json.loads(line)
        kind = row.get("kind") if isinstance(row, dict) else row[head["fields"].index("kind")]
        if kind == "deliver":
            if isinstance(row, dict):
                row["comm"] = hostile
            else:
                row[head["fields"].index("comm")] = hostile
        rows.append(json.dumps(row))
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join([lines[0], *rows]) + "\n")
    rec = recording.read(str(path))
    corr = correlate(rec)
    layout = laid_out(diagram.build(corr.journeys, corr, title="x").source)
    assert "injected" not in {o["name"] for o in layout["objects"]}
    legend = text_of(next(o for o in layout["objects"] if o["name"] == "legend")["label"])
    assert hostile[:40] in legend or "injected [shape=box]" in legend


def test_a_flood_of_identical_pings_is_one_sequence_of_steps(tmp_path):
    """`render` of 2000 pings that all took the same path (more packets than the step
    limit): still the steps, once, each taken by every packet (counted by the recording's own
    echo requests), and the legend says which pings they were."""
    import gzip
    path = tmp_path / "flood.jsonl"
    path.write_bytes(gzip.decompress((TRACES / "flood-2000.jsonl.gz").read_bytes()))
    rec, corr = sources.replay(str(path))
    requests = sum(1 for j in corr.journeys if j.pkt is not None and j.pkt.icmp_type == 8)
    assert len(corr.journeys) > diagram.STEP_LIMIT and requests > 1000
    layout = laid_out(diagram.build(corr.journeys, corr, title="flood").source)
    steps = steps_of(layout)
    assert sorted(n for _, n in steps) == list(range(1, len(steps) + 1)) and {t for t, _ in steps} == {""}
    counts = [int(m) for e in layout["edges"] for m in re.findall(r"×(\d+)", text_of(e.get("label", "")))]
    assert counts and set(counts) == {requests}
    legend = text_of(next(o for o in layout["objects"] if o["name"] == "legend")["label"])
    assert f"1–{requests}" in legend


def test_an_expression_keeps_the_namespace_names(tmp_path):
    """render FILE EXPRESSION correlates the kept events again: with the recording's
    namespaces, so clusters keep the names the header gives (not netns:INODE)."""
    out = tmp_path / "icmp.dot"
    res = run("render", str(TRACES / "netns-bridge.jsonl"), "icmp", "-o", str(out))
    assert res.returncode == 0, res.stderr
    rec = recording.read(str(TRACES / "netns-bridge.jsonl"))
    labels = set(re.findall(r"network namespace ([^<\"]+)", out.read_text()))
    assert labels and labels <= set(namespaces_of(rec).values()), labels
    assert not any(lab.startswith("netns:") for lab in labels)
