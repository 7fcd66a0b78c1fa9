"""Strings vethtrace did not write itself: from a recording (which anybody can craft) or
from the kernel (a process names itself with prctl(PR_SET_NAME); an interface name may
hold any byte but '/', ':' and white space).  They are made safe where they enter:

* `term`: for terminals and every other display, every character that is not printable
  (C0 and C1 controls, ESC, DEL, bidi overrides, line separators) becomes a visible
  escape such as \\x1b, so no escape sequence reaches a terminal, a pane or a comment;
* `clean`: `term` over every string of a parsed JSON value (a header, an event row);
* `label`: `term`, and cut to a length a diagram can show.  (The DOT quoting itself:
  backslashes and <...>, is graphviz's escape(), applied in ui/diagram.py.)
"""
from __future__ import annotations

LABEL_MAX = 120  # characters of one untrusted string in a diagram label


def _escape(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def term(text: str) -> str:
    """`text` with every non-printable character (except the space) as a visible escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def clean(value):
    """`term` applied to every string (keys too) of a parsed JSON value."""
    if isinstance(value, str):
        return term(value)
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {clean(k) if isinstance(k, str) else k: clean(v) for k, v in value.items()}
    return value


def label(text: str, limit: int = LABEL_MAX) -> str:
    """`term` line by line (a label may have lines), each cut to `limit` characters (an
    absurdly long command would stop graphviz)."""
    return "\n".join(t if len(t) <= limit else t[:limit - 1] + "…" for t in map(term, text.split("\n")))
