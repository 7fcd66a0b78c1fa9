"""Network namespaces by inode: their names and their context (interfaces with their IPv4
and IPv6 addresses, routes, the IPv4 sysctls verdicts need), learned while tracing and kept
in recordings.

A namespace is named by its `ip netns` name (/run/netns/NAME, an nsfs bind mount whose
inode is the namespace's), else `netns:INODE`; a namespace object's "name" is the `ip netns`
name or "" (so `ip netns exec NAME` is only ever suggested with a real name).  Its context is read from outside, never by
entering it in this (threaded) process: `ip -n NAME` for named ones, and for the others
`nsenter --net=/proc/PID/ns/net` of a process living in it; the sysctls by a `grep` run in
it (`ip netns exec NAME` or nsenter), since /proc/sys/net shows the reader's namespace.

The recording holds one namespace object per namespace (schema `namespace`): those known
when the recording starts in its header's "namespaces", and each met later on a line of its
own, before the first event that needs it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

from . import untrusted

# The sysctls of net.ipv4.conf.{all,DEV} that decide ARP, reverse-path and forwarding verdicts.
CONF_KEYS = ("accept_local", "rp_filter", "arp_ignore", "arp_announce", "arp_filter", "arp_accept",
             "forwarding", "proxy_arp", "route_localnet")
_TIMEOUT = 10
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def inode_of(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def current_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def named() -> dict[int, str]:
    """inode -> `ip netns` name, for every entry of /run/netns (stat of a bind mount)."""
    try:
        entries = sorted(os.listdir("/run/netns"))
    except OSError:
        return {}
    out: dict[int, str] = {}
    for name in entries:
        ino = inode_of(f"/run/netns/{name}")
        # a dangling entry (the mount is gone) has the inode of an empty file, not of an nsfs
        if ino is not None and name not in out.values() and _NAME_RE.match(name) and ino not in out:
            out[ino] = name
    return out


def fallback_name(inode: int) -> str:
    return f"netns:{inode}"


def _pid_in(inode: int) -> int | None:
    """A process living in the namespace, for nsenter (None if there is none)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and inode_of(f"/proc/{entry}/ns/net") == inode:
            return int(entry)
    return None


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _ip_json(prefix: list[str], args: list[str]) -> list:
    try:
        data = json.loads(_run(prefix + ["ip", "-j", *args]) or "[]")
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def interfaces(links: list) -> list[dict]:
    """Interface entries from `ip -j -d addr`."""
    out = []
    for link in links:
        if not isinstance(link, dict):
            continue
        info = link.get("linkinfo") or {}
        out.append({
            "ifindex": link.get("ifindex"), "name": link.get("ifname"),
            "kind": info.get("info_kind") or link.get("link_type", ""),
            "peer": link.get("link"), "up": "UP" in link.get("flags", []), "mtu": link.get("mtu"),
            "master": link.get("master"),
            "addrs": _addrs(link, "inet"),
            "addrs6": _addrs(link, "inet6"),  # absent from recordings made before IPv6 was recorded
        })
    return out


def _addrs(link: dict, family: str) -> list[str]:
    """ADDR/PREFIXLEN of one family ("inet", "inet6") from an `ip -j addr` link entry."""
    return [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
            if isinstance(a, dict) and a.get("family") == family and "local" in a and "prefixlen" in a]


def routes(rows: list) -> list[dict]:
    """Route entries from `ip -j route show table all` (IPv4; local and main tables)."""
    out = []
    for r in rows:
        if not isinstance(r, dict) or not isinstance(r.get("dst"), str):
            continue
        entry = {"dst": r["dst"], "dev": r.get("dev", ""), "type": r.get("type", "unicast"),
                 "table": str(r.get("table", "main"))}
        if r.get("gateway"):
            entry["via"] = r["gateway"]
        if r.get("prefsrc"):
            entry["src"] = r["prefsrc"]
        out.append(entry)
    return out


def sysctls(grep_output: str) -> dict[str, dict[str, int]]:
    """`grep -rH . /proc/sys/net/ipv4/conf /proc/sys/net/ipv4/ip_forward` -> {dev: {key: value}}
    (ip_forward under the name "ipv4")."""
    out: dict[str, dict[str, int]] = {}
    for line in grep_output.splitlines():
        path, _, value = line.partition(":")
        parts = path.split("/")
        try:
            number = int(value.strip())
        except ValueError:
            continue
        if path == "/proc/sys/net/ipv4/ip_forward":
            out.setdefault("ipv4", {})["ip_forward"] = number
        elif len(parts) == 8 and parts[:6] == ["", "proc", "sys", "net", "ipv4", "conf"] and parts[7] in CONF_KEYS:
            out.setdefault(parts[6], {})[parts[7]] = number
    return out


def gather(inode: int, name: str | None = None) -> dict:
    """One namespace object: name, interfaces, routes, sysctls, read from outside it.  A
    namespace that cannot be reached (gone, or no way in) gets its name and nothing else."""
    me = current_inode()
    if name is None:
        name = named().get(inode)
    if inode == me:
        prefix, ip_prefix = [], []
    elif name:
        prefix, ip_prefix = ["ip", "netns", "exec", name], ["-n", name]
    else:
        pid = _pid_in(inode)
        if pid is None:
            return {"netns": inode, "name": "", "interfaces": [], "routes": [], "sysctl": {}}
        prefix, ip_prefix = ["nsenter", f"--net=/proc/{pid}/ns/net"], []
    ip = (lambda args: _ip_json(prefix, args)) if not ip_prefix else (lambda args: _ip_json([], ip_prefix + args))
    ns = {"netns": inode, "name": name or "",
          "interfaces": interfaces(ip(["-d", "addr", "show"])),
          "routes": routes(ip(["-4", "route", "show", "table", "all"])),
          "sysctl": sysctls(_run(prefix + ["grep", "-rsH", ".", "/proc/sys/net/ipv4/conf",
                                           "/proc/sys/net/ipv4/ip_forward"]))}
    return untrusted.clean(ns)  # interface names may hold any byte but '/', ':' and space


class Namespaces:
    """The namespaces of one trace: inode -> namespace object (see `gather`)."""

    def __init__(self, known=()):
        self._by_inode: dict[int, dict] = {}
        self._names: dict[int, str] | None = None
        for ns in known:
            self.add(ns)

    def add(self, ns: dict) -> None:
        if isinstance(ns, dict) and type(ns.get("netns")) is int and ns["netns"]:
            self._by_inode[ns["netns"]] = ns

    def get(self, inode: int) -> dict:
        return self._by_inode.get(inode) or {}

    def __contains__(self, inode: int) -> bool:
        return inode in self._by_inode

    def __iter__(self):
        return iter(self._by_inode.values())

    def __len__(self) -> int:
        return len(self._by_inode)

    def name(self, inode: int) -> str:
        ns = self._by_inode.get(inode)
        return (ns or {}).get("name") or fallback_name(inode)

    def learn(self, events) -> list[dict]:
        """Live: gather every namespace met for the first time in these events; returns the
        new namespace objects (for the recording), in the order they were met."""
        new = []
        for ev in events:
            inode = ev.netns
            if inode and inode not in self._by_inode:
                if self._names is None or inode not in self._names:
                    self._names = named()  # a namespace made after the last look
                ns = gather(inode, self._names.get(inode))
                self._by_inode[inode] = ns
                new.append(ns)
        return new
