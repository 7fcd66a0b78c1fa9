"""tracer.ksyms: kernel text addresses resolved to `function+0xoff` from a kallsyms file, as a
plain scan of the file's lines would resolve them.  Root-free: made-up kallsyms files."""
from __future__ import annotations

import random

from vethtrace.tracer.ksyms import KernelSymbols


def _by_scan(lines: list[tuple[int, str, str]], addr: int) -> str:
    """The reference: the text symbol with the highest address not above addr (of several at
    one address, the last listed), looked for line by line."""
    best = None
    for a, kind, name in lines:
        if kind in "tT" and a and a <= addr and (best is None or a >= best[0]):
            best = (a, name)
    if best is None:
        return hex(addr)
    return best[1] if addr == best[0] else f"{best[1]}+{addr - best[0]:#x}"


def _write(path, lines) -> None:
    path.write_text("".join(f"{a:016x} {kind} {name}{mod}\n" for (a, kind, name), mod in
                            zip(lines, [" [veth]" if i % 7 == 3 else "" for i in range(len(lines))])))


def test_resolves_like_a_scan_of_the_file(tmp_path):
    rng = random.Random(12)
    base = 0xffffffff81000000
    lines = []
    for i in range(400):
        kind = rng.choice("tTtTdDbr")
        lines.append((base + rng.randrange(0, 1 << 20) // 16 * 16, kind, f"fn_{i}"))
    lines += [(lines[5][0], "t", "alias_of_5"), (0, "t", "hidden"), (base + 0x100000, "T", "_etext")]
    lines.sort(key=lambda x: x[0])
    lines[10:30] = reversed(lines[10:30])  # out of order, as BPF programs loaded later are
    path = tmp_path / "kallsyms"
    _write(path, lines)
    ks = KernelSymbols(str(path))
    assert ks.usable
    probes = [a for a, _, _ in lines] + [a + 3 for a, _, _ in lines] + [base - 1, base + (2 << 20), 1]
    for addr in filter(None, probes):  # 0 is no address: ""
        assert ks.resolve(addr) == _by_scan(lines, addr), hex(addr)
    assert ks.resolve(0) == ""


def test_hidden_or_missing_kallsyms_resolves_nothing(tmp_path):
    path = tmp_path / "kallsyms"
    path.write_text("0000000000000000 T _text\n0000000000000000 t veth_xmit [veth]\n")
    assert not KernelSymbols(str(path)).usable
    missing = KernelSymbols(str(tmp_path / "none"))
    assert not missing.usable
    assert missing.resolve(0xffffffff81000010) == "0xffffffff81000010"
