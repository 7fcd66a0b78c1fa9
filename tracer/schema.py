"""The JSON schema of the recording format (printed by `vethtrace schema`).

A recording is JSON lines: a header, then events, then optionally a footer.  Each line
matches exactly one of the definitions below: an event is a row (format 2, an array in the
order of the header's "fields") or an object (format 1, still read).  The format is
versioned by the header's "version"; readers accept versions up to their own and refuse
newer ones with a message saying to upgrade.
"""
from __future__ import annotations

from .events import FIELDS, KINDS
from .recording import FORMAT, VERSION

_INT = {"type": "integer"}
_STR = {"type": "string"}
_HEX = {"type": "string", "pattern": "^[0-9a-f]*$"}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"vethtrace-recording-v{VERSION}",
    "title": f"vethtrace recording, format version {VERSION}",
    "description": "JSON lines: line 1 is a header, then one event per line, then optionally a footer. "
                   "Each line matches one of the definitions: in format 2 an event is a row (a JSON "
                   "array whose columns the header's fields name), in format 1 an object.",
    "oneOf": [{"$ref": "#/$defs/header"}, {"$ref": "#/$defs/event_row"}, {"$ref": "#/$defs/event"},
              {"$ref": "#/$defs/footer"}],
    "$defs": {
        "header": {
            "type": "object",
            "required": ["vethtrace", "version", "context"],
            "if": {"properties": {"version": {"minimum": 2}}},
            "then": {"required": ["fields"]},
            "properties": {
                "vethtrace": {"const": FORMAT},
                "version": {"type": "integer", "minimum": 1, "maximum": VERSION},
                "created": {"type": "string", "description": "local time the recording started"},
                "kernel": {"type": "string", "description": "uname -r of the traced machine"},
                "mechanism": {"type": "string", "description": "probe mechanism: tp_btf or fentry + tp_btf"},
                "wall_offset_ns": {"type": "integer", "description": "add to an event's ts to get Unix time in ns"},
                "command": {"type": "array", "items": _STR, "description": "the command traced, if any"},
                "fields": {"const": list(FIELDS), "description": "format 2: the columns of an event row"},
                "context": {
                    "type": "object",
                    "description": "the traced network namespace, as the verdicts need it",
                    "properties": {
                        "netns": {"type": "integer", "description": "namespace inode"},
                        "name": {"type": "string", "description": "ip netns name, if any"},
                        "interfaces": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"ifindex": _INT, "name": _STR, "kind": _STR,
                                           "peer": {"type": ["string", "null"]}, "up": {"type": "boolean"},
                                           "addrs": {"type": "array", "items": _STR}}}},
                        "sysctl": {"type": "object", "additionalProperties": {
                            "type": "object", "additionalProperties": _INT}},
                    },
                },
            },
        },
        "event": {
            "type": "object",
            "required": ["ts", "kind"],
            "properties": {
                "ts": {"type": "integer", "description": "CLOCK_MONOTONIC, ns (bpf_ktime_get_ns)"},
                "kind": {"enum": sorted(KINDS.values()), "description":
                         "xmit: a device is asked to transmit; netif_rx: a device hands the packet to the "
                         "stack; receive: the stack takes it in; kfree: dropped; consume: freed after "
                         "processing; fib: route lookup; neigh_*: neighbour table; icmp_send: an ICMP "
                         "error about this packet; deliver: copied to a socket; func: fentry probe"},
                "cpu": _INT, "netns": _INT, "ifindex": _INT, "dev": _STR,
                "skb": {**_HEX, "description": "sk_buff address (reused after free)"},
                "head": {**_HEX, "description": "skb->head (shared by clones)"},
                "len": _INT, "protocol": {**_INT, "description": "ethertype"},
                "pid": _INT, "comm": _STR,
                "where": {**_STR, "description": "kernel function: free site, transmit function or probe"},
                "reason": {**_STR, "description": "drop reason name (kfree)"},
                "arg": {**_INT, "description": "per kind: icmp type<<8|code, bytes delivered, new NUD state, fib error"},
                "arg2": {**_INT, "description": "per kind: old NUD state, fib table id; packet events: flags (enum vtr_pkt_flags)"},
                "data": {**_HEX, "description": "first packet bytes copied by the probe"},
                "l2": {"type": "boolean", "description": "data starts at the Ethernet header"},
                "summary": {"type": "string", "description": "the packet in one line (tcpdump style), "
                            "for people and jq; readers re-parse data"},
                "fib": {"type": "object", "properties": {"src": _STR, "dst": _STR, "iif": _INT, "oif": _INT,
                                                          "proto": _INT}},
                "neigh": {"type": "object", "properties": {"addr": _STR, "lladdr": _STR}},
            },
            "not": {"anyOf": [{"required": ["vethtrace"]}, {"required": ["footer"]}]},
        },
        "footer": {
            "type": "object",
            "required": ["footer", "events", "lost"],
            "properties": {"footer": {"const": True}, "events": _INT,
                           "lost": {**_INT, "description": "events the kernel could not deliver (ring buffer full)"}},
        },
    },
}


def _row(event: dict) -> dict:
    """Format 2's event row: the event object's fields as columns, in FIELDS order; a
    field the kind does not have is "" or 0 (null for fib and neigh)."""
    props = event["properties"]
    cols = []
    for name in FIELDS:
        col = dict(props[name])
        if name in ("fib", "neigh"):
            col = {"oneOf": [{"type": "null"}, col]}
        col["title"] = name
        cols.append(col)
    return {"type": "array", "description": "format 2: one event, columns named by the header's fields",
            "prefixItems": cols, "minItems": len(FIELDS), "items": False}


SCHEMA["$defs"]["event_row"] = _row(SCHEMA["$defs"]["event"])
SCHEMA["$defs"]["event"]["description"] = "format 1: one event as an object, leaving out what its kind does not have"

