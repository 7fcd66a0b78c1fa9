"""The list's filter: a line of terms, every one of which must match a row (AND).

Terms: a protocol (icmp arp tcp udp ipv4 ipv6 echo), an IP address, an interface name of
the traced namespace, a verdict (delivered answered consumed dropped failed lost
in-flight ok), `key:value` to say which (proto: host: dev: verdict: text:), or any other
text (quote it to include spaces), searched in the packet, path and verdict.  `!term` or
`-term` negates.  A term that cannot match anything as written (an unknown key, verdict
or protocol, an address that is not one) is an error, not a silent empty list.
"""
from __future__ import annotations

import ipaddress
import re
import shlex

from vethtrace.tracer.verdict import ANSWERED, DELIVERED

PROTOCOLS = {"icmp", "arp", "tcp", "udp", "ipv4", "ipv6", "echo", "ping"}
VERDICTS = {"delivered": "delivered", "answered": "answered", "consumed": "consumed",
            "dropped": "dropped", "drop": "dropped", "drops": "dropped", "failed": "failed",
            "fail": "failed", "failures": "failed", "inflight": "in flight", "in-flight": "in flight",
            "lost": "incomplete", "incomplete": "incomplete", "ok": "ok"}
KEYS = {"proto": "proto", "protocol": "proto", "host": "addr", "addr": "addr", "ip": "addr",
        "address": "addr", "dev": "dev", "if": "dev", "iface": "dev", "interface": "dev",
        "verdict": "verdict", "v": "verdict", "text": "text"}
KEY_NAMES = "proto: host: dev: verdict: or text:"
# Words with a colon that are text, not key:value (a MAC address, a time like 0:01).
_COLON_TEXT = re.compile(r"[0-9a-f]{1,2}(:[0-9a-f]{1,2})+|[\d.:]+")
_OTHER_PROTO = re.compile(r"proto\d+")  # what a row says for an IP protocol without a name


class FilterError(ValueError):
    pass


class Filter:
    """What the list shows (see the module docstring for the terms)."""

    def __init__(self, text: str, interfaces: set[str] = frozenset()):
        self.text = text.strip()
        self.terms: list[tuple[bool, str, str]] = []  # (negated, kind, value)
        try:
            words = shlex.split(self.text)  # "seq 2" in quotes is one term
        except ValueError:
            words = self.text.split()
        for word in words:
            neg = word[0] in "!-" and len(word) > 1
            word = word[1:] if neg else word
            kind, value = self._classify(word.lower(), interfaces)
            self.terms.append((neg, kind, value))

    @staticmethod
    def _classify(word: str, interfaces) -> tuple[str, str]:
        try:
            ipaddress.ip_address(word)  # before key:value: an IPv6 address has colons
            return "addr", word
        except ValueError:
            pass
        if ":" in word and not _COLON_TEXT.fullmatch(word):
            key, value = word.split(":", 1)
            if key not in KEYS:
                raise FilterError(f"unknown filter key {key + ':'!r}: use {KEY_NAMES}")
            if not value:
                raise FilterError(f"{key}: needs a value, e.g. {key}:{_EXAMPLES[KEYS[key]]}")
            kind = KEYS[key]
            if kind == "verdict":
                if value not in VERDICTS:
                    raise FilterError(f"unknown verdict {value!r}: use one of "
                                      "delivered, answered, consumed, dropped, failed, lost, in-flight, ok")
                value = VERDICTS[value]
            elif kind == "addr":
                try:
                    ipaddress.ip_address(value)
                except ValueError:
                    raise FilterError(f"{value!r} is not an IP address") from None
            elif kind == "proto" and value not in PROTOCOLS and not _OTHER_PROTO.fullmatch(value):
                raise FilterError(f"unknown protocol {value!r}: use one of {', '.join(sorted(PROTOCOLS))}")
            return kind, value
        if word in PROTOCOLS:
            return "proto", word
        if word in VERDICTS:
            return "verdict", VERDICTS[word]
        if word in interfaces:
            return "dev", word
        return "text", word

    def matches(self, row) -> bool:
        return all(self._term(row, kind, value) != neg for neg, kind, value in self.terms)

    @staticmethod
    def _term(row, kind: str, value: str) -> bool:
        if kind == "proto":
            return value in row.protos
        if kind == "addr":
            return value in row.addrs
        if kind == "dev":
            return value in row.devs
        if kind == "verdict":
            if value == "failed":
                return row.failure
            if value == "ok":
                return row.outcome in (DELIVERED, ANSWERED)
            return row.outcome == value
        return value in row.text

    def describe(self) -> str:
        return self.text or "none"


_EXAMPLES = {"proto": "icmp", "addr": "192.168.2.1", "dev": "veth0", "verdict": "dropped", "text": "seq"}
