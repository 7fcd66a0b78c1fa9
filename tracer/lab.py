"""The lab topologies, each in private network namespaces.

This module owns the veth set-ups of the seed article ("Linux virtual network
devices: veth"), each in one namespace (SCENARIOS), and the container-like
set-ups of several namespaces (TOPOLOGIES: a veth pair between two namespaces,
a bridge, a router): it builds them, describes them, lists them and tears them
down.  Every lab lives in a network namespace whose name starts with
``vethtrace-`` (``PREFIX``); both veth ends are created *inside* that
namespace, so deleting the namespace deletes the veths too.

Safety rules (see notes/kernel.md "Traffic rules"):

* the host namespace is never modified: no interface, route or sysctl of the
  host is touched; every ``ip`` call that configures something carries
  ``-n <lab namespace>`` and every sysctl is written through
  ``ip netns exec <lab namespace>``, which fails instead of falling back to
  the host when the namespace is missing;
* no default route is ever added, so a lab can only reach the addresses
  configured inside it (192.168.2.0/24);
* only namespaces named ``vethtrace-...`` are ever deleted.

Everything shells out to iproute2's ``ip`` with argument lists (never a
shell).  Creating, deleting and inspecting namespaces needs root.

Note on sysctls: a new namespace copies the IPv4 ``conf/all`` and
``conf/default`` values of the host (``net.core.devconf_inherit_init_net=0``,
the kernel default), and a new interface starts from ``conf/default``.  So
the "kernel default" scenarios behave like the host's defaults; the tests
check the values that matter so a surprising host is reported clearly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence

from . import owner

__all__ = [
    "PREFIX",
    "SCENARIOS",
    "Scenario",
    "Lab",
    "Interface",
    "LabStatus",
    "LabError",
    "ns_name",
    "unique_name",
    "up",
    "down",
    "status",
    "exists",
    "cleanup_stale",
    "lab",
    "describe",
    "TOPOLOGIES",
    "Topology",
    "MultiLab",
    "scenario_names",
    "listing",
    "up_topology",
    "down_topology",
    "topology_lab",
    "topology_namespaces",
    "describe_topology",
]

PREFIX = "vethtrace-"

# Test namespaces: vethtrace-t<pid>-<n>.  Deliberately strict: the default
# names vethtrace-two-ips / vethtrace-two-ips-fixed also start with
# "vethtrace-t" and must never be taken for test leftovers.
# Per-process namespaces (tests: vethtrace-t<pid>-<n>; demo: vethtrace-demo-<pid>).
# A multi-namespace lab adds "-<role>" to its base name (vethtrace-t<pid>-<n>-a).
_TEST_NAME_RE = re.compile(r"^vethtrace-(?:t(\d+)-\d+|demo-(\d+))(?:-[a-z]+)?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SYSCTL_KEY_RE = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")
_ALIAS_TAG = "vethtrace-lab scenario="
_TIMEOUT = 30  # seconds for one `ip` call; they normally take milliseconds


class LabError(Exception):
    """A lab operation failed; the message says what is wrong and what to do."""


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One of the article's set-ups, built inside a single namespace."""

    name: str
    description: str
    addresses: dict[str, str]  # ifname -> "a.b.c.d/24"
    sysctls: dict[str, str]  # "net.ipv4.conf.X.Y" -> value, set inside the lab
    ping: list[str]  # suggested command, run inside the lab namespace


# The veth pair of every scenario: veth0 <-> veth1.
VETH_PAIR = ("veth0", "veth1")

# two-ips-fixed: which sysctls does `ip netns exec NS ping -c 1 -W 1 -I veth0
# 192.168.2.1` need?  Measured on Linux 6.18 (iputils 20221126), one knob
# changed at a time in a fresh namespace (host: rp_filter=0, accept_local=0):
#   defaults                                   -> fails (ARP request from the
#       local source 192.168.2.11 reaches veth1 and is dropped by arp_process)
#   veth1.accept_local=1 alone                 -> works  (the receiving end)
#   all.accept_local=1 alone                   -> works
#   veth0.accept_local=1 alone                 -> fails  (veth0 is not the
#       receiving side of the request; the reply comes back over lo)
#   rp_filter=0 on all/veth0/veth1 alone       -> fails
#   veth1.accept_local=1 + all.rp_filter=1     -> fails  (strict rp_filter)
#   veth1.accept_local=1 + veth1.rp_filter=1   -> fails
#   veth1.accept_local=1 + all.rp_filter=2     -> works  (loose is fine)
#   veth1.accept_local=1 + veth0.rp_filter=1   -> works  (veth0 irrelevant)
#   veth1.accept_local=1 + all.arp_filter=1    -> fails  (not pinned: rare)
# So accept_local=1 on veth1 is the one knob this kernel needs.  rp_filter=0
# on "all" and veth1 is a no-op on these VMs but is kept because a namespace
# inherits the host's all/default rp_filter and the effective value is
# max(all, dev): on a host with strict rp_filter=1 (common on RHEL-like
# systems) the ping fails without them.  The article's veth0 settings
# (accept_local=1, rp_filter=0 on veth0) were measured to make no difference
# and are left out to keep the set minimal-but-sufficient.
_FIXED_SYSCTLS = {
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.veth1.rp_filter": "0",
    "net.ipv4.conf.veth1.accept_local": "1",
}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="one-ip",
            description=(
                "article experiment 1: veth0 (192.168.2.11/24) <-> veth1 "
                "(no address); the ARP request for 192.168.2.1 crosses to "
                "veth1 and nobody answers, so the ping fails"
            ),
            addresses={"veth0": "192.168.2.11/24"},
            sysctls={},
            ping=["ping", "-c", "2", "192.168.2.1"],
        ),
        Scenario(
            name="two-ips",
            description=(
                "article experiment 2 with kernel default sysctls: veth0 "
                "(192.168.2.11/24) <-> veth1 (192.168.2.1/24); fails on this "
                "kernel because ARP from a local source address is ignored "
                "(accept_local=0)"
            ),
            addresses={"veth0": "192.168.2.11/24", "veth1": "192.168.2.1/24"},
            sysctls={},
            ping=["ping", "-c", "2", "-I", "veth0", "192.168.2.1"],
        ),
        Scenario(
            name="two-ips-fixed",
            description=(
                "article experiment 2 as the article shows it: veth0 "
                "(192.168.2.11/24) <-> veth1 (192.168.2.1/24) with "
                "accept_local=1 and rp_filter=0 on the receiving end; the "
                "echo request crosses veth0->veth1, the reply returns over lo"
            ),
            addresses={"veth0": "192.168.2.11/24", "veth1": "192.168.2.1/24"},
            sysctls=dict(_FIXED_SYSCTLS),
            ping=["ping", "-c", "2", "-I", "veth0", "192.168.2.1"],
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class Interface:
    """One interface of a lab namespace, as reported by `ip -j addr`."""

    name: str
    state: str  # operstate: UP, DOWN, UNKNOWN (lo), ...
    peer: str | None  # the other veth end ("link"), if any
    addresses: list[str]  # "addr/prefixlen", IPv4 and IPv6


@dataclasses.dataclass(frozen=True)
class LabStatus:
    """An existing lab namespace and what is inside it."""

    name: str
    scenario: str | None  # None when it cannot be told
    interfaces: list[Interface]


@dataclasses.dataclass(frozen=True)
class Lab:
    """A lab that is up: a namespace built from a scenario."""

    name: str
    scenario: Scenario

    def exec_cmd(self, argv: Sequence[str]) -> list[str]:
        """The command list that runs ``argv`` inside the lab namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def sysctl(self, key: str) -> str:
        """Read a sysctl (``net.ipv4.conf.veth1.accept_local``) inside the lab."""
        out = _run(self.exec_cmd(["cat", _sysctl_path(key)]), what=f"read {key} in {self.name}")
        return out.strip()

    def addresses(self, family: str = "inet") -> dict[str, list[str]]:
        """ifname -> ["a.b.c.d/24", ...] inside the lab (IPv4 unless ``family='inet6'``)."""
        return {
            ifc["ifname"]: [
                f"{a['local']}/{a['prefixlen']}"
                for a in ifc.get("addr_info", [])
                if a.get("family") == family
            ]
            for ifc in _ip_json(["-n", self.name, "addr"])
        }

    @property
    def down_hint(self) -> str:
        """The CLI command that removes this lab."""
        return f"vethtrace lab down {_cli_arg(self.name)}"


# --------------------------------------------------------------------------
# helpers


def _require_ip() -> None:
    if shutil.which("ip") is None:
        raise LabError("the `ip` command (iproute2) is missing; install it: apt-get install -y iproute2")


def _require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"{action} needs root (network namespaces need CAP_SYS_ADMIN); re-run with sudo")


def _run(argv: Sequence[str], *, what: str, input: str | None = None) -> str:
    """Run a command (argument list, no shell); LabError on failure."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as e:
        raise LabError(f"cannot {what}: {e.filename} not found; install iproute2 and coreutils") from e
    except subprocess.TimeoutExpired as e:
        raise LabError(f"cannot {what}: `{shlex.join(argv)}` timed out after {_TIMEOUT}s") from e
    if proc.returncode != 0:
        err = " ".join(proc.stderr.split()) or f"exit status {proc.returncode}"
        raise LabError(f"cannot {what}: `{shlex.join(argv)}` failed: {err}")
    return proc.stdout


def icmp_counters(ns: str) -> dict[str, int]:
    """The namespace's Icmp: line of /proc/net/snmp (nstat's IcmpInEchos, IcmpInEchoReps, ...):
    the kernel's own account that floods are checked against (tests, bench)."""
    text = _run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], what="read the ICMP counters")
    names, values = [line.split()[1:] for line in text.splitlines() if line.startswith("Icmp:")]
    return dict(zip(names, map(int, values)))


def _ip_json(args: Sequence[str]) -> list[dict]:
    out = _run(["ip", "-j", *args], what="run ip " + " ".join(args))
    out = out.strip()
    if not out:
        return []
    try:
        data = json.loads(out)
    except json.JSONDecodeError as e:
        raise LabError(f"cannot parse `ip -j {' '.join(args)}` output: {e}") from e
    return data if isinstance(data, list) else []


def _sysctl_path(key: str) -> str:
    if not _SYSCTL_KEY_RE.match(key):
        raise LabError(f"bad sysctl key {key!r}; use the dotted form, e.g. net.ipv4.conf.veth1.accept_local")
    return "/proc/sys/" + key.replace(".", "/")


def _cli_arg(name: str) -> str:
    """What to pass to `vethtrace lab down` for a namespace name."""
    short = name[len(PREFIX):]
    return short if short in SCENARIOS else name


def ns_name(name_or_scenario: str) -> str:
    """The namespace name for a scenario name or an explicit lab name.

    "two-ips" -> "vethtrace-two-ips"; names that already carry the prefix are
    kept; anything else gets the prefix so only lab namespaces are touched.
    """
    n = name_or_scenario if name_or_scenario.startswith(PREFIX) else PREFIX + name_or_scenario
    if len(n) > 200 or not _NAME_RE.match(n) or ".." in n:
        raise LabError(
            f"bad lab name {name_or_scenario!r}; use letters, digits, '-', '_' or '.', e.g. {PREFIX}mylab"
        )
    return n


_counter = itertools.count()


def unique_name() -> str:
    """A fresh test namespace name, ``vethtrace-t<pid>-<n>``, for this process."""
    return f"{PREFIX}t{os.getpid()}-{next(_counter)}"


def _list_namespaces() -> list[str]:
    return [e["name"] for e in _ip_json(["netns", "list"]) if isinstance(e, dict) and "name" in e]


def _lab_namespaces() -> list[str]:
    return sorted(n for n in _list_namespaces() if n.startswith(PREFIX))


def _resolve_scenario(scenario: str | Scenario) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    try:
        return SCENARIOS[scenario]
    except KeyError:
        raise LabError(
            f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None


# --------------------------------------------------------------------------
# public API


def exists(name: str) -> bool:
    """Whether the lab namespace (name or scenario name) exists."""
    _require_ip()
    return ns_name(name) in _list_namespaces()


def up(scenario: str | Scenario, name: str | None = None) -> Lab:
    """Build ``scenario`` in a new namespace (default ``vethtrace-<scenario>``).

    Raises LabError if the namespace exists already, the scenario is unknown
    or any step fails; whatever was created before the failure (or before a
    KeyboardInterrupt) is removed again.
    """
    sc = _resolve_scenario(scenario)
    ns = ns_name(name if name is not None else sc.name)
    _require_root("building a lab")
    _require_ip()
    if ns in _list_namespaces():
        raise LabError(f"namespace {ns} already exists; run `vethtrace lab down {_cli_arg(ns)}` first")

    created = False
    try:
        _run(["ip", "netns", "add", ns], what=f"create namespace {ns}")
        created = True
        lab_ = Lab(name=ns, scenario=sc)
        # Everything below happens inside the lab namespace only.
        _run(["ip", "-n", ns, "link", "set", "lo", "up"], what=f"bring lo up in {ns}")
        _run(
            ["ip", "-n", ns, "link", "set", "lo", "alias", f"{_ALIAS_TAG}{sc.name} {owner.tag()}"],
            what=f"label {ns}",
        )
        v0, v1 = VETH_PAIR
        _run(
            ["ip", "-n", ns, "link", "add", v0, "type", "veth", "peer", "name", v1],
            what=f"create the veth pair {v0}<->{v1} in {ns}",
        )
        for ifname, cidr in sc.addresses.items():
            _run(
                ["ip", "-n", ns, "addr", "add", cidr, "dev", ifname],
                what=f"add {cidr} to {ifname} in {ns}",
            )
        # Sysctls before the links come up, so no packet sees the defaults.
        for key, value in sc.sysctls.items():
            _run(
                lab_.exec_cmd(["tee", _sysctl_path(key)]),
                input=f"{value}\n",
                what=f"set {key}={value} in {ns}",
            )
            got = lab_.sysctl(key)
            if got != value:
                raise LabError(f"{key} is {got} in {ns} after writing {value}; the kernel refused it")
        for ifname in VETH_PAIR:
            _run(["ip", "-n", ns, "link", "set", ifname, "up"], what=f"bring {ifname} up in {ns}")
        return lab_
    except BaseException as e:
        # Interrupted while `ip netns add` ran: it may have created the
        # namespace anyway.  (A LabError from `ip netns add` means somebody
        # else owns the name, so then nothing is removed.)
        if not created and not isinstance(e, LabError):
            with contextlib.suppress(Exception):
                created = ns in _list_namespaces()
        if created:
            with contextlib.suppress(Exception):
                _run(["ip", "netns", "del", ns], what=f"remove namespace {ns}")
        raise


def down(name_or_scenario: str) -> bool:
    """Remove a lab namespace (and with it both veths).

    Accepts a scenario name ("two-ips") or a namespace name.  Idempotent:
    returns True if something was removed, False if it was already gone.
    """
    ns = ns_name(name_or_scenario)
    _require_root("removing a lab")
    _require_ip()
    if ns not in _list_namespaces():
        return False
    try:
        _run(["ip", "netns", "del", ns], what=f"remove namespace {ns}")
    except LabError:
        if ns not in _list_namespaces():  # removed concurrently: still "down"
            return False
        raise
    return True


def _scenario_of(ns: str, links: list[dict]) -> str | None:
    for link in links:
        alias = link.get("ifalias") or ""
        if link.get("ifname") == "lo" and alias.startswith(_ALIAS_TAG):
            return (alias[len(_ALIAS_TAG):].split() or [None])[0]
    short = ns[len(PREFIX):]
    return short if short in SCENARIOS else None


def status() -> list[LabStatus]:
    """The existing lab namespaces with their interfaces and addresses."""
    _require_ip()
    names = _lab_namespaces()
    if names:
        _require_root("inspecting lab namespaces")
    result = []
    for ns in names:
        try:
            addrs = _ip_json(["-n", ns, "addr"])
            links = _ip_json(["-n", ns, "link"])
        except LabError:
            if ns not in _list_namespaces():  # vanished meanwhile
                continue
            raise
        interfaces = [
            Interface(
                name=ifc.get("ifname", "?"),
                state=ifc.get("operstate", "UNKNOWN"),
                peer=ifc.get("link"),
                addresses=[f"{a['local']}/{a['prefixlen']}" for a in ifc.get("addr_info", []) if "local" in a],
            )
            for ifc in addrs
        ]
        result.append(LabStatus(name=ns, scenario=_scenario_of(ns, links), interfaces=interfaces))
    return result


def pid_alive(pid: int) -> bool:
    """Is the process still running?  A zombie counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cleanup_stale() -> list[str]:
    """Remove per-process namespaces (tests' ``vethtrace-t<pid>-<n>``, the demo's
    ``vethtrace-demo-<pid>``) whose process is provably gone: the owner marker that `up`
    leaves on the lab's lo (tracer/owner.py) names a process of this PID namespace that no
    longer runs.  The pid in the name alone proves nothing where PIDs are not shared.

    Namespaces of live processes (including this one) are left alone, so
    test runs in parallel do not remove each other's labs.  Returns the
    names removed.
    """
    _require_root("removing stale test labs")
    _require_ip()
    removed = []
    for ns in _lab_namespaces():
        if not _TEST_NAME_RE.match(ns):
            continue
        try:
            links = _ip_json(["-n", ns, "link", "show", "lo"])
        except LabError:
            continue
        alias = next((lk.get("ifalias") or "" for lk in links if lk.get("ifname") == "lo"), "")
        if not owner.provably_gone(alias):
            continue  # alive, or not provably gone (another PID namespace, no marker): not ours to judge
        if down(ns):
            removed.append(ns)
    return removed


@contextlib.contextmanager
def lab(scenario: str | Scenario, name: str | None = None) -> Iterator[Lab]:
    """Bring a lab up for the ``with`` body and always remove it afterwards.

    The namespace is removed on normal exit, on exceptions and on
    KeyboardInterrupt.
    """
    lab_ = up(scenario, name)
    try:
        yield lab_
    finally:
        try:
            down(lab_.name)
        except KeyboardInterrupt:
            # A second Ctrl-C while removing: try once more, then give up.
            down(lab_.name)
            raise


def describe(lab_: Lab, vethtrace: str = "vethtrace") -> str:
    """A few human lines: what was built and how to run the ping inside it (`vethtrace`:
    the command that runs this vethtrace, as the user can paste it)."""
    sc = lab_.scenario
    v0, v1 = VETH_PAIR

    def end(ifname: str) -> str:
        return f"{ifname} ({sc.addresses[ifname]})" if ifname in sc.addresses else f"{ifname} (no address)"

    args = sc.ping[1:] if sc.ping and sc.ping[0] == "ping" else sc.ping
    lines = [
        f"lab {lab_.name} (scenario {sc.name}): {sc.description}",
        f"  namespace {lab_.name}: lo up, veth pair {end(v0)} <-> {end(v1)}, both ends up, no default route",
        "  sysctls in the lab: "
        + (", ".join(f"{k}={v}" for k, v in sc.sysctls.items()) if sc.sysctls else "kernel defaults"),
        f"  trace the ping:  {shlex.join(lab_.exec_cmd([*shlex.split(vethtrace), 'ping', *args]))}",
        f"  plain ping:      {shlex.join(lab_.exec_cmd(sc.ping))}",
        f"  remove it:       {lab_.down_hint.replace('vethtrace', vethtrace, 1)}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# topologies of several namespaces: containers joined by veth pairs, a bridge, a router
#
# Each lab of this kind is a set of namespaces named <base>-<role> (base
# vethtrace-<scenario> by default, vethtrace-t<pid>-<n> in tests).  Every veth
# pair is created in one lab namespace with its peer moved straight into
# another (`ip -n A link add X type veth peer name Y netns B`), so no device
# ever exists in the host namespace.  Addresses are 10.200.0.0/16 and no
# default route is added: routes name the lab's own subnets.


@dataclasses.dataclass(frozen=True)
class Topology:
    """A set-up of several namespaces.  Places are (role, ifname)."""

    name: str
    description: str
    roles: tuple[str, ...]                                  # namespace roles, in creation order
    veths: tuple[tuple[str, str, str, str], ...]            # (role, ifname, peer role, peer ifname)
    bridges: dict[str, tuple[str, tuple[str, ...]]]         # role -> (bridge name, its ports)
    addresses: dict[tuple[str, str], str]                   # (role, ifname) -> "a.b.c.d/24"
    routes: dict[str, tuple[tuple[str, str], ...]]          # role -> ((subnet, via), ...)
    sysctls: dict[str, dict[str, str]]                      # role -> {key: value}, set inside that role only
    pings: tuple[tuple[str, str], ...]                      # (from role, to address): both directions

    def address(self, role: str, ifname: str) -> str:
        return self.addresses[(role, ifname)].split("/")[0]


TOPOLOGIES: dict[str, Topology] = {
    t.name: t
    for t in (
        Topology(
            name="two-netns",
            description=("two namespaces joined by one veth pair: a/veth0 (10.200.1.1) <-> b/veth1 "
                         "(10.200.1.2); a ping crosses the pair into the peer's namespace"),
            roles=("a", "b"),
            veths=(("a", "veth0", "b", "veth1"),),
            bridges={},
            addresses={("a", "veth0"): "10.200.1.1/24", ("b", "veth1"): "10.200.1.2/24"},
            routes={},
            sysctls={},
            pings=(("a", "10.200.1.2"), ("b", "10.200.1.1")),
        ),
        Topology(
            name="bridge",
            description=("two namespaces joined through a bridge in a third: a/veth0 (10.200.2.1) <-> "
                         "br/a1, br0 in br, br/b1 <-> b/veth0 (10.200.2.2); both ends are called veth0"),
            roles=("a", "b", "br"),
            veths=(("a", "veth0", "br", "a1"), ("b", "veth0", "br", "b1")),
            bridges={"br": ("br0", ("a1", "b1"))},
            addresses={("a", "veth0"): "10.200.2.1/24", ("b", "veth0"): "10.200.2.2/24"},
            routes={},
            sysctls={},
            pings=(("a", "10.200.2.2"), ("b", "10.200.2.1")),
        ),
        Topology(
            name="router",
            description=("two subnets joined by a forwarding namespace: a/veth0 (10.200.3.1) <-> "
                         "r/ra (10.200.3.254), r/rb (10.200.4.254) <-> b/veth0 (10.200.4.1); "
                         "forwarding is on in r only"),
            roles=("a", "b", "r"),
            veths=(("a", "veth0", "r", "ra"), ("b", "veth0", "r", "rb")),
            bridges={},
            addresses={("a", "veth0"): "10.200.3.1/24", ("r", "ra"): "10.200.3.254/24",
                       ("r", "rb"): "10.200.4.254/24", ("b", "veth0"): "10.200.4.1/24"},
            # explicit subnet routes through the router (never a default route)
            routes={"a": (("10.200.4.0/24", "10.200.3.254"),), "b": (("10.200.3.0/24", "10.200.4.254"),)},
            sysctls={"r": {"net.ipv4.ip_forward": "1"}},
            pings=(("a", "10.200.4.1"), ("b", "10.200.3.1")),
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class MultiLab:
    """A topology that is up: role -> namespace name."""

    name: str  # the base name
    topology: Topology
    namespaces: dict[str, str]

    def exec_cmd(self, role: str, argv: Sequence[str]) -> list[str]:
        """The command list that runs ``argv`` inside the namespace of ``role``."""
        return ["ip", "netns", "exec", self.namespaces[role], *argv]

    def sysctl(self, role: str, key: str) -> str:
        ns = self.namespaces[role]
        return _run(self.exec_cmd(role, ["cat", _sysctl_path(key)]), what=f"read {key} in {ns}").strip()

    @property
    def down_hint(self) -> str:
        short = self.name[len(PREFIX):]
        return f"vethtrace lab down {short if short in TOPOLOGIES else self.name}"


def scenario_names() -> list[str]:
    """Every scenario `vethtrace lab` knows: the article's, then the multi-namespace ones."""
    return [*SCENARIOS, *TOPOLOGIES]


def listing() -> list[tuple[str, str]]:
    """(scenario, what it shows) for `vethtrace lab list`."""
    return [(s.name, s.description) for s in SCENARIOS.values()] + \
           [(t.name, t.description) for t in TOPOLOGIES.values()]


def _resolve_topology(topology: str | Topology) -> Topology:
    if isinstance(topology, Topology):
        return topology
    try:
        return TOPOLOGIES[topology]
    except KeyError:
        raise LabError(f"unknown scenario {topology!r}; choose one of: {', '.join(scenario_names())}") from None


def topology_namespaces(topology: str | Topology, name: str | None = None) -> dict[str, str]:
    """role -> namespace name for a topology under base ``name`` (default vethtrace-<scenario>)."""
    t = _resolve_topology(topology)
    base = ns_name(name if name is not None else t.name)
    return {role: f"{base}-{role}" for role in t.roles}


def up_topology(topology: str | Topology, name: str | None = None) -> MultiLab:
    """Build a multi-namespace topology; on any failure (or Ctrl-C) every namespace it
    created is removed again."""
    t = _resolve_topology(topology)
    base = ns_name(name if name is not None else t.name)
    spaces = topology_namespaces(t, base)
    _require_root("building a lab")
    _require_ip()
    existing = set(_list_namespaces())
    taken = [ns for ns in spaces.values() if ns in existing]
    if taken:
        raise LabError(f"namespace {taken[0]} already exists; run `vethtrace lab down "
                       f"{_topology_arg(base, t)}` first")
    created: list[str] = []
    try:
        for role, ns in spaces.items():
            _run(["ip", "netns", "add", ns], what=f"create namespace {ns}")
            created.append(ns)
            _run(["ip", "-n", ns, "link", "set", "lo", "up"], what=f"bring lo up in {ns}")
            _run(["ip", "-n", ns, "link", "set", "lo", "alias", f"{_ALIAS_TAG}{t.name} {owner.tag()}"],
                 what=f"label {ns}")
            # Sysctls before any device exists in it, so no packet sees the defaults.
            for key, value in t.sysctls.get(role, {}).items():
                _run(["ip", "netns", "exec", ns, "tee", _sysctl_path(key)], input=f"{value}\n",
                     what=f"set {key}={value} in {ns}")
                got = _run(["ip", "netns", "exec", ns, "cat", _sysctl_path(key)], what=f"read {key} in {ns}").strip()
                if got != value:
                    raise LabError(f"{key} is {got} in {ns} after writing {value}; the kernel refused it")
        for role, ifname, peer_role, peer in t.veths:
            a, b = spaces[role], spaces[peer_role]
            _run(["ip", "-n", a, "link", "add", ifname, "type", "veth", "peer", "name", peer, "netns", b],
                 what=f"create the veth pair {a}/{ifname} <-> {b}/{peer}")
        for role, (bridge, ports) in t.bridges.items():
            ns = spaces[role]
            _run(["ip", "-n", ns, "link", "add", bridge, "type", "bridge"], what=f"create {bridge} in {ns}")
            for port in ports:
                _run(["ip", "-n", ns, "link", "set", port, "master", bridge], what=f"add {port} to {bridge} in {ns}")
            _run(["ip", "-n", ns, "link", "set", bridge, "up"], what=f"bring {bridge} up in {ns}")
        for (role, ifname), cidr in t.addresses.items():
            _run(["ip", "-n", spaces[role], "addr", "add", cidr, "dev", ifname],
                 what=f"add {cidr} to {ifname} in {spaces[role]}")
        for role, ifname, peer_role, peer in t.veths:
            for r, i in ((role, ifname), (peer_role, peer)):
                _run(["ip", "-n", spaces[r], "link", "set", i, "up"], what=f"bring {i} up in {spaces[r]}")
        _wait_ready(t, spaces)
        for role, routes in t.routes.items():
            for subnet, via in routes:
                _run(["ip", "-n", spaces[role], "route", "add", subnet, "via", via],
                     what=f"add the route {subnet} via {via} in {spaces[role]}")
        return MultiLab(name=base, topology=t, namespaces=spaces)
    except BaseException as e:
        if not isinstance(e, LabError):  # interrupted mid-`ip netns add`: it may exist anyway
            with contextlib.suppress(Exception):
                now = set(_list_namespaces())
                created += [ns for ns in spaces.values() if ns in now and ns not in existing and ns not in created]
        for ns in reversed(created):
            with contextlib.suppress(Exception):
                _run(["ip", "netns", "del", ns], what=f"remove namespace {ns}")
        raise


READY_S = 10.0  # a veth's carrier and a bridge port's forwarding state come within milliseconds


def _wait_ready(t: Topology, spaces: dict[str, str]) -> None:
    """Until every veth end is up with its carrier and every bridge port forwards (the
    kernel's own states, polled): a lab handed over earlier loses its first packets."""
    deadline = time.monotonic() + READY_S
    while True:
        waiting = []
        for role, ns in spaces.items():
            for link in _ip_json(["-n", ns, "-d", "link"]):
                name = link.get("ifname")
                if name == "lo":
                    continue
                port = (link.get("linkinfo") or {}).get("info_slave_data") or {}
                if link.get("operstate") != "UP" or (port and port.get("state", "forwarding") != "forwarding"):
                    waiting.append(f"{ns}/{name}")
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{', '.join(waiting)} did not come up within {READY_S:.0f}s; "
                           "check `ip -d link` in those namespaces")
        time.sleep(0.02)


def down_topology(topology: str | Topology, name: str | None = None) -> bool:
    """Remove every namespace of a topology (idempotent: False if none was there)."""
    spaces = topology_namespaces(topology, name)
    _require_root("removing a lab")
    _require_ip()
    present = set(_list_namespaces())
    removed = False
    for ns in spaces.values():
        if ns in present:
            try:
                _run(["ip", "netns", "del", ns], what=f"remove namespace {ns}")
                removed = True
            except LabError:
                if ns in _list_namespaces():
                    raise
    return removed


@contextlib.contextmanager
def topology_lab(topology: str | Topology, name: str | None = None) -> Iterator[MultiLab]:
    """Bring a topology up for the ``with`` body and always remove it afterwards."""
    built = up_topology(topology, name)
    try:
        yield built
    finally:
        try:
            down_topology(built.topology, built.name)
        except KeyboardInterrupt:
            down_topology(built.topology, built.name)
            raise


def _topology_arg(base: str, t: Topology) -> str:
    return t.name if base == PREFIX + t.name else base


def describe_topology(built: MultiLab, vethtrace: str = "vethtrace") -> str:
    """A few human lines: the namespaces, their devices, and the pings to trace (commands
    that run as printed; `vethtrace`: how to run this vethtrace)."""
    t = built.topology
    lines = [f"lab {built.name} (scenario {t.name}): {t.description}"]
    for role, ns in built.namespaces.items():
        devs = [f"{i} ({t.addresses[(r, i)]})" if (r, i) in t.addresses else f"{i} (no address)"
                for r, i in [(v[0], v[1]) for v in t.veths] + [(v[2], v[3]) for v in t.veths] if r == role]
        if role in t.bridges:
            bridge, ports = t.bridges[role]
            devs.append(f"{bridge} (bridge of {', '.join(ports)})")
        extra = [f"route {s} via {v}" for s, v in t.routes.get(role, ())]
        extra += [f"{k}={v}" for k, v in t.sysctls.get(role, {}).items()]
        lines.append(f"  namespace {ns}: lo, {', '.join(devs)}" + (f"; {', '.join(extra)}" if extra else ""))
    lines.append("  no default route anywhere; the host namespace is untouched")
    for role, dst in t.pings:
        lines.append(f"  trace a ping:    "
                     f"{shlex.join(built.exec_cmd(role, [*shlex.split(vethtrace), 'ping', '-c', '2', dst]))}")
    role, dst = t.pings[0]
    lines.append(f"  plain ping:      {shlex.join(built.exec_cmd(role, ['ping', '-c', '2', dst]))}")
    lines.append(f"  remove it:       {built.down_hint.replace('vethtrace', vethtrace, 1)}")
    return "\n".join(lines)
