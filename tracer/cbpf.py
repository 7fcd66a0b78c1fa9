"""Classic BPF (what libpcap compiles a filter expression to) translated into eBPF, and
spliced into the probes' programs before they are loaded.

The probes carry a placeholder where a filter decides (`pcap_match` in
probes/vethtrace.bpf.c): inline assembly that puts the copied packet bytes in r1, how many
of them are valid in r2 and a scratch area on the stack in r3, then loads a marker
constant into r0 and copies r0 out as the verdict.  Unspliced, the marker is non-zero:
every packet is kept.  `splice` finds each marker in a program's instructions, turns it
into a jump to the translated filter appended at the end of the program, and the
filter's every exit jumps back with its verdict in r0.  The program's own instructions
keep their indices, so every relocation libbpf recorded at open time stays valid (libbpf
appends subprograms after our code when it loads).

Register use inside the filter (the assembly declares r0-r5 clobbered):
  r0 scratch (loads, offsets, the verdict), r1 packet bytes, r2 valid bytes,
  r3 scratch area: u32 M[16], then [16] the packet's length on the wire (`len`),
  [17] its ethertype, [18] X while an indexed load needs r5; r4 the accumulator A,
  r5 the index register X.

Loads at offsets that may be unaligned are made of byte loads: the probes draft their
records on the stack, where the verifier accepts aligned loads only.

Every packet load is checked against r2 (a load past the copied bytes rejects the
packet, as libpcap rejects a load past the captured bytes), and offsets past the most the
probes copy are rejected at translation time, so the verifier sees bounded accesses.

`virtual_eth`: an L2 program judged on an L3 copy, for expressions that only exist with
a link layer (`arp`, `ether ...`): the copy is read as if behind an Ethernet header of
twelve zero bytes and the ethertype (tracer/pcapfilter.py does the same in user space).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

# eBPF encoding (linux/bpf.h, linux/bpf_common.h)
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
K, X = 0x00, 0x08
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR, MOV, END = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xD0)
JA, JEQ, JGT, JGE, JSET, JNE, JLT, JLE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0xA0, 0xB0
TO_BE = 0x08
# classic-only classes
RET, MISC = 0x06, 0x07
RVAL_A = 0x10
TAX, TXA = 0x00, 0x80

R_TMP, R_DATA, R_CAPLEN, R_MEM, R_A, R_X = 0, 1, 2, 3, 4, 5
MEM_LEN, MEM_ETHERTYPE, MEM_SAVE_X = 16, 17, 18   # slots of the scratch area after M[0..15]
MEM_WORDS = 20
ETH_HLEN = 14

# The placeholder's marker: `r0 = MAGIC << 32 | kind << 16 | bytes ll`.
MARKER_MAGIC = 0x76747066  # "vtpf"
KIND_L2, KIND_L3, KIND_L3_OTHER = 1, 2, 3  # see pcap_run in probes/vethtrace.bpf.c
SIZES = {W: 4, H: 2, B: 1}
NEGATED = {JEQ: JNE, JGT: JLE, JGE: JLT}


class TranslateError(ValueError):
    """A classic BPF instruction this translator does not handle (one line)."""


@dataclass
class Ins:
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: object = None   # a label: the jump's offset is filled in by assemble()


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


class _Emitter:
    def __init__(self, max_len: int, virtual_eth: bool):
        self.out: list = []      # Ins and ("label", name)
        self.max_len = max_len   # bytes the packet region can hold
        self.virtual_eth = virtual_eth

    def ins(self, code, dst=0, src=0, off=0, imm=0, target=None):
        self.out.append(Ins(code, dst, src, off, _s32(imm), target))

    def label(self, name):
        self.out.append(("label", name))

    def jump(self, target):
        self.ins(JMP | JA, target=target)

    def reject(self):
        self.jump("reject")

    # A load of `size` bytes at a constant offset of the copy, into `dst`, big-endian.
    def load_abs(self, dst: int, off: int, size: int) -> None:
        if off + size > self.max_len:
            self.reject()  # past anything the probes copy: libpcap would reject it too
            return
        self.ins(JMP | JLT | K, R_CAPLEN, imm=off + size, target="reject")
        if off % size == 0:
            self.ins(LDX | MEM | {4: W, 2: H, 1: B}[size], dst, R_DATA, off=off)
            self._swap(dst, size)
        else:  # the copy may be on the stack, where the verifier wants aligned loads
            self._bytes(dst, R_DATA, off, size, R_TMP)

    def _bytes(self, dst: int, base: int, off: int, size: int, tmp: int) -> None:
        """A big-endian load made of byte loads (always aligned)."""
        self.ins(LDX | MEM | B, dst, base, off=off)
        for i in range(1, size):
            self.ins(ALU | LSH | K, dst, imm=8)
            self.ins(LDX | MEM | B, tmp, base, off=off + i)
            self.ins(ALU | OR | X, dst, tmp)

    def _swap(self, dst: int, size: int) -> None:
        if size > 1:
            self.ins(ALU | END | TO_BE, dst, imm=size * 8)

    # A load at X + k (cBPF: rejects unless the whole load is inside the copy).
    def load_ind(self, k: int, size: int, shift: int = 0) -> None:
        if k > 0xFFFF or k - shift + size > self.max_len:
            self.reject()
            return
        self.ins(ALU64 | MOV | X, R_TMP, R_X)
        self.ins(ALU64 | ADD | K, R_TMP, imm=k - shift + size)       # end of the load, in the copy
        self.ins(JMP | JGT | X, R_TMP, R_CAPLEN, target="reject")
        if shift:
            self.ins(JMP | JLT | K, R_TMP, imm=size, target="reject")  # would start in the virtual header
        self.ins(ALU64 | ADD | X, R_TMP, R_DATA)
        if size == 1:
            self.ins(LDX | MEM | B, R_A, R_TMP, off=-1)
            return
        # X + k need not be aligned: bytes, with X kept in the scratch area meanwhile
        self.ins(STX | MEM | W, R_MEM, R_X, off=4 * MEM_SAVE_X)
        self._bytes(R_A, R_TMP, -size, size, R_X)
        self.ins(LDX | MEM | W, R_X, R_MEM, off=4 * MEM_SAVE_X)

    # An absolute load on an L3 copy read behind a virtual Ethernet header.
    def load_virtual(self, dst: int, k: int, size: int) -> None:
        if k >= ETH_HLEN:
            self.load_abs(dst, k - ETH_HLEN, size)
            return
        if dst == R_TMP:  # one byte for X (ldxb 4*([k]&0xf)): no accumulator needed
            self._virtual_byte(k, zero=True)
            return
        self.ins(ALU | MOV | K, dst, imm=0)
        for p in range(k, k + size):
            if p > k:
                self.ins(ALU | LSH | K, dst, imm=8)
            if self._virtual_byte(p):
                self.ins(ALU | OR | X, dst, R_TMP)

    def _virtual_byte(self, p: int, zero: bool = False) -> bool:
        """Byte p of the virtual frame into r0; False when it is a zero address byte
        (r0 is then only written if `zero`)."""
        if p < 12:
            if zero:
                self.ins(ALU | MOV | K, R_TMP, imm=0)
            return False
        if p < ETH_HLEN:
            self.ins(LDX | MEM | W, R_TMP, R_MEM, off=4 * MEM_ETHERTYPE)
            if p == 12:
                self.ins(ALU | RSH | K, R_TMP, imm=8)
            self.ins(ALU | AND | K, R_TMP, imm=0xFF)
            return True
        self.load_abs(R_TMP, p - ETH_HLEN, 1)
        return True


def translate(insns: list[tuple[int, int, int, int]], max_len: int, virtual_eth: bool = False) -> list:
    """eBPF for a classic BPF program: Ins and labels; every exit jumps to label "back"
    with the verdict (non-zero: keep) in r0."""
    e = _Emitter(max_len, virtual_eth)
    # The verifier must know how many bytes r2 can claim.
    e.ins(JMP | JLE | K, R_CAPLEN, imm=max_len, target=("skip", 0))
    e.ins(ALU64 | MOV | K, R_CAPLEN, imm=max_len)
    e.label(("skip", 0))
    e.ins(ALU | MOV | K, R_A, imm=0)
    e.ins(ALU | MOV | K, R_X, imm=0)
    n = len(insns)
    for i, (code, jt, jf, k) in enumerate(insns):
        e.label(i)
        cls = code & 0x07
        if cls in (LD, LDX):
            mode, size = code & 0xE0, SIZES.get(code & 0x18)
            dst = R_A if cls == LD else R_X
            if mode == IMM:
                e.ins(ALU | MOV | K, dst, imm=k)
            elif mode == MEM and k < 16:
                e.ins(LDX | MEM | W, dst, R_MEM, off=4 * k)
            elif mode == LEN:
                e.ins(LDX | MEM | W, dst, R_MEM, off=4 * MEM_LEN)
                if virtual_eth:
                    e.ins(ALU | ADD | K, dst, imm=ETH_HLEN)
            elif cls == LD and mode == ABS and size:
                if k > 0xFFFF:
                    e.reject()  # Linux's ancillary loads (SKF_AD_OFF): not from the copy
                elif virtual_eth:
                    e.load_virtual(R_A, k, size)
                else:
                    e.load_abs(R_A, k, size)
            elif cls == LD and mode == IND and size:
                if virtual_eth:
                    e.load_ind(k, size, shift=ETH_HLEN)
                else:
                    e.load_ind(k, size)
            elif cls == LDX and mode == MSH and (code & 0x18) == B:
                if k > 0xFFFF:
                    e.reject()
                elif virtual_eth:
                    e.load_virtual(R_TMP, k, 1)
                else:
                    e.load_abs(R_TMP, k, 1)
                e.ins(ALU | AND | K, R_TMP, imm=0xF)
                e.ins(ALU | LSH | K, R_TMP, imm=2)
                e.ins(ALU | MOV | X, R_X, R_TMP)
            else:
                raise TranslateError(f"classic BPF load {code:#x} at {i} is not supported")
        elif cls in (ST, STX):
            if k >= 16:
                raise TranslateError(f"scratch memory M[{k}] out of range at {i}")
            e.ins(STX | MEM | W, R_MEM, R_A if cls == ST else R_X, off=4 * k)
        elif cls == ALU:
            op, src = code & 0xF0, code & 0x08
            if op == NEG:
                e.ins(ALU | NEG, R_A)
            elif op not in (ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR):
                raise TranslateError(f"classic BPF ALU op {code:#x} at {i} is not supported")
            elif src == X:
                if op in (DIV, MOD):
                    e.ins(JMP32 | JEQ | K, R_X, imm=0, target="reject")  # cBPF: division by zero rejects
                e.ins(ALU | op | X, R_A, R_X)
            else:
                if op in (DIV, MOD) and k == 0:
                    e.reject()
                elif op in (LSH, RSH):
                    e.ins(ALU | op | K, R_A, imm=k & 31)
                else:
                    e.ins(ALU | op | K, R_A, imm=k)
        elif cls == JMP:
            op, src = code & 0xF0, code & 0x08
            if op == JA:
                if i + 1 + k > n:
                    raise TranslateError(f"jump out of the program at {i}")
                e.jump(i + 1 + k)
                continue
            if op not in (JEQ, JGT, JGE, JSET):
                raise TranslateError(f"classic BPF jump {code:#x} at {i} is not supported")
            t, f = i + 1 + jt, i + 1 + jf
            if t > n or f > n:
                raise TranslateError(f"jump out of the program at {i}")
            regs = dict(dst=R_A, src=R_X) if src == X else dict(dst=R_A, imm=k)
            if t == f:
                e.jump(t)
            elif jf == 0:
                e.ins(JMP32 | op | src, target=t, **regs)
            elif jt == 0 and op in NEGATED:
                e.ins(JMP32 | NEGATED[op] | src, target=f, **regs)
            else:
                e.ins(JMP32 | op | src, target=t, **regs)
                e.jump(f)
        elif cls == RET:
            rval = code & 0x18
            if rval == RVAL_A:
                e.ins(ALU | MOV | X, R_TMP, R_A)
            elif rval == X:
                e.ins(ALU | MOV | X, R_TMP, R_X)
            else:
                e.ins(ALU | MOV | K, R_TMP, imm=k)
            e.jump("back")
        elif cls == MISC:
            if (code & 0xF8) == TAX:
                e.ins(ALU | MOV | X, R_X, R_A)
            elif (code & 0xF8) == TXA:
                e.ins(ALU | MOV | X, R_A, R_X)
            else:
                raise TranslateError(f"classic BPF misc op {code:#x} at {i} is not supported")
    e.label(n)
    e.label("reject")
    e.ins(ALU | MOV | K, R_TMP, imm=0)
    e.jump("back")
    return _reachable(e.out)


def _reachable(items: list) -> list:
    """Without the instructions no path reaches (after a load rejected at translation
    time, say): the verifier refuses unreachable code."""
    at, ins = {}, []
    for it in items:
        if isinstance(it, tuple):
            at[it[1]] = len(ins)
        else:
            ins.append(it)
    seen, todo = set(), [0]
    while todo:
        i = todo.pop()
        if i in seen or i >= len(ins):
            continue
        seen.add(i)
        it = ins[i]
        if it.target is not None and it.target in at:
            todo.append(at[it.target])
        if not (it.code == JMP | JA):
            todo.append(i + 1)
    out, k = [], 0
    for it in items:
        if isinstance(it, tuple):
            out.append(it)
        else:
            if k in seen:
                out.append(it)
            k += 1
    return out


def assemble(items: list, base: int, labels: dict | None = None) -> list[Ins]:
    """Resolve jump targets: `base` is the index the first instruction will have in the
    program; `labels` adds outside targets (program indices), e.g. "back"."""
    where = dict(labels or {})
    pos = base
    for it in items:
        if isinstance(it, tuple):
            where[it[1]] = pos
        else:
            pos += 1
    out, pos = [], base
    for it in items:
        if isinstance(it, tuple):
            continue
        if it.target is not None:
            off = where[it.target] - (pos + 1)
            if not -32768 <= off <= 32767:
                raise TranslateError("the filter is too large to splice into the probes")
            it = Ins(it.code, it.dst, it.src, off, it.imm)
        out.append(it)
        pos += 1
    return out


INSN = struct.Struct("<BBhi")


def encode(insns: list[Ins]) -> bytes:
    return b"".join(INSN.pack(i.code, (i.src << 4) | i.dst, i.off, i.imm) for i in insns)


def decode(raw: bytes) -> list[Ins]:
    out = []
    for code, regs, off, imm in INSN.iter_unpack(raw):
        out.append(Ins(code, regs & 0xF, regs >> 4, off, imm))
    return out


def markers(raw: bytes) -> list[tuple[int, int, int]]:
    """(index, kind, region bytes) of every placeholder in a program's instructions."""
    ins = decode(raw)
    found = []
    for i in range(len(ins) - 1):
        a = ins[i]
        if a.code == (LD | DW | IMM) and a.dst == R_TMP and a.src == 0 and (ins[i + 1].imm & 0xFFFFFFFF) == MARKER_MAGIC:
            lo = a.imm & 0xFFFFFFFF
            found.append((i, lo >> 16, lo & 0xFFFF))
    return found


def splice(raw: bytes, programs: dict[int, tuple[list, bool]]) -> bytes | None:
    """The program's instructions with each placeholder of a kind in `programs` (kind ->
    (classic insns, virtual_eth)) replaced by a jump to that filter, appended at the end.
    None when the program has no placeholder."""
    found = markers(raw)
    if not found:
        return None
    ins = decode(raw)
    for idx, kind, region in found:
        if kind not in programs:
            continue
        cbpf, virtual = programs[kind]
        tail = assemble(translate(cbpf, region, virtual), len(ins), {"back": idx + 1})
        ins[idx] = Ins(JMP | JA, off=len(ins) - (idx + 1))
        ins[idx + 1] = Ins(JMP | JA, off=0)  # where the filter returns to
        ins += tail
    return encode(ins)
