"""Short words for what the correlator built: a hop's place, a journey's short path, a
conversation's one-line summary and verdict label (`✓ reply delivered to ping`,
`✗ dropped: NEIGH_FAILED`), times between hops and namespace names.

Plain strings, no toolkit: the TUI's list and panes and any other view use the same words.
Like ui/text.py this module consumes what tracer/ builds and never touches BPF.
"""
from __future__ import annotations

from vethtrace.tracer.correlate import Conversation, Correlator, Hop, Journey
from vethtrace.tracer.events import nud_name
from vethtrace.tracer.verdict import (ANSWERED, CONSUMED, DELIVERED, DROPPED, IN_FLIGHT, INCOMPLETE, PARKED, UNANSWERED,
                                      Verdict, conversation_outcome, verdict)
from vethtrace.ui.text import MARKS, Style, fmt_delta, fold_retries, journey_lines, path_key

MARK = MARKS  # one mark per outcome
NEIGH_WINDOW_NS = 1_000_000_000  # neighbour changes this close to a journey belong to it
MAX_JOURNEYS = 200    # journeys of one conversation considered for rows and panes
MAX_HOPS = 40         # hops drawn per journey (a journey that lost its end can absorb later packets)
MAX_PATH = 240        # characters of a row's path
_PLAIN = Style(colour=False)


# -- words for one hop / journey / conversation ---------------------------------------------
def hop_parts(h: Hop) -> tuple[str, str, str]:
    """(place, device, kernel function) of a hop: `veth0 (veth_xmit)` is the device veth0
    in veth_xmit; `stack: icmp_rcv` is the stack's handler; `socket (ping)` the socket
    (the "function" is then the program)."""
    kind, name = h.place
    if kind == "stack":
        return "stack", h.dev, name
    if kind == "socket":
        return "socket", "", name
    fn = h.name[:-1].split(" (", 1)[1] if h.name.endswith(")") and " (" in h.name else str(h.kind)
    return name, h.dev or name, fn


def hop_short(h: Hop) -> str:
    """veth0 (veth_xmit) -> veth0; stack: icmp_rcv -> icmp_rcv; socket (ping) -> socket."""
    place, _, fn = hop_parts(h)
    return fn if place == "stack" else place


def journey_short_path(j: Journey) -> str:
    if not j.hops:
        return "(never sent)"
    if len(j.hops) > MAX_HOPS:
        return " > ".join(hop_short(h) for h in j.hops[:MAX_HOPS]) + f" > … ({len(j.hops) - MAX_HOPS} more)"
    return " > ".join(hop_short(h) for h in j.hops)


def _retry_key(j: Journey) -> tuple:
    """Cheap stand-in for "printed the same" (the list recomputes this often)."""
    e = j.end
    return (j.role, j.summary, j.path, e.func if e is not None else None, e.reason if e is not None else None,
            bool(j.delivered), bool(j.live), len(j.icmp_errors))


def journey_groups(conv: Conversation, corr: Correlator, exact: bool = False) -> list[tuple[Journey, int]]:
    """The conversation's journeys with identical retries folded: [(journey, times)].
    exact: two journeys are the same retry when ui.text would print them the same (the
    detail pane); otherwise when packet, path and end are the same (the list, cheaper).
    Only the last MAX_JOURNEYS journeys are looked at (an ARP exchange that is never
    answered gathers one per second for as long as the ping runs)."""
    key = (lambda j: journey_lines(j, corr, _PLAIN)) if exact else _retry_key
    return fold_retries(conv.journeys[-MAX_JOURNEYS:], key)


def conversation_summary(conv: Conversation) -> str:
    """`ICMP echo 192.168.2.11 > 192.168.2.1 id 7 seq 3`, `ARP who-has 192.168.2.1 tell ... (x3)`."""
    if not conv.journeys:
        return conv.kind
    if conv.kind == "echo":
        req = next((j for j in conv.journeys if j.role == "request"), None)
        p = req.pkt if req is not None else None
        if p is None:  # only the reply or an error was seen: describe the request it answers
            first = conv.journeys[0].pkt
            p = first.inner if first is not None and first.inner is not None else first
            if p is not None and p.icmp_type in (0, 129):
                return f"{_icmp(p)} echo {p.dst} > {p.src} id {p.icmp_id} seq {p.icmp_seq} (reply seen)"
        if p is not None:
            return f"{_icmp(p)} echo {p.src} > {p.dst} id {p.icmp_id} seq {p.icmp_seq}"
    first = conv.journeys[0]
    text = first.summary
    if conv.kind in ("arp", "nd"):
        asked = len(conv.with_role("arp request" if conv.kind == "arp" else "nd solicit"))
        if asked > 1:
            text += f" (x{asked})"
    return text


def _icmp(p) -> str:
    return "ICMPv6" if p.l3 == "IPv6" else "ICMP"


def conversation_brief(conv: Conversation) -> str:
    """The summary for a narrow terminal, keeping what tells conversations apart: the
    destination and the echo id and seq, or the ports.  `ICMP > 192.168.2.1 id 7 seq 3`,
    `TCP :40312 > 10.0.0.2:81`, `ARP who-has 192.168.2.1 (x3)`."""
    if not conv.journeys:
        return conv.kind
    first = conv.journeys[0]
    p = first.pkt
    if conv.kind == "echo":
        req = next((j for j in conv.journeys if j.role == "request"), None)
        if req is not None and req.pkt is not None:
            p = req.pkt
            return f"{_icmp(p)} > {p.dst} id {p.icmp_id} seq {p.icmp_seq}"
        q = p.inner if p is not None and p.inner is not None else p
        if q is not None and q.icmp_type == 0:  # only the reply was seen: it came from the destination
            return f"ICMP > {q.src} id {q.icmp_id} seq {q.icmp_seq} (reply)"
        if q is not None and q.is_echo:
            return f"ICMP > {q.dst} id {q.icmp_id} seq {q.icmp_seq}"
    if p is None:
        return first.summary
    if p.l3 == "ARP" and p.arp_op == 1:
        asked = len(conv.with_role("arp request"))
        return f"ARP who-has {p.dst}" + (f" (x{asked})" if asked > 1 else "")
    if p.sport is not None:
        return f"{first.summary.split(' ', 1)[0]} :{p.sport} > {p.dst}:{p.dport}"
    return first.summary


def conversation_path(conv: Conversation, corr: Correlator) -> str:
    """The short paths of the conversation's distinct journeys, request first:
    `veth0 > veth1 > icmp_rcv => lo > icmp_rcv > socket`."""
    seen: list[str] = []
    for j, _ in journey_groups(conv, corr):
        p = journey_short_path(j)
        if p not in seen:
            seen.append(p)
    text = " ⇒ ".join(seen)
    return text if len(text) <= MAX_PATH else text[:MAX_PATH - 1] + "…"


def journey_label(j: Journey, v: Verdict) -> str:
    """A short verdict for one journey: `✓ delivered to ping`, `✗ NEIGH_FAILED`."""
    mark = MARK.get(v.outcome, "?")
    end = j.end
    if v.outcome == INCOMPLETE and v.guess is not None and v.guess.outcome != IN_FLIGHT:
        return f"{mark} events lost ({journey_label(j, v.guess)[2:]}?)"  # what was seen, as a guess
    if v.label:  # the words of the rule that decided it (tracer/rules.py)
        return f"{mark} {v.label}"
    if v.outcome == DELIVERED:
        return f"{mark} delivered to {j.delivered[-1].comm}" if j.delivered else f"{mark} delivered"
    if v.outcome == ANSWERED:
        return f"{mark} answered"
    if v.outcome == DROPPED and end is not None:
        return f"{mark} dropped: {end.reason or 'NOT_SPECIFIED'}"
    if v.outcome == CONSUMED:
        if v.tag == UNANSWERED:
            return f"{mark} no reply"
        if v.tag == PARKED:
            return f"{mark} parked for ARP"
        return f"{mark} consumed by {end.func}" if end is not None else f"{mark} consumed"
    return f"{mark} in flight"


def conversation_verdict(conv: Conversation, corr: Correlator) -> tuple[str, str, Verdict]:
    """(outcome, short label, full verdict) for a conversation row."""
    v = conversation_outcome(conv, corr)
    if v.outcome == INCOMPLETE:  # the kernel lost events around it: what was seen, as a guess
        if v.guess is None or v.guess.outcome == IN_FLIGHT:
            return v.outcome, f"{MARK[INCOMPLETE]} {v.label}", v
        return v.outcome, f"{MARK[INCOMPLETE]} events lost ({_conversation_label(conv, corr, v.guess)[2:]}?)", v
    return v.outcome, _conversation_label(conv, corr, v), v


def _conversation_label(conv: Conversation, corr: Correlator, v: Verdict) -> str:
    outcome = v.outcome
    if outcome == DROPPED:
        dropped = next((j for j in conv.journeys if j.end is not None and j.end.kind == "kfree"
                        and not j.delivered and not j.live), None)
        if dropped is not None:
            jv = verdict(dropped, corr)
            jv = jv.guess or jv  # of what was seen
            if jv.label:
                return journey_label(dropped, jv)
            return f"{MARK[DROPPED]} dropped: {dropped.end.reason or 'NOT_SPECIFIED'}"
        err = next((j for j in conv.journeys if j.role == "error"), None)
        if err is not None:
            return f"{MARK[DROPPED]} {path_key(err, corr)[0]}"
        return f"{MARK[DROPPED]} dropped"
    if outcome == DELIVERED and conv.kind == "icmp-error" and conv.journeys:  # an error read: the rule's words
        lv = verdict(conv.journeys[-1], corr)
        return journey_label(conv.journeys[-1], lv.guess or lv)
    if outcome == DELIVERED:
        rec = [j for j in conv.journeys if j.delivered]
        who = f" to {rec[-1].delivered[-1].comm}" if rec else ""
        what = "reply delivered" if conv.kind == "echo" else "delivered"
        return f"{MARK[DELIVERED]} {what}{who}"
    if outcome == ANSWERED:
        return f"{MARK[ANSWERED]} answered"
    last = conv.journeys[-1] if conv.journeys else None
    if outcome == CONSUMED and last is not None:
        for j in conv.journeys[-MAX_JOURNEYS:]:
            jv = verdict(j, corr)
            jv = jv.guess or jv  # of what was seen
            if jv.failure:
                return journey_label(j, jv)
        lv = verdict(last, corr)
        return journey_label(last, lv.guess or lv)
    return f"{MARK[IN_FLIGHT]} in flight"


def might_fail(conv: Conversation) -> bool:
    """Cheap test (no verdict): could this conversation be a drop or go unanswered?
    Used to keep failures visible when a flood is too fast to show everything."""
    answered = None
    for j in conv.journeys:
        if j.role == "error":
            return True
        e = j.end
        if e is None:
            continue
        if e.kind == "kfree" and not j.delivered:
            return True
        if j.role == "arp request":
            if answered is None:
                answered = any(k.role == "arp reply" for k in conv.journeys)
            if not answered:
                return True
    return False


# -- time and places --------------------------------------------------------------------
def netns_label(netns: int, corr: Correlator) -> str:
    """The namespace's name in this trace (ip netns name, else netns:INODE)."""
    return corr.namespaces.name(netns) if netns else "?"


def end_text(j: Journey) -> tuple[str, str]:
    """(function column, device) for the event that ended a journey."""
    e = j.end
    if e is None:
        return ("(no end seen yet)", "")
    if e.kind == "kfree":
        return (f"kfree_skb at {e.func} ({e.reason or 'NOT_SPECIFIED'})", e.dev)
    return (f"consume_skb at {e.func}", e.dev)


def neighbour_notes(j: Journey, corr: Correlator) -> list[str]:
    """ARP state changes for the address this journey needed (or asked about)."""
    p = j.pkt
    if p is None:
        return []
    if p.l3 == "ARP":
        addr = p.src if p.is_arp_reply else p.dst
    elif p.l3 == "IPv4":
        addr = p.dst
    else:
        return []
    last = j.end.ts if j.end is not None else j.last
    out = []
    for e in corr.neigh_changes(addr):
        if not (j.start - NEIGH_WINDOW_NS <= e.ts <= last + NEIGH_WINDOW_NS // 10):
            continue
        if p.is_arp_reply and e.ts < j.start:
            continue  # a reply only changes what comes after it
        gap = fmt_delta(abs(e.ts - j.start)).lstrip("+")
        when = f"{gap} before this packet" if e.ts < j.start else f"{gap} after it started"
        if e.kind == "neigh_create":
            out.append(f"ARP: neighbour entry for {addr} created on {e.dev} ({when})")
        else:
            out.append(f"ARP: neighbour {addr} on {e.dev}: {nud_name(e.arg2)} → {nud_name(e.arg)} ({when})")
    return out


