"""The multi-namespace labs as test cases: what each echo's path must be.  Used by the live
tests (fresh runs, tests/test_netns_live.py) and the replay tests (recorded traces)."""
from __future__ import annotations

# What each echo's path must be, per lab: {a}, {b}, {br}, {r} are the namespaces' names.
PATHS = {
    "two-netns": {
        ("a", "request"): "{a}: veth0 (veth_xmit) > {b}: veth1 > stack: icmp_rcv",
        ("a", "reply"): "{b}: veth1 (veth_xmit) > {a}: veth0 > stack: icmp_rcv > socket (ping)",
        ("b", "request"): "{b}: veth1 (veth_xmit) > {a}: veth0 > stack: icmp_rcv",
        ("b", "reply"): "{a}: veth0 (veth_xmit) > {b}: veth1 > stack: icmp_rcv > socket (ping)",
    },
    "bridge": {
        ("a", "request"): "{a}: veth0 (veth_xmit) > {br}: a1 > br0 (bridge) > b1 (veth_xmit) > {b}: veth0 > stack: icmp_rcv",
        ("a", "reply"): "{b}: veth0 (veth_xmit) > {br}: b1 > br0 (bridge) > a1 (veth_xmit) > {a}: veth0 > stack: icmp_rcv"
                        " > socket (ping)",
        ("b", "request"): "{b}: veth0 (veth_xmit) > {br}: b1 > br0 (bridge) > a1 (veth_xmit) > {a}: veth0 > stack: icmp_rcv",
        ("b", "reply"): "{a}: veth0 (veth_xmit) > {br}: a1 > br0 (bridge) > b1 (veth_xmit) > {b}: veth0 > stack: icmp_rcv"
                        " > socket (ping)",
    },
    "router": {
        ("a", "request"): "{a}: veth0 (veth_xmit) > {r}: ra > stack: ip_forward > rb (veth_xmit) > {b}: veth0 > stack: icmp_rcv",
        ("a", "reply"): "{b}: veth0 (veth_xmit) > {r}: rb > stack: ip_forward > ra (veth_xmit) > {a}: veth0 > stack: icmp_rcv"
                        " > socket (ping)",
        ("b", "request"): "{b}: veth0 (veth_xmit) > {r}: rb > stack: ip_forward > ra (veth_xmit) > {a}: veth0 > stack: icmp_rcv",
        ("b", "reply"): "{a}: veth0 (veth_xmit) > {r}: ra > stack: ip_forward > rb (veth_xmit) > {b}: veth0 > stack: icmp_rcv"
                        " > socket (ping)",
    },
}


def roles(namespaces) -> dict[str, str]:
    """role -> namespace name, from the names of a lab's namespaces (<base>-<role>)."""
    return {ns["name"].rsplit("-", 1)[1]: ns["name"] for ns in namespaces if ns.get("name")}
