"""Protocol cases beyond ping (TCP, UDP, ICMP errors, netfilter, rp_filter, MTU, IPv6) as test
cases: what must be true of each trace.  Used by the live tests (fresh run, tests/
test_protocols_live.py) and the replay tests (recorded traces, tests/test_protocols_replay.py).

The traces tests/traces/proto-*.jsonl were recorded by the live tests
(`sudo VETHTRACE_UPDATE_TRACES=1 .venv/bin/python -m pytest tests/test_protocols_live.py`):
two namespaces A (192.168.7.1, fd07::1 on va) and B (192.168.7.2, fd07::2 on vb) joined by
a veth pair, `vethtrace run --record` in A around the client named in each case, with the
default scope: the packets first seen in A, each followed into B, and what B sends back to
them followed from B's own transmit (checked by `sent_by_b`).
"""
from __future__ import annotations

import errno

from vethtrace.tracer.correlate import ConvKind, Correlator, Role
from vethtrace.tracer.packet import TCP_RST, TCP_SYN, local_error
from vethtrace.tracer.recording import Recording
from vethtrace.tracer.verdict import DELIVERED, verdict

A_IP, B_IP, A_IP6, B_IP6 = "192.168.7.1", "192.168.7.2", "fd07::1", "fd07::2"
UNOWNED6 = "fd07::9"  # on the pair's subnet, given to no interface
TCP_PORT, CLOSED_PORT, UDP_PORT = 8080, 8081, 9999


def correlate(rec: Recording) -> Correlator:
    corr = Correlator(rec.context, namespaces=rec.namespaces)
    corr.feed(rec.events)
    return corr


def convs(corr, kind):
    return [c for c in corr.conversations if c.kind == kind]


def tcp_journeys(corr, port):
    return [j for j in corr.journeys if j.pkt is not None and j.pkt.is_tcp and port in (j.pkt.sport, j.pkt.dport)]


def sent_by_b(j) -> bool:
    """The journey was seen leaving B (vb's transmit): the scope followed it from where it
    was made, not only from where it came into A."""
    return any(e.kind == "xmit" and e.dev == "vb" for e in j.events)


def rules_of(corr, journeys) -> list[str]:
    return [verdict(j, corr).rule for j in journeys]


def check_tcp_listening(corr) -> None:
    """A connection to a listening port: every segment of the handshake, the data and the
    close in one conversation; none of them a failure or a loss."""
    segs = tcp_journeys(corr, TCP_PORT)
    assert len(segs) >= 7, [j.summary for j in segs]  # SYN, SYN-ACK, ACK, data, ack, data, FINs...
    conv = {id(j.conversation) for j in segs}
    assert len(conv) == 1, "one TCP connection, one conversation"
    c = segs[0].conversation
    assert c.kind == ConvKind.TCP and c.client[1] != TCP_PORT
    assert any(sent_by_b(j) for j in segs if j.pkt.sport == TCP_PORT), "B's segments followed from B"
    syn = [j for j in segs if j.pkt.tcp_flags & (TCP_SYN | 0x10) == TCP_SYN]
    assert len(syn) == 1 and syn[0].role == Role.REQUEST
    assert verdict(syn[0], corr).rule == "tcp.syn.accepted"
    for j in segs:
        v = verdict(j, corr)
        assert not v.failure, (j.summary, v.rule, v.text)
        assert "lost events" not in v.text, (j.summary, v.text)
        assert v.rule or v.outcome == DELIVERED, (j.summary, v.text)  # every segment explained by a rule
    data = [j for j in segs if j.pkt.payload]
    assert data and all(verdict(j, corr).outcome == DELIVERED for j in data), [verdict(j, corr).text for j in data]


def check_tcp_closed(corr) -> None:
    segs = tcp_journeys(corr, CLOSED_PORT)
    syn = [j for j in segs if j.pkt.tcp_flags == TCP_SYN]
    rst = [j for j in segs if j.pkt.has_tcp_flag(TCP_RST)]
    assert syn and rst, [j.summary for j in segs]
    assert syn[0].conversation is rst[0].conversation, "the RST joins the SYN's conversation"
    v = verdict(syn[0], corr)
    assert v.rule == "tcp.syn.no-listener", (v.rule, v.text)
    assert syn[0].end.reason == "NO_SOCKET"
    assert f"tcp/{CLOSED_PORT}" in v.text
    assert verdict(rst[0], corr).rule == "tcp.rst.answers"
    assert sent_by_b(rst[0])
    assert rst[0].pkt.tcp_ack == syn[0].pkt.tcp_seq + 1


def check_udp_closed(corr) -> None:
    dgrams = [j for j in corr.journeys if j.pkt is not None and j.pkt.is_udp and j.pkt.dport == UDP_PORT]
    errors = [j for j in corr.journeys if j.pkt is not None and j.pkt.is_icmp_error and j.pkt.inner is not None
              and j.pkt.inner.dport == UDP_PORT]
    assert dgrams and errors
    assert errors[0].conversation is dgrams[0].conversation, "the port unreachable joins the UDP flow"
    assert dgrams[0].conversation.kind == ConvKind.UDP and errors[0].role == Role.ERROR
    v = verdict(dgrams[0], corr)
    assert v.rule == "udp.no-listener" and dgrams[0].end.reason == "NO_SOCKET", (v.rule, v.text)
    assert f"udp/{UDP_PORT}" in v.text
    e = verdict(errors[0], corr)
    assert e.rule == "icmp.error.to-socket", (e.rule, e.text)
    assert "ECONNREFUSED" in e.text
    assert sent_by_b(errors[0])


def check_nft_drop(corr) -> None:
    reqs = [j for j in corr.journeys if j.pkt is not None and j.pkt.is_echo_request and j.pkt.dst == B_IP]
    assert reqs
    v = verdict(reqs[0], corr)
    assert v.rule == "netfilter.drop" and reqs[0].end.reason == "NETFILTER_DROP", (v.rule, v.text)
    assert "prerouting or input" in v.text
    assert "nft list ruleset" in v.advice


def check_rp_filter(corr) -> None:
    reqs = [j for j in corr.journeys if j.pkt is not None and j.pkt.is_echo_request and j.pkt.dst == B_IP]
    assert reqs
    v = verdict(reqs[0], corr)
    assert v.rule == "rp_filter.drop" and reqs[0].end.reason == "IP_RPFILTER", (v.rule, v.text)
    assert reqs[0].end.dev == "vb"
    assert "rp_filter=2" in v.advice and "conf.vb." in v.advice and "<dev>" not in v.advice


def check_mtu(corr) -> None:
    refused = [j for j in corr.journeys if verdict(j, corr).rule == "send.refused"]
    assert refused, [(j.summary, verdict(j, corr).text) for j in corr.journeys]
    for j in refused:
        v = verdict(j, corr)
        assert v.outcome != DELIVERED and v.failure
        assert "MTU of 1000" in v.text and "EMSGSIZE" in v.text, v.text
        # read from the error the kernel queued (errno, and the MTU in ee_info), not guessed from the route
        assert local_error(j.delivered[-1].data) == ("IPv4", errno.EMSGSIZE, 1000)
    # the error-queue read is never a delivered packet
    assert not any(verdict(j, corr).outcome == DELIVERED and (j.pkt is None or not j.pkt.is_ip)
                   for j in corr.journeys)
    assert not any(j.pkt is not None and j.pkt.is_ip and j.pkt.ip_len and j.pkt.ip_len > 1000
                   and any(e.kind == "xmit" for e in j.events) for j in corr.journeys)


def check_ipv6_ping(corr) -> None:
    nd = [c for c in convs(corr, ConvKind.ND) if c.key.ends == (B_IP6,)]
    assert nd, [c.title for c in corr.conversations]
    c = nd[0]
    assert c.with_role(Role.SOLICIT) and c.with_role(Role.ADVERT), "NS and NA in one conversation"
    assert verdict(c.with_role(Role.SOLICIT)[0], corr).rule == "nd.answered"
    assert all(sent_by_b(j) for j in c.with_role(Role.ADVERT))
    echo = [c for c in convs(corr, ConvKind.ECHO) if B_IP6 in c.key.ends]
    assert echo
    req, rep = echo[0].with_role(Role.REQUEST), echo[0].with_role(Role.REPLY)
    assert req and rep, "request and reply in one conversation"
    assert verdict(req[0], corr).rule == "echo6.answered"
    assert verdict(rep[0], corr).outcome == DELIVERED and sent_by_b(rep[0])
    # the advertisement is not glued to the echo reply
    assert not any(j.pkt.is_neighbor_advert for j in rep)


def check_nd_no_owner(corr) -> None:
    """A ping to an IPv6 address nobody has: its solicitations (retries included) are one
    conversation, each unanswered because no interface of B has the address; the echo
    request waiting for them is dropped for that reason, with the same advice."""
    nd = [c for c in convs(corr, ConvKind.ND) if c.key.ends == (UNOWNED6,)]
    assert len(nd) == 1, [c.title for c in corr.conversations]
    solicits = nd[0].with_role(Role.SOLICIT)
    assert solicits and not nd[0].with_role(Role.ADVERT)
    assert all(j.conversation is nd[0] for j in corr.journeys if j.pkt is not None and j.pkt.is_neighbor_solicit
               and j.pkt.nd_target == UNOWNED6), "every retry joins the one conversation"
    for j in solicits:
        v = verdict(j, corr)
        assert v.rule == "nd.unanswered.no-owner" and v.failure, (v.rule, v.text)
        assert corr.namespaces.name(j.end.netns).startswith("vtp-b-") and j.end.dev == "vb"
        assert corr.namespaces.name(j.end.netns) in v.text
        assert f"ip -6 addr add {UNOWNED6}/64 dev vb" in v.advice, v.advice
    req = [j for j in corr.journeys if j.pkt is not None and j.pkt.is_echo_request and j.pkt.dst == UNOWNED6]
    assert len(req) == 1
    r = verdict(req[0], corr)
    assert r.rule == "nd.failed" and r.advice == verdict(solicits[-1], corr).advice, (r.rule, r.text)
    errors = [j for j in corr.journeys if j.pkt is not None and j.pkt.is_icmp_error and j.pkt.ip_proto == 58]
    assert errors and verdict(errors[0], corr).rule == "icmp.error.read"  # ping read "address unreachable"
    # the error about it (its quote holds the request's source only) joins the request's conversation
    assert errors[0].pkt.inner.src == req[0].pkt.src
    assert errors[0].conversation is req[0].conversation and errors[0].role == Role.ERROR


CHECKS = {"tcp-listen": check_tcp_listening, "tcp-closed": check_tcp_closed, "udp-closed": check_udp_closed,
          "nft-drop": check_nft_drop, "rp-filter": check_rp_filter, "mtu": check_mtu, "ipv6-ping": check_ipv6_ping,
          "nd-no-owner": check_nd_no_owner}
