"""Kernel code addresses to function names, from /proc/kallsyms."""
from __future__ import annotations

import bisect


class KernelSymbols:
    """Resolves text addresses (free sites, transmit functions) to `function+0xoff`."""

    def __init__(self, path: str = "/proc/kallsyms"):
        self._addrs: list[int] = []
        self._names: list[str] = []
        self._cache: dict[int, str] = {}
        try:
            with open(path) as f:
                rows = []
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[1] in "tT":
                        addr = int(parts[0], 16)
                        if addr:
                            rows.append((addr, parts[2]))
        except OSError:
            rows = []
        rows.sort()
        self._addrs = [a for a, _ in rows]
        self._names = [n for _, n in rows]

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
                name = self._names[i] if off == 0 else f"{self._names[i]}+{off:#x}"
            self._cache[addr] = name
        return name
