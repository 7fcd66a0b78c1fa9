"""Replaying the multi-namespace labs' traces (recorded by tests/test_netns_live.py, see
tests/traces/README.md): namespaces named from the recording alone, devices kept apart by
namespace, paths that name the namespaces, and verdicts judged in the packet's own
namespace.  Each sentence issue 9 quotes as wrong has a test here that fails on the code
before the fix (they were run against it).  No root needed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, TRACES
from netns_labs import PATHS, roles
from vethtrace.tracer import lab, recording
from vethtrace.tracer.correlate import namespace_crossings
from vethtrace.tracer.sources import replay
from vethtrace.tracer.verdict import ANSWERED, DELIVERED, verdict
from vethtrace.ui.text import Style, conversation_lines, route_text


def load(stem: str):
    return replay(str(TRACES / f"{stem}.jsonl"))


def notes(corr, j) -> list[str]:
    return [route_text(r, corr, j) for r in corr.routes_before(j) + j.routes]


def arp_requests(corr):
    return [j for j in corr.journeys if j.pkt is not None and j.pkt.l3 == "ARP" and j.pkt.is_arp_request]


@pytest.mark.parametrize("name", list(lab.TOPOLOGIES))
def test_paths_name_the_namespaces(name):
    rec, corr = load(f"netns-{name}")
    names = roles(rec.namespaces)
    assert set(names) == set(lab.TOPOLOGIES[name].roles)
    pinged_from = {dst: role for role, dst in lab.TOPOLOGIES[name].pings}
    echoes = [c for c in corr.conversations if c.kind == "echo"]
    assert len(echoes) == 4
    for conv in echoes:
        (req,) = conv.with_role("request")
        (rep,) = conv.with_role("reply")
        role = pinged_from[req.pkt.dst]
        assert req.path == PATHS[name][(role, "request")].format(**names)
        assert rep.path == PATHS[name][(role, "reply")].format(**names)
        assert verdict(req, corr).outcome == ANSWERED
        assert verdict(rep, corr).outcome == DELIVERED


def test_namespaces_named_without_run_netns():
    """The names come from the recording: nothing under /run/netns is needed to replay."""
    rec, corr = load("netns-bridge")
    for ns in rec.namespaces:
        assert ns["name"].startswith(lab.PREFIX) and not ns["name"].startswith("netns:")
        assert corr.namespaces.name(ns["netns"]) == ns["name"]
    assert corr.namespaces.name(12345) == "netns:12345"  # never met: named by its inode


def test_two_namespaces_veth0_are_two_devices():
    """In the bridge lab both ends are called veth0 (and have the same ifindex)."""
    rec, corr = load("netns-bridge")
    names = roles(rec.namespaces)
    inode = {ns["name"]: ns["netns"] for ns in rec.namespaces}
    placed = namespace_crossings(rec.events)
    veth0 = {netns: rows for (netns, _, dev), rows in placed.items() if dev == "veth0"}
    assert set(veth0) == {inode[names["a"]], inode[names["b"]]}
    # Each end saw its own side of the conversation: the echo requests a sent, b received.
    a_out = [t for d, t in veth0[inode[names["a"]]] if d == "out" and "echo request 10.200.2.1" in t]
    b_in = [t for d, t in veth0[inode[names["b"]]] if d == "in" and "echo request 10.200.2.1" in t]
    a_in = [t for d, t in veth0[inode[names["a"]]] if d == "in" and "echo request 10.200.2.1" in t]
    assert len(a_out) == 2 and a_out == b_in and not a_in
    out = subprocess.run([sys.executable, "-m", "vethtrace", "show", "--devices", str(TRACES / "netns-bridge.jsonl")],
                         capture_output=True, text=True, cwd=ROOT, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    for role in ("a", "b"):
        assert f"{names[role]}/veth0: {len(veth0[inode[names[role]]])} packets" in out.stdout, out.stdout


def test_bridge_forwarding_names_the_bridge_and_no_handler_at_its_ports():
    """Issue 9: every receive was followed by `stack: icmp_rcv`, also at a bridge port."""
    rec, corr = load("netns-bridge")
    names = roles(rec.namespaces)
    br = next(ns["netns"] for ns in rec.namespaces if ns["name"] == names["br"])
    for conv in (c for c in corr.conversations if c.kind == "echo"):
        for j in conv.journeys:
            in_br = [h.name for h in j.hops if h.netns == br]
            assert in_br in (["a1", "br0 (bridge)", "b1 (veth_xmit)"], ["b1", "br0 (bridge)", "a1 (veth_xmit)"]), j.path


def test_router_shows_the_forwarding_step_in_its_namespace():
    rec, corr = load("netns-router")
    names = roles(rec.namespaces)
    r_inode = next(ns["netns"] for ns in rec.namespaces if ns["name"] == names["r"])
    for conv in (c for c in corr.conversations if c.kind == "echo"):
        for j in conv.journeys:
            fwd = [h for h in j.hops if h.name == "stack: ip_forward"]
            assert len(fwd) == 1 and fwd[0].netns == r_inode, j.path
            # the router's input lookup is named as such, in the router's namespace
            assert any(f"input lookup in {names['r']}" in n for n in notes(corr, j)), notes(corr, j)
    ctx = corr.namespaces.get(r_inode)
    assert ctx["sysctl"]["ipv4"]["ip_forward"] == 1  # the router's own sysctl, recorded
    others = [ns for ns in rec.namespaces if ns["netns"] != r_inode]
    assert all(ns["sysctl"]["ipv4"]["ip_forward"] == 0 for ns in others)


def test_arp_answer_names_who_really_replied():
    """Issue 9: "answered: veth0 replied" when veth1, in the other namespace, did."""
    for stem in ("netns-two-netns", "netns-two-netns-scope"):
        rec, corr = load(stem)
        names = roles(rec.namespaces)
        (req, *_) = arp_requests(corr)
        text = verdict(req, corr).text
        assert text.startswith("answered: ") and "veth0 replied" not in text, (stem, text)
        if stem == "netns-two-netns":
            assert f"answered: veth1 in {names['b']} replied 10.200.1.2 is-at" in text, text
        else:  # recorded in a alone: where the reply came from was not seen
            assert "arrived on veth0" in text, text


def test_no_loopback_route_for_a_reply_that_never_touched_lo():
    """Issue 9: "route: 10.200.1.1 is local (veth0), so it goes through lo" for a reply
    that never touched lo."""
    for stem in ("netns-two-netns", "netns-two-netns-scope"):
        rec, corr = load(stem)
        names = roles(rec.namespaces)
        for j in corr.journeys:
            if "lo" in {h.dev for h in j.hops}:
                continue
            for n in notes(corr, j):
                assert "goes through lo" not in n, (stem, j.path, n)
        if stem == "netns-two-netns":
            replies = [j for j in corr.journeys if j.role == "reply" and j.pkt.dst == "10.200.1.1"]
            assert replies
            for j in replies:
                assert f"route to 10.200.1.1: dev veth1 (output lookup in {names['b']})" in notes(corr, j)


def test_arp_route_note_judged_in_the_namespace_that_answered():
    """Issue 9: "arp_process checked the route to 10.200.1.2: not an address of this
    namespace" for the peer's own address."""
    rec, corr = load("netns-two-netns")
    names = roles(rec.namespaces)
    (req,) = [j for j in arp_requests(corr) if j.pkt.dst == "10.200.1.2"]
    got = notes(corr, req)
    assert got == [f"arp_process in {names['b']} checked the route to 10.200.1.2: local (on veth1), so it may answer"]
    text = "\n".join(conversation_lines(req.conversation, corr, Style(colour=False)))
    assert "not an address of" not in text


def test_fix_runs_in_the_packets_namespace():
    """Issue 9: a `fix:` with `ip netns exec` of the wrong namespace.  The recorder ran in a
    quiet two-ips-fixed lab (same addresses, accept_local=1) while a two-ips lab failed."""
    rec, corr = load("netns-wrong-fix")
    quiet = rec.context["name"]
    failing = next(ns["name"] for ns in rec.namespaces if ns["name"] != quiet)
    reqs = arp_requests(corr)
    assert reqs and all(j.end.netns != rec.context["netns"] for j in reqs)
    for j in reqs:
        v = verdict(j, corr)
        assert "accept_local=0 on veth1" in v.text, v.text
        assert v.advice.startswith(f"allow it: ip netns exec {failing} sysctl -w net.ipv4.conf.veth1.accept_local=1")
        assert quiet not in v.advice


def test_ping_i_only_for_ping():
    """A route lookup bound to a device names `ping -I` only when ping made it."""
    rec, corr = load("netns-wrong-fix")
    (conv,) = [c for c in corr.conversations if c.kind == "echo"]
    (req,) = conv.with_role("request")
    (bound,) = corr.routes_before(req)
    assert bound.comm == "ping" and "(ping -I)" in route_text(bound, corr, req)
    bound.comm = "curl"  # the same lookup made by another program
    text = route_text(bound, corr, req)
    assert "ping -I" not in text and "bound to veth0" in text, text


def test_namespaces_met_later_are_read_from_the_footer(tmp_path):
    """`vethtrace record` names in its footer the namespaces first met while recording."""
    rec, _ = load("netns-two-netns")
    first, *later = list(rec.namespaces)
    path = tmp_path / "r.jsonl"
    with open(path, "wb") as f:
        w = recording.Writer(f, recording.header(first, "tp_btf"))
        w.write(rec.events)
        w.close(0, namespaces=later)
    jsonschema = pytest.importorskip("jsonschema")
    from vethtrace.tracer.schema import SCHEMA
    validator = jsonschema.Draft202012Validator(SCHEMA)
    lines = path.read_text().splitlines()
    for line in (lines[0], lines[-1]):  # the header, and the footer with its namespaces
        validator.validate(recording.loads(line))
    assert "namespaces" in recording.loads(lines[-1])
    again, corr = replay(str(path))
    assert [ns["netns"] for ns in again.header["namespaces"]] == [first["netns"]]
    for ns in later:
        assert corr.namespaces.name(ns["netns"]) == ns["name"]
    assert [j.path for j in corr.journeys] == [j.path for j in load("netns-two-netns")[1].journeys]


def test_old_recordings_have_one_namespace():
    """A recording from before namespaces were recorded: its context stands for its events."""
    rec, corr = load("exp2")
    assert "namespaces" not in rec.header
    assert [ns["netns"] for ns in rec.namespaces] == [rec.context["netns"]]
    assert all(f"{rec.context['name']}:" not in j.path for j in corr.journeys)  # one namespace: not named


def test_interfaces_keep_ipv6_addresses_apart_from_ipv4():
    from vethtrace.tracer.netns import interfaces
    from vethtrace.tracer.rules import Context
    link = {"ifindex": 2, "ifname": "vb", "flags": ["UP"], "mtu": 1500, "linkinfo": {"info_kind": "veth"},
            "addr_info": [{"family": "inet", "local": "192.168.7.2", "prefixlen": 24},
                          {"family": "inet6", "local": "fd07::2", "prefixlen": 64},
                          {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]}
    (vb,) = interfaces([link])
    assert vb["addrs"] == ["192.168.7.2/24"] and vb["addrs6"] == ["fd07::2/64", "fe80::1/64"]
    ctx = Context({"interfaces": [vb]})
    assert ctx.known6 and ctx.owner6("fd07:0::2") == "vb" and ctx.owner6("fd07::9") is None
    assert ctx.owner("fd07::2") is None  # an IPv4 question is not answered from IPv6 addresses
    assert ctx.prefix6("vb", "fd07::9") == 64


def test_recordings_without_ipv6_addresses_tell_nothing_of_them():
    """A recording made before addrs6 was recorded: its contexts say IPv6 is unknown (no
    "nobody has it" verdict is drawn from their absence)."""
    from vethtrace.tracer.rules import context_of
    rec, corr = load("netns-two-netns")
    assert corr.namespaces and not any("addrs6" in i for ns in corr.namespaces for i in ns["interfaces"])
    assert not any(context_of(corr, ns["netns"]).known6 for ns in corr.namespaces)
    rec, corr = load("proto-nd-no-owner")
    b = next(ns for ns in corr.namespaces if ns["name"].startswith("vtp-b-"))
    assert context_of(corr, b["netns"]).owner6("fd07::2") == "vb"
