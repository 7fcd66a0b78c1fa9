"""Live tests of tracer.lab: build the article's labs in private namespaces.

Needs root and iproute2.  Every namespace is named vethtrace-t<pid>-<n>, so
parallel runs do not collide with each other or with a user's default-named
labs, and packets are only sent inside those namespaces to 192.168.2.x
addresses configured there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from vethtrace.tracer import lab as labmod
from vethtrace.tracer import owner

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests create network namespaces: run as root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 `ip` command not installed"),
]

OWN_PREFIX = f"{labmod.PREFIX}t{os.getpid()}-"


def _own_namespaces() -> list[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    names = [e["name"] for e in json.loads(out or "[]")]
    return [n for n in names if n.startswith(OWN_PREFIX)]


@pytest.fixture(scope="module", autouse=True)
def _no_leftovers():
    labmod.cleanup_stale()
    yield
    left = _own_namespaces()
    for ns in left:  # safety net, then fail loudly
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert not left, f"tests left namespaces behind: {left}"


def _ping(lab: labmod.Lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        lab.exec_cmd(["ping", "-c", "1", "-W", "1", *args]),
        capture_output=True,
        text=True,
        timeout=15,
    )


def _host_snapshot() -> dict:
    def ip_json(*args: str):
        out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
        data = json.loads(out or "[]")
        for ifc in data:  # lifetimes of dynamic addresses count down on their own
            for a in ifc.get("addr_info", []):
                a.pop("valid_life_time", None)
                a.pop("preferred_life_time", None)
        return data

    sysctls = {}
    for conf in ("all", "default"):
        for knob in ("rp_filter", "accept_local", "arp_filter", "arp_ignore", "forwarding"):
            path = f"/proc/sys/net/ipv4/conf/{conf}/{knob}"
            with open(path) as f:
                sysctls[path] = f.read().strip()
    return {"addr": ip_json("addr"), "route": ip_json("route"), "sysctl": sysctls}


# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(labmod.SCENARIOS))
def test_scenario_comes_up_as_specified(scenario):
    sc = labmod.SCENARIOS[scenario]
    name = labmod.unique_name()
    with labmod.lab(scenario, name=name) as lab:
        assert lab.name == name and lab.scenario is sc
        assert labmod.exists(name)
        addrs = lab.addresses()
        assert set(addrs) == {"lo", "veth0", "veth1"}
        for ifname in ("veth0", "veth1"):
            expected = [sc.addresses[ifname]] if ifname in sc.addresses else []
            assert addrs[ifname] == expected, ifname
        assert addrs["lo"] == ["127.0.0.1/8"]
        for key, value in sc.sysctls.items():
            assert lab.sysctl(key) == value, key
        if scenario != "two-ips-fixed":
            # The failing experiments rely on the kernel default (inherited
            # from the host): a host with accept_local=1 would change them.
            assert lab.sysctl("net.ipv4.conf.veth1.accept_local") == "0"
        # No default route, only the connected lab subnet.
        routes = json.loads(
            subprocess.run(lab.exec_cmd(["ip", "-j", "route"]), capture_output=True, text=True, check=True).stdout
        )
        assert routes and {r["dst"] for r in routes} == {"192.168.2.0/24"}
        assert {r["dev"] for r in routes} == {i for i in ("veth0", "veth1") if i in sc.addresses}
        st = {s.name: s for s in labmod.status()}[name]
        assert st.scenario == scenario
        ifs = {i.name: i for i in st.interfaces}
        assert ifs["veth0"].peer == "veth1" and ifs["veth1"].peer == "veth0"
        assert ifs["veth0"].state == "UP" and ifs["veth1"].state == "UP"
        text = labmod.describe(lab)
        assert f"ip netns exec {name} vethtrace ping" in text
        assert "192.168.2.1" in text
    assert not labmod.exists(name)


def test_experiment1_one_ip_ping_fails():
    with labmod.lab("one-ip", name=labmod.unique_name()) as lab:
        r = _ping(lab, "192.168.2.1")
        assert r.returncode != 0, r.stdout + r.stderr


def test_experiment2_default_sysctls_ping_fails():
    with labmod.lab("two-ips", name=labmod.unique_name()) as lab:
        r = _ping(lab, "-I", "veth0", "192.168.2.1")
        assert r.returncode != 0, r.stdout + r.stderr


def test_experiment2_fixed_ping_succeeds():
    with labmod.lab("two-ips-fixed", name=labmod.unique_name()) as lab:
        r = _ping(lab, "-I", "veth0", "192.168.2.1")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "1 received" in r.stdout


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_context_manager_removes_namespace_on_error(exc):
    name = labmod.unique_name()
    with pytest.raises(exc):
        with labmod.lab("one-ip", name=name):
            assert labmod.exists(name)
            raise exc("boom")
    assert not labmod.exists(name)


def test_up_twice_raises_and_keeps_first():
    name = labmod.unique_name()
    with labmod.lab("two-ips", name=name) as lab:
        with pytest.raises(labmod.LabError, match="already exists.*lab down"):
            labmod.up("two-ips", name=name)
        assert labmod.exists(name)  # the failed second `up` did not remove it
        assert lab.addresses()["veth1"] == ["192.168.2.1/24"]
    assert not labmod.exists(name)


def test_unknown_scenario_raises():
    with pytest.raises(labmod.LabError, match="unknown scenario"):
        labmod.up("no-such-scenario", name=labmod.unique_name())


def test_failure_partway_removes_namespace():
    bad = labmod.Scenario(
        name="bad",
        description="a sysctl that does not exist makes up() fail after the namespace exists",
        addresses={"veth0": "192.168.2.11/24"},
        sysctls={"net.ipv4.conf.veth0.no_such_knob": "1"},
        ping=["true"],
    )
    name = labmod.unique_name()
    with pytest.raises(labmod.LabError, match="no_such_knob"):
        labmod.up(bad, name=name)
    assert not labmod.exists(name)


def test_down_is_idempotent():
    name = labmod.unique_name()
    labmod.up("one-ip", name=name)
    try:
        assert labmod.down(name) is True
        assert labmod.down(name) is False
    finally:
        labmod.down(name)
    assert not labmod.exists(name)


def test_cleanup_stale_removes_only_dead_test_namespaces():
    # A pid above pid_max can never be alive.
    with open("/proc/sys/kernel/pid_max") as f:
        dead_pid = int(f.read()) + 1
    stale = f"{labmod.PREFIX}t{dead_pid}-0"
    mine = labmod.unique_name()
    subprocess.run(["ip", "netns", "add", stale], check=True)
    # the owner marker `up` leaves on lo, naming a process of this PID namespace that is gone
    subprocess.run(["ip", "-n", stale, "link", "set", "lo", "alias",
                    f"vethtrace-lab scenario=one-ip owner={dead_pid}/{owner.pid_namespace()}/1"], check=True)
    try:
        with labmod.lab("one-ip", name=mine):
            removed = labmod.cleanup_stale()
            assert stale in removed
            assert not labmod.exists(stale)
            assert labmod.exists(mine)  # our own (live pid) lab stays
            assert all(not n.startswith(OWN_PREFIX) for n in removed)
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, check=False)


def test_host_namespace_unchanged():
    before = _host_snapshot()
    for scenario in labmod.SCENARIOS:
        with labmod.lab(scenario, name=labmod.unique_name()) as lab:
            _ping(lab, "-I", "veth0", "192.168.2.1")
    after = _host_snapshot()
    assert after["sysctl"] == before["sysctl"]
    assert after["route"] == before["route"]
    assert after["addr"] == before["addr"]
