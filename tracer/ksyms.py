"""Kernel code addresses to function names, from /proc/kallsyms."""
from __future__ import annotations

import bisect
import re
from array import array

_TEXT_SYMBOL = re.compile(rb"^([0-9a-fA-F]+) [tT] (\S+)", re.M)


class KernelSymbols:
    """Resolves text addresses (free sites, transmit functions) to `function+0xoff`.

    Kept compact (an array of addresses, names as bytes): a live command holds the table
    for its whole run, and ~80k symbols as Python ints, strs and tuples took 25 MB."""

    def __init__(self, path: str = "/proc/kallsyms"):
        self._cache: dict[int, str] = {}
        addrs, names = array("Q"), []
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        for m in _TEXT_SYMBOL.finditer(data):
            addr = int(m.group(1), 16)
            if addr:
                addrs.append(addr)
                names.append(m.group(2))
        del data
        order = sorted(range(len(addrs)), key=addrs.__getitem__)
        self._addrs = array("Q", [addrs[i] for i in order])
        self._names = [names[i] for i in order]

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
                fn = self._names[i].decode(errors="replace")
                name = fn if off == 0 else f"{fn}+{off:#x}"
            self._cache[addr] = name
        return name
