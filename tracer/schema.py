"""The JSON schema of the recording format (printed by `vethtrace schema`).

A recording is JSON lines: a header, then events, then optionally a footer.  Each line
matches exactly one of the definitions below: an event is a row (format 2, an array in the
order of the header's "fields") or an object (format 1, still read).  The format is
versioned by the header's "version"; readers accept versions up to their own and refuse
newer ones with a message saying to upgrade.
"""
from __future__ import annotations

from .events import COLUMNS, FIELDS, KINDS, Column
from .counters import MAX_ENTRIES, MAX_NAME
from .recording import WALL_OFFSET_MAX
from .recording import FORMAT, VERSION

_INT = {"type": "integer"}
_STR = {"type": "string"}
_HEX = {"type": "string", "pattern": "^[0-9a-f]*$"}
_FORMS = {  # a column's form (tracer/events.py COLUMNS) as JSON schema
    "int": _INT, "str": _STR, "hex": _HEX, "bytes": _HEX, "bool": {"type": "boolean"}, "summary": _STR,
    "kind": {"enum": sorted(KINDS.values())},
    "fib": {"type": "object", "properties": {"src": _STR, "dst": _STR, "iif": _INT, "oif": _INT, "proto": _INT}},
    "neigh": {"type": "object", "properties": {"addr": _STR, "lladdr": _STR}},
}


_U64 = {"type": "integer", "minimum": 0, "maximum": (1 << 64) - 1}
_U32 = {"type": "integer", "minimum": 0, "maximum": (1 << 32) - 1}
_NAME = {"type": "string", "maxLength": MAX_NAME}
_KIND = {"enum": sorted(KINDS.values())}
_COUNTS = {  # tracer.counters.KernelCounts.to_json
    "type": "object", "description": "the kernel's own counts when the recording ended (tracer.counters), exact "
    "whatever was lost: summaries and --all diagrams of a recording that lost events use them",
    "properties": {
        "ends": {"type": "array", "maxItems": MAX_ENTRIES, "description": "every drop by place and reason: "
                 "[kind, where, reason, netns, ifindex, packets]",
                 "items": {"type": "array", "prefixItems": [_KIND, _NAME, _NAME, _U32, _U32, _U64], "items": False,
                           "minItems": 6}},
        "paths": {"type": "array", "maxItems": MAX_ENTRIES, "description": "every packet whose data was released, "
                  "by its path hash (the sum of vtr_hop_hash over its events) and how it ended: "
                  "[path hash, kind, where, reason, packets]",
                  "items": {"type": "array", "prefixItems": [_U64, _KIND, _NAME, _NAME, _U64], "items": False,
                            "minItems": 5}},
        "uncounted": {**_U64, "description": "ends the kernel's full count tables had no room for"}},
}


def _column(c: Column) -> dict:
    out = {**_FORMS[c.form], "description": c.doc}
    if c.form == "int":
        out.update(minimum=c.lo, maximum=c.hi)
    return out


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
                "wall_offset_ns": {"type": "integer", "minimum": 0, "maximum": WALL_OFFSET_MAX, "description": "add to an event's ts to get Unix time in ns"},
                "command": {"type": "array", "items": _STR, "description": "the command traced, if any"},
                "fields": {"const": list(FIELDS), "description": "format 2: the columns of an event row"},
                "context": {"$ref": "#/$defs/namespace",
                            "description": "the network namespace vethtrace ran in"},
                "namespaces": {"type": "array", "items": {"$ref": "#/$defs/namespace"},
                               "description": "every namespace known when the header was written "
                                              "(those met later are in the footer)"},
            },
        },
        "namespace": {
            "type": "object",
            "description": "one network namespace as the verdicts need it (tracer.netns)",
            "properties": {
                "netns": {"type": "integer", "description": "namespace inode"},
                "name": {"type": "string", "description": "ip netns name, or empty (then shown as netns:INODE)"},
                "interfaces": {"type": "array", "items": {
                    "type": "object", "required": ["name"],
                    "properties": {"ifindex": _INT, "name": _STR, "kind": _STR,
                                   "peer": {"type": ["string", "null"]}, "up": {"type": "boolean"},
                                   "master": {"type": ["string", "null"], "description": "bridge it is a port of"},
                                   "mtu": {"type": ["integer", "null"]},
                                   "addrs": {"type": "array", "items": _STR, "description": "IPv4 ADDR/PREFIXLEN"},
                                   "addrs6": {"type": "array", "items": _STR,
                                              "description": "IPv6 ADDR/PREFIXLEN (link-local ones too); absent "
                                                             "in recordings made before it was recorded"}}}},
                "routes": {"type": "array", "items": {
                    "type": "object", "description": "an IPv4 route of the main or local table",
                    "properties": {"dst": _STR, "dev": _STR, "type": _STR, "table": _STR, "via": _STR,
                                   "src": _STR}}},
                "sysctl": {"type": "object", "description": "net.ipv4.conf.{all,default,DEV}.KEY values "
                           "by DEV (\"ipv4\": net.ipv4.ip_forward)", "additionalProperties": {
                    "type": "object", "additionalProperties": _INT}},
            },
        },
        "event": {
            "type": "object",
            "required": ["ts", "kind"],
            "properties": {c.name: _column(c) for c in COLUMNS},
            "not": {"anyOf": [{"required": ["vethtrace"]}, {"required": ["footer"]}]},
        },
        "footer": {
            "type": "object",
            "required": ["footer", "events", "lost"],
            "properties": {"footer": {"const": True}, "events": _INT,
                           "lost": {**_INT, "description": "events the kernel could not deliver (ring buffer full)"},
                           "lost_windows": {"type": "array", "maxItems": 256,
                                            "description": "[start, end] CLOCK_MONOTONIC ns between which those "
                                                           "events were lost (tracer.losses); journeys around them "
                                                           "are shown incomplete",
                                            "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                                      "items": _INT}},
                           "namespaces": {"type": "array", "items": {"$ref": "#/$defs/namespace"},
                                          "description": "namespaces first met after the header was written"},
                           "counts": _COUNTS},
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



def _json_event(event: dict) -> dict:
    """What `show --json` and `trace --json` print per event (events.json_object)."""
    props = {name: (dict(event["properties"][name]) if name not in ("fib", "neigh")
                    else {"oneOf": [{"type": "null"}, event["properties"][name]]}) for name in FIELDS}
    props["journey"] = {"type": ["integer", "null"], "description": "the journey's id, as `show` numbers them"}
    props["conversation"] = {"type": ["integer", "null"], "description": "the conversation's id ([N] in `show`)"}
    props["wall_ns"] = {"type": "integer", "description": "Unix time of the event, ns (ts is CLOCK_MONOTONIC)"}
    return {"type": "object", "description": "`vethtrace show --json` and `trace --json`: one event per line, "
            "every key always present", "properties": props, "required": list(props), "additionalProperties": False}


SCHEMA["$defs"]["json_event"] = _json_event(SCHEMA["$defs"]["event"])
