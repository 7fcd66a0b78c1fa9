"""Verdicts: how a journey ended, in words a user can act on.

Works from the journey, its conversation, the neighbour changes the correlator saw, and
the context of the packet's own namespace (interfaces, addresses, routes, sysctls) as the
trace recorded it: each fact is judged in the namespace where it happened.
"""
from __future__ import annotations

from dataclasses import dataclass

from .correlate import Correlator, Journey
from .events import nud_name

# Outcomes, from good to bad; renderers colour by these.
DELIVERED, ANSWERED, CONSUMED, IN_FLIGHT, DROPPED = "delivered", "answered", "consumed", "in flight", "dropped"

REASON_HINTS = {
    "NO_SOCKET": "no socket was waiting for it",
    "IP_RPFILTER": "reverse-path filter: set net.ipv4.conf.<dev>.rp_filter=0 (or 2) on the receiving interface",
    "OTHERHOST": "the Ethernet destination is another host's",
    "IP_INADDRERRORS": "the destination address is not valid here",
    "IP_NOPROTO": "no handler for this IP protocol",
    "NETFILTER_DROP": "a netfilter rule dropped it",
    "NEIGH_FAILED": "address resolution (ARP) failed",
    "NEIGH_QUEUEFULL": "too many packets waiting for ARP",
    "IP_OUTNOROUTES": "no route to the destination",
}


# Verdict tags: what a consumed packet's end means, for code (the text is for people).
UNANSWERED, PARKED = "unanswered", "parked"


@dataclass
class Verdict:
    outcome: str
    text: str
    advice: str = ""
    tag: str = ""  # UNANSWERED, PARKED or ""

    @property
    def failure(self) -> bool:
        return self.outcome == DROPPED or self.tag == UNANSWERED


class Context:
    """What one namespace looked like when the trace was taken (a tracer.netns object)."""

    def __init__(self, ctx: dict | None, label: str = ""):
        ctx = ctx or {}
        self.name = ctx.get("name", "")          # the ip netns name, or ""
        self.netns = ctx.get("netns", 0)
        self.label = label or self.name or (f"netns:{self.netns}" if self.netns else "this namespace")
        self.interfaces = ctx.get("interfaces", [])
        self.sysctl = ctx.get("sysctl", {})
        self.known = bool(self.interfaces)      # was the namespace's context recorded at all?

    def owner(self, addr: str) -> str | None:
        for i in self.interfaces:
            for a in i.get("addrs", []):
                if a.split("/")[0] == addr:
                    return i["name"]
        return None

    def name_of(self, ifindex: int) -> str | None:
        for i in self.interfaces:
            if i.get("ifindex") == ifindex:
                return i["name"]
        return None

    def value(self, dev: str, key: str) -> int | None:
        return self.sysctl.get(dev, {}).get(key)

    def exec_prefix(self) -> str:
        """How to run a command in this namespace: `ip netns exec NAME ` (nothing for an
        unnamed one: it can only be entered through one of its processes)."""
        return f"ip netns exec {self.name} " if self.name else ""


def context_of(corr: Correlator, netns: int) -> Context:
    """The context of namespace `netns` in this trace.  A recording made before namespaces
    were recorded has one context, without an inode: it stands for every event."""
    ns = corr.namespaces.get(netns) if netns else {}
    if not ns and not corr.context.get("netns"):
        ns = corr.context
    return Context(ns, corr.namespaces.name(netns) if netns else "")


def verdict(j: Journey, corr: Correlator) -> Verdict:
    # judged where it ended: the namespace of its last event
    ctx = context_of(corr, (j.end or (j.events[-1] if j.events else None) or j).netns)
    p = j.pkt
    if j.delivered:
        d = j.delivered[-1]
        text = f"delivered to {d.comm} (pid {d.pid}), {d.arg} bytes"
        dropped = [e for e in j.frees if e.kind == "kfree" and e.reason == "NO_SOCKET"]
        if dropped:
            e = dropped[0]
            text += (f" through its raw socket (the original was freed at {e.func}, NO_SOCKET: "
                     "no ICMP datagram socket wanted it; normal)")
        return Verdict(DELIVERED, text)
    if j.cut:
        return Verdict(IN_FLIGHT, "no end seen: the kernel lost events (its sk_buff carried another packet "
                                  "before its free was reported)")
    if j.end is None or j.live:
        return Verdict(IN_FLIGHT, "no end seen: still in flight when the trace stopped")
    end = j.end
    fn = end.func or "an unknown place"
    if end.kind == "kfree":
        return _dropped(j, corr, ctx, end)
    # consumed
    if p is not None and p.l3 == "ARP":
        return _arp_consumed(j, corr, ctx, fn)
    if p is not None and p.icmp_type == 8 and fn == "icmp_rcv":
        conv = j.conversation
        if conv is not None and conv.with_role("reply"):
            return Verdict(ANSWERED, "consumed by icmp_rcv, which answered it with an echo reply")
        return Verdict(CONSUMED, "consumed by icmp_rcv")
    if fn.startswith("__neigh_event_send"):
        return Verdict(CONSUMED, "parked by __neigh_event_send while ARP resolves; never sent", tag=PARKED)
    return Verdict(CONSUMED, f"consumed by {fn}")


def _arp_consumed(j: Journey, corr: Correlator, ctx: Context, fn: str) -> Verdict:
    p = j.pkt
    if p.is_arp_reply:
        changes = [e for e in corr.neigh_changes(p.src) if e.kind == "neigh_update" and e.ts >= j.start]
        state = f": neighbour {p.src} is now {nud_name(changes[0].arg)}" if changes else ""
        return Verdict(ANSWERED, f"ARP reply processed by {fn}{state} ({p.src} is-at {p.sha})")
    if not p.is_arp_request:
        return Verdict(CONSUMED, f"consumed by {fn}")
    conv = j.conversation
    if conv is not None and conv.with_role("arp reply"):
        r = conv.with_role("arp reply")[0]
        return Verdict(ANSWERED, _answered(r, corr))
    target, sender = p.dst, p.src
    where = "" if len(corr.namespaces) <= 1 else f" in {ctx.label}"
    base = f"ARP request for {target} consumed by {fn}{where} without a reply"
    if not ctx.known:
        return Verdict(CONSUMED, f"{base}; the trace has no context of {ctx.label}, so why cannot be told",
                       tag=UNANSWERED)
    owner = ctx.owner(target)
    if owner is None:
        return Verdict(CONSUMED, f"{base}: no interface in {_here(ctx, corr)} owns {target}",
                       f"nobody can answer: give {target} to an interface ({ctx.exec_prefix()}ip addr add "
                       f"{target}/24 dev ...), or ping an address that exists", tag=UNANSWERED)
    if ctx.owner(sender) is not None:
        rx = j.end.dev if j.end is not None and j.end.dev else (j.hops[-2].dev if len(j.hops) >= 2 else owner)
        al = ctx.value(rx, "accept_local")
        state = f"accept_local={al} on {rx}" if al is not None else "accept_local off"
        return Verdict(CONSUMED,
                       f"{base}: {owner} owns {target}, but the sender {sender} is also an address of "
                       f"{_here(ctx, corr)}, and with {state} the kernel ignores requests from a local source",
                       f"allow it: {ctx.exec_prefix()}sysctl -w net.ipv4.conf.{rx}.accept_local=1 "
                       f"net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.{rx}.rp_filter=0 "
                       f"(or `vethtrace lab up two-ips-fixed`)", tag=UNANSWERED)
    return Verdict(CONSUMED, f"{base}: {owner} owns {target} but the kernel chose not to answer "
                             "(check arp_ignore, arp_filter and rp_filter on it)", tag=UNANSWERED)


def _here(ctx: Context, corr: Correlator) -> str:
    """`this namespace` in a trace of one namespace, else its name."""
    return "this namespace" if len(corr.namespaces) <= 1 else ctx.label


def _answered(r: Journey, corr: Correlator) -> str:
    """Who sent the ARP reply: the device that transmitted it (with its namespace when the
    trace spans several); if its sending was not traced, only where it was seen arriving."""
    p = r.pkt
    sent = next((e for e in r.events if e.kind == "xmit" and e.dev), None)
    if sent is not None:
        who = sent.dev if len(corr.namespaces) <= 1 else f"{sent.dev} in {corr.namespaces.name(sent.netns)}"
        return f"answered: {who} replied {p.src} is-at {p.sha}"
    seen = next((e for e in r.events if e.dev), None)
    where = f" arrived on {seen.dev}" if seen is not None else " was processed"
    return f"answered: the reply {p.src} is-at {p.sha}{where} (where it was sent from was not traced)"


def _dropped(j: Journey, corr: Correlator, ctx: Context, end) -> Verdict:
    reason, fn = end.reason or "NOT_SPECIFIED", end.func
    p = j.pkt
    if reason == "NEIGH_FAILED" and p is not None and p.dst:
        convs = corr.arp_for(p.dst, netns=end.netns, before=end.ts) or corr.arp_for(p.dst, before=end.ts)
        asked = sum(len(c.with_role("arp request")) for c in convs[-1:])
        text = (f"dropped: NEIGH_FAILED at {fn}: the ARP request for {p.dst} went unanswered"
                f"{f' {asked} times' if asked else ''}, so the packet waiting for it was dropped")
        advice = ""
        if convs and convs[-1].with_role("arp request"):
            v = verdict(convs[-1].with_role("arp request")[-1], corr)
            advice = v.advice
        return Verdict(DROPPED, text, advice)
    hint = REASON_HINTS.get(reason, "")
    text = f"dropped: {reason} at {fn}" + (f" ({hint})" if hint else "")
    return Verdict(DROPPED, text)


def conversation_outcome(conv, corr: Correlator) -> Verdict:
    """One verdict for a whole conversation (the worst of its journeys, or success)."""
    verdicts = [verdict(j, corr) for j in conv.journeys]
    if conv.kind == "echo":
        replies = conv.with_role("reply")
        if any(verdict(r, corr).outcome == DELIVERED for r in replies):
            return Verdict(DELIVERED, "echo reply delivered")
        for j in conv.with_role("error"):
            t = j.pkt.summary().split(" (about")[0]
            return Verdict(DROPPED, f"answered with an error: {t}")
    for v in verdicts:
        if v.failure:
            return v
    return verdicts[-1] if verdicts else Verdict(IN_FLIGHT, "nothing seen")
