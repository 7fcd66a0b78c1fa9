"""Kernel code addresses to function names, from /proc/kallsyms."""
from __future__ import annotations

import bisect
import re
from array import array

_TEXT_SYMBOL = re.compile(rb"^([0-9a-fA-F]+) [tT] (\S+)", re.M)


class KernelSymbols:
    """Resolves text addresses (free sites, transmit functions) to `function+0xoff`.

    Kept compact: a live command holds the table for its whole run.  ~120k symbols as Python
    ints, strs and tuples took 25 MB, as a list of bytes names 9 MB; here the names are one
    bytes string with arrays of where each starts and ends (about 5 MB), and the file's text is not
    kept (a match object left over from parsing would hold all of it)."""

    def __init__(self, path: str = "/proc/kallsyms"):
        self._cache: dict[int, str] = {}
        addrs, starts, blob = array("Q"), array("I"), bytearray()
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        for m in _TEXT_SYMBOL.finditer(data):
            addr = int(m.group(1), 16)
            if addr:
                addrs.append(addr)
                starts.append(len(blob))
                blob += m.group(2)
        m = data = None  # the last match holds the whole text
        starts.append(len(blob))  # where the last name ends
        if any(addrs[i] > addrs[i + 1] for i in range(len(addrs) - 1)):  # kallsyms is sorted, but may not be
            order = sorted(range(len(addrs)), key=addrs.__getitem__)  # stable: equal addresses keep file order
            ends = array("I", (starts[i + 1] for i in order))
            starts = array("I", (starts[i] for i in order))
            addrs = array("Q", (addrs[i] for i in order))
        else:
            ends = starts[1:]
            del starts[-1]
        self._addrs, self._starts, self._ends, self._blob = addrs, starts, ends, bytes(blob)

    @property
    def usable(self) -> bool:
        """False when kallsyms hides addresses (kptr_restrict) or is unreadable."""
        return bool(self._addrs)

    def resolve(self, addr: int) -> str:
        if not addr:
            return ""
        name = self._cache.get(addr)
        if name is None:
            i = bisect.bisect_right(self._addrs, addr) - 1
            if i < 0:
                name = hex(addr)
            else:
                off = addr - self._addrs[i]
                fn = self._blob[self._starts[i]:self._ends[i]].decode(errors="replace")
                name = fn if off == 0 else f"{fn}+{off:#x}"
            self._cache[addr] = name
        return name
