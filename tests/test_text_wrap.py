"""Style.wrap's one-segment fast path (ui.text.Style._one_line) writes what the general
path writes: the same text with an empty segment added goes the general way."""
from __future__ import annotations

import itertools

from vethtrace.ui.text import Style

TEXTS = ["", " ", "  a", "a  ", " a b ", "abc def", "x\ty", "a\u00a0b", "veth0 (veth_xmit) > veth1 > stack: icmp_rcv",
         "  lead", "é ü", "\x1b[31m"]


def test_one_segment_fast_path_matches_the_general_path():
    for colour, width, prefix, text, code in itertools.product(
            [False, True], [None, 5, 12, 40], ["", "  ", "    abcdefgh "], TEXTS, [None, "1", "2;3"]):
        s = Style(colour=colour, width=width)
        assert s.wrap(prefix, (text, code)) == s.wrap(prefix, (text, code), ("", None)), (colour, width, prefix, text)
        assert s._one_line(prefix, ((text, code),)) == s._one_line(prefix, ((text, code), ("", None)))
