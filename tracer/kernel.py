"""What the running kernel offers: BTF, tracepoints, privileges, drop-reason names,
namespaces and their interfaces.  Used by the loader, the decoder and `vethtrace doctor`."""
from __future__ import annotations

import json
import os
import subprocess

from . import libbpf, untrusted

TRACEPOINTS = ("net_dev_start_xmit", "netif_rx", "netif_receive_skb", "kfree_skb", "consume_skb",
               "fib_table_lookup", "neigh_create", "neigh_update", "icmp_send", "skb_copy_datagram_iovec")
FENTRY_FUNCS = ("veth_xmit", "arp_rcv", "icmp_rcv", "loopback_xmit")


class SetupError(RuntimeError):
    """Something about this machine or invocation the user must fix; one line."""


def btf_path() -> str:
    return os.environ.get("VETHTRACE_BTF", "/sys/kernel/btf/vmlinux")


def open_btf() -> libbpf.BTF:
    path = btf_path()
    if not os.path.exists(path):
        raise SetupError(f"this kernel has no BTF ({path} is missing); vethtrace needs a kernel "
                         "built with CONFIG_DEBUG_INFO_BTF=y")
    try:
        libbpf.capture_messages()  # libbpf's own complaints would add lines to ours
        return libbpf.BTF(path)
    except OSError as exc:
        why = "not a BTF file" if exc.errno and exc.errno >= 4000 else exc.strerror
        raise SetupError(f"cannot read kernel BTF {path}: {why}") from None
    except libbpf.LibbpfMissing as exc:
        raise SetupError(str(exc)) from None


def require_root() -> None:
    if os.geteuid() != 0:
        raise SetupError("tracing needs root (CAP_BPF and CAP_PERFMON); run it again with sudo")


def drop_reasons(btf: libbpf.BTF) -> dict[int, str]:
    return btf.enum_values("skb_drop_reason")


def netns_inode(pid: str = "self") -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def netns_name() -> str:
    """The `ip netns` name of the namespace we run in, if it has one."""
    me = netns_inode()
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return ""
    for name in names:
        try:
            if os.stat(f"/run/netns/{name}").st_ino == me:
                return name
        except OSError:
            continue
    return ""


def interfaces() -> list[dict]:
    """Interfaces of the current namespace with their addresses (`ip -j addr`)."""
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, check=True).stdout
        links = json.loads(out or "[]")
    except (OSError, subprocess.CalledProcessError, ValueError):
        return []
    result = []
    for link in links:
        result.append({
            "ifindex": link.get("ifindex"), "name": link.get("ifname"),
            "kind": (link.get("linkinfo") or {}).get("info_kind") or link.get("link_type", ""),
            "peer": link.get("link"), "up": "UP" in link.get("flags", []),
            "addrs": [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if a.get("family") == "inet"],
        })
    return result


def ipv4_sysctls(names: list[str]) -> dict[str, dict[str, int]]:
    """accept_local and rp_filter for `all` and the given interfaces, read in this namespace."""
    out = {}
    for name in ["all", *names]:
        values = {}
        for key in ("accept_local", "rp_filter"):
            try:
                with open(f"/proc/sys/net/ipv4/conf/{name}/{key}") as f:
                    values[key] = int(f.read().strip())
            except (OSError, ValueError):
                pass
        out[name] = values
    return out


def context() -> dict:
    """The namespace vethtrace runs in, as the verdicts need it (interfaces, addresses,
    routes, sysctls): a namespace object of tracer.netns, saved in every recording."""
    from . import netns
    return netns.gather(netns.current_inode(), netns_name() or None)


def doctor() -> list[tuple[str, bool, str]]:
    """(check, ok, detail) rows for `vethtrace doctor`."""
    rows = []
    root = os.geteuid() == 0
    rows.append(("running as root", root, "yes" if root else "no: tracing needs sudo"))
    path = btf_path()
    has_btf = os.path.exists(path)
    rows.append(("kernel BTF", has_btf, path if has_btf else f"{path} missing"))
    try:
        libbpf.lib()
        rows.append(("libbpf", True, "loaded"))
    except libbpf.LibbpfMissing as exc:
        rows.append(("libbpf", False, str(exc)))
        return rows
    if has_btf:
        with libbpf.BTF(path) as btf:
            for tp in TRACEPOINTS:
                arity = btf.tracepoint_arity(tp)
                rows.append((f"tracepoint {tp}", arity is not None,
                             f"{arity} arguments" if arity is not None else "absent: skipped"))
            for fn in FENTRY_FUNCS:
                rows.append((f"function {fn}", bool(btf.find(fn, 12)), "in BTF" if btf.find(fn, 12) else "absent"))
            rows.append(("drop reasons", True, f"{len(drop_reasons(btf))} names from BTF"))
    ks = os.path.exists("/proc/kallsyms")
    rows.append(("/proc/kallsyms", ks, "code locations get names" if ks else "missing: locations stay addresses"))
    return rows
