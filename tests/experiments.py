"""The article's experiments as test cases: how to run each one, and what must be true of
its trace.  Used by the live tests (fresh run) and the replay tests (recorded traces)."""
from __future__ import annotations

from dataclasses import dataclass

from vethtrace.tracer.correlate import Correlator
from vethtrace.tracer.recording import Recording
from vethtrace.tracer.verdict import ANSWERED, DELIVERED, DROPPED, verdict

VETH_XMIT = "veth0 (veth_xmit)"
LO_XMIT = "lo (loopback_xmit)"


@dataclass
class Experiment:
    name: str        # trace file stem
    scenario: str    # tracer.lab scenario
    ping: list[str]  # arguments for ping
    ping_ok: bool    # does plain ping succeed?


EXPERIMENTS = {
    "exp1": Experiment("exp1", "one-ip", ["-c", "2", "192.168.2.1"], False),
    "exp2": Experiment("exp2", "two-ips-fixed", ["-c", "2", "-I", "veth0", "192.168.2.1"], True),
    "exp2-default": Experiment("exp2-default", "two-ips", ["-c", "2", "-I", "veth0", "192.168.2.1"], False),
    "exp3": Experiment("exp3", "two-ips-fixed", ["-c", "2", "-I", "veth0", "192.168.2.2"], False),
}


def correlate(rec: Recording) -> Correlator:
    corr = Correlator(rec.context)
    corr.feed(rec.events)
    return corr


def names(j) -> list[str]:
    return [h.name for h in j.hops]


def arp_requests(corr, target):
    return [j for j in corr.journeys if j.pkt is not None and j.pkt.l3 == "ARP"
            and j.pkt.is_arp_request and j.pkt.dst == target]


def arp_replies(corr):
    return [j for j in corr.journeys if j.pkt is not None and j.pkt.l3 == "ARP" and j.pkt.is_arp_reply]


def echo_convs(corr):
    return [c for c in corr.conversations if c.kind == "echo"]


def check_unanswered_arp(corr, target: str, why: str) -> None:
    """Article experiments 1 and 3 (and 2 on kernels that ignore local-source ARP): the ARP
    request leaves veth0, arrives at veth1, reaches arp_rcv and is consumed, unanswered."""
    reqs = arp_requests(corr, target)
    assert reqs, f"no ARP request for {target}"
    for j in reqs:
        assert names(j) == [VETH_XMIT, "veth1", "stack: arp_rcv"], names(j)
        assert j.end is not None and j.end.kind == "consume" and j.end.func == "arp_process"
        v = verdict(j, corr)
        assert "without a reply" in v.text and why in v.text, v.text
    assert not arp_replies(corr), "an ARP reply was seen"
    # Every echo request ends dropped because the neighbour never resolved, and ping
    # is told so by an ICMP host-unreachable delivered to its socket.
    convs = echo_convs(corr)
    assert convs
    for c in convs:
        req = c.with_role("request")
        assert req and all(j.end is not None and j.end.reason == "NEIGH_FAILED" for j in req)
        assert all(verdict(j, corr).outcome == DROPPED for j in req)
        assert all(not j.hops for j in req), "an echo request reached a device"
        errors = c.with_role("error")
        assert errors, "no ICMP error linked to the echo request"
        for e in errors:
            assert e.pkt.icmp_type == 3 and e.pkt.icmp_code == 1
            assert names(e)[0] == LO_XMIT and names(e)[-1].startswith("socket (")


def check_exp1(corr) -> None:
    check_unanswered_arp(corr, "192.168.2.1", "no interface in this namespace owns 192.168.2.1")


def check_exp3(corr) -> None:
    check_unanswered_arp(corr, "192.168.2.2", "no interface in this namespace owns 192.168.2.2")


def check_exp2_default(corr) -> None:
    check_unanswered_arp(corr, "192.168.2.1", "accept_local=0")
    v = verdict(arp_requests(corr, "192.168.2.1")[0], corr)
    assert "accept_local=1" in v.advice and "rp_filter" in v.advice and "sysctl -w" in v.advice, v.advice


def check_exp2(corr) -> None:
    """Echo request veth0 -> veth1 -> icmp_rcv; echo reply over lo back to ping's socket;
    both in one conversation; the ARP exchange before the first request is answered."""
    reqs = arp_requests(corr, "192.168.2.1")
    assert reqs and all(verdict(j, corr).outcome == ANSWERED for j in reqs)
    replies = arp_replies(corr)
    assert replies and names(replies[0]) == ["veth1 (veth_xmit)", "veth0", "stack: arp_rcv"]
    convs = echo_convs(corr)
    assert len(convs) == 2, convs
    for c in convs:
        (req,) = c.with_role("request")
        (rep,) = c.with_role("reply")
        assert names(req) == [VETH_XMIT, "veth1", "stack: icmp_rcv"], names(req)
        assert req.end.kind == "consume" and req.end.func == "icmp_rcv"
        assert names(rep)[:2] == [LO_XMIT, "stack: icmp_rcv"] and names(rep)[-1].startswith("socket ("), names(rep)
        assert verdict(rep, corr).outcome == DELIVERED
        assert rep.pkt.src == req.pkt.dst and rep.pkt.dst == req.pkt.src
        assert (rep.pkt.icmp_id, rep.pkt.icmp_seq) == (req.pkt.icmp_id, req.pkt.icmp_seq)


CHECKS = {"exp1": check_exp1, "exp2": check_exp2, "exp2-default": check_exp2_default, "exp3": check_exp3}
