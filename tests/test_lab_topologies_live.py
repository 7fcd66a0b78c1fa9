"""Live tests of the multi-namespace labs themselves (tracer.lab TOPOLOGIES) and of
`vethtrace lab` for them: built in private namespaces as specified, nothing of the host
touched, and `lab up` printing commands that run as printed."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT, needs_root
from test_lab_live import _host_snapshot
from vethtrace.tracer import lab

pytestmark = [pytest.mark.live, needs_root]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")


def ip_json(ns: str, *args: str):
    out = subprocess.run(["ip", "-n", ns, "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vethtrace", *args], capture_output=True, text=True,
                          env=ENV, cwd=ROOT, timeout=timeout)


@pytest.mark.parametrize("name", list(lab.TOPOLOGIES))
def test_topology_comes_up_as_specified(name):
    t = lab.TOPOLOGIES[name]
    base = lab.unique_name()
    with lab.topology_lab(name, base) as built:
        assert set(built.namespaces) == set(t.roles)
        for role, ns in built.namespaces.items():
            assert ns == f"{base}-{role}"
            links = {li["ifname"]: li for li in ip_json(ns, "-d", "link")}
            addrs = {a["ifname"]: [f"{x['local']}/{x['prefixlen']}" for x in a.get("addr_info", [])
                                   if x.get("family") == "inet"] for a in ip_json(ns, "addr")}
            want = {i for r, i, _, _ in t.veths if r == role} | {i for _, _, r, i in t.veths if r == role}
            want |= {b for r, (b, _) in t.bridges.items() if r == role}
            assert set(links) == {"lo"} | want, (ns, set(links))
            for ifname in want:
                expected = [t.addresses[(role, ifname)]] if (role, ifname) in t.addresses else []
                assert addrs[ifname] == expected, (ns, ifname)
            for r, (bridge, ports) in t.bridges.items():
                if r == role:
                    for port in ports:
                        assert links[port].get("master") == bridge
            routes = ip_json(ns, "route")
            assert all(rt["dst"] != "default" for rt in routes), routes
            vias = {(rt["dst"], rt["gateway"]) for rt in routes if "gateway" in rt}
            assert vias == set(t.routes.get(role, ())), (ns, vias)
            forward = built.sysctl(role, "net.ipv4.ip_forward")
            assert forward == t.sysctls.get(role, {}).get("net.ipv4.ip_forward", forward)
            if name == "router" and role != "r":
                assert forward == "0"  # forwarding only inside the router namespace
        st = [s for s in lab.status() if s.name.startswith(base + "-")]
        assert {s.name for s in st} == set(built.namespaces.values()) and {s.scenario for s in st} == {name}
        for role, dst in t.pings:
            r = subprocess.run(built.exec_cmd(role, ["ping", "-c", "1", "-W", "1", dst]), capture_output=True)
            assert r.returncode == 0, (role, dst)
    left = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not [n for n in json.loads(left or "[]") if n["name"].startswith(base)]


def test_topologies_leave_the_host_untouched():
    before = _host_snapshot()
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read()
    for name in lab.TOPOLOGIES:
        with lab.topology_lab(name, lab.unique_name()) as built:
            for role, dst in built.topology.pings:
                subprocess.run(built.exec_cmd(role, ["ping", "-c", "1", "-W", "1", dst]), capture_output=True)
    after = _host_snapshot()
    assert after == before
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == forward


def test_failure_partway_removes_every_namespace():
    bad = lab.Topology(name="bad", description="a sysctl that does not exist, set in the second namespace",
                       roles=("a", "b"), veths=(("a", "veth0", "b", "veth1"),), bridges={}, addresses={},
                       routes={}, sysctls={"b": {"net.ipv4.no_such_knob": "1"}}, pings=())
    base = lab.unique_name()
    with pytest.raises(lab.LabError, match="no_such_knob"):
        lab.up_topology(bad, base)
    names = json.loads(subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout or "[]")
    assert not [n for n in names if n["name"].startswith(base)]


def test_cli_lab_up_prints_commands_that_run_as_printed():
    cli("lab", "down", "two-netns")
    up = cli("lab", "up", "two-netns")
    try:
        assert up.returncode == 0, up.stderr
        lines = up.stdout.splitlines()
        plain = next(line.split(":", 1)[1] for line in lines if line.strip().startswith("plain ping:"))
        traced = [line.split(":", 1)[1] for line in lines if line.strip().startswith("trace a ping:")]
        assert len(traced) == 2
        r = subprocess.run(shlex.split(plain), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "2 received" in r.stdout, r.stdout + r.stderr
        for cmd in traced:  # vethtrace ping inside each end, exactly as printed
            r = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=60, env=ENV)
            assert r.returncode == 0 and "--- vethtrace:" in r.stdout, r.stdout + r.stderr
        st = cli("lab", "status", "two-netns")
        assert st.returncode == 0
        assert "vethtrace-two-netns-a  (two-netns)" in st.stdout and "vethtrace-two-netns-b  (two-netns)" in st.stdout
        assert "10.200.1.1/24" in st.stdout
        other = cli("lab", "status", "router")
        assert other.returncode == 0 and "vethtrace-two-netns" not in other.stdout, other.stdout
    finally:
        down = cli("lab", "down", "two-netns")
    assert down.returncode == 0 and "removed vethtrace-two-netns-a, vethtrace-two-netns-b" in down.stdout
    assert "no lab two-netns" in cli("lab", "down", "two-netns").stdout


def test_an_unnamed_namespace_is_described_through_a_process_in_it():
    """A namespace with no /run/netns entry (made by unshare) is named netns:INODE and its
    context read through nsenter into one of its processes; the lab's are named."""
    from vethtrace.tracer import netns
    proc = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep 60"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"  # lo is up inside it
        inode = os.stat(f"/proc/{proc.pid}/ns/net").st_ino
        spaces = netns.Namespaces()
        with lab.topology_lab("two-netns", lab.unique_name()) as built:
            a = os.stat(f"/run/netns/{built.namespaces['a']}").st_ino

            class Ev:  # what Namespaces.learn reads of an event: its namespace
                def __init__(self, n):
                    self.netns = n
            new = spaces.learn([Ev(inode), Ev(a), Ev(inode)])
        assert [ns["netns"] for ns in new] == [inode, a]
        assert spaces.name(inode) == f"netns:{inode}" and spaces.get(inode)["name"] == ""
        assert [i["name"] for i in spaces.get(inode)["interfaces"]] == ["lo"]
        assert spaces.get(inode)["sysctl"]["lo"]["rp_filter"] in (0, 1, 2)
        assert spaces.name(a) == built.namespaces["a"]
        assert spaces.get(a)["interfaces"][1]["addrs"] == ["10.200.1.1/24"]
    finally:
        proc.kill()
        proc.wait()
