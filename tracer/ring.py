"""Reading the probes' BPF ring buffer in bulk, from its memory.

libbpf's ring_buffer__poll calls back into Python once per record, which under a flood
costs the reader more than the probes cost the kernel.  Every record here has the same
size (struct vtr_event behind the ring's 8-byte header), so the reader maps the ring (the
consumer position read-write; the producer position and the data pages read-only), copies
every committed record in one slice (two where they wrap), splits it with one C-level
unpack, and moves the consumer position past it.  The kernel fills in every page of a
mapping at once, so unlike libbpf, which maps the data pages twice to read wrapped records
in place, the data is mapped once: the ring costs its size in resident memory, not twice.  The layout is the kernel's (kernel/bpf/ringbuf.c): a record's header is its
length, with a busy bit (still being written: the reader stops there) and a discard bit.

Reads of the positions rely on the CPU's ordering of stores (x86's total store order):
elsewhere the libbpf consumer is used (loader.Probes).
"""
from __future__ import annotations

import mmap
import platform
import select
import struct

BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
HEADER = 8
POS = struct.Struct("=Q")

# CPUs whose ordering of stores makes plain loads as good as the acquire loads libbpf uses
STRONGLY_ORDERED = {"x86_64", "i686", "i386", "amd64"}


def supported() -> bool:
    return platform.machine().lower() in STRONGLY_ORDERED


class RingReader:
    """The consumer side of one BPF_MAP_TYPE_RINGBUF of `size` bytes holding `record`-byte records."""

    def __init__(self, map_fd: int, size: int, record: int):
        self.size, self.mask = size, size - 1
        self.record = record
        self.slot = (record + HEADER + 7) & ~7
        self.page = mmap.PAGESIZE
        self._cons = mmap.mmap(map_fd, self.page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._data = mmap.mmap(map_fd, self.page + size, mmap.MAP_SHARED, mmap.PROT_READ, offset=self.page)
        except BaseException:
            self._cons.close()
            raise
        self._split = struct.Struct(f"=I{HEADER - 4}x{record}s{self.slot - HEADER - record}x")
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN)

    def fileno(self) -> int:
        return self._epoll.fileno()

    def wait(self, timeout_ms: int) -> None:
        """Until the probes wake us or timeout_ms passes (the probes wake the reader only
        as the ring fills: whatever is there is read anyway)."""
        if timeout_ms > 0:
            try:
                self._epoll.poll(timeout_ms / 1000, 1)
            except InterruptedError:
                pass

    def read(self, limit: int) -> list[bytes]:
        """Up to `limit` committed records, oldest first; their space is given back."""
        cons = POS.unpack_from(self._cons, 0)[0]
        prod = POS.unpack_from(self._data, 0)[0]
        n = min((prod - cons) // self.slot, limit)
        if n <= 0:
            return []
        start = self.page + (cons & self.mask)
        end = start + n * self.slot
        blob = self._data[start:end]
        if end > self.page + self.size:  # wrapped: the rest is at the start of the data
            blob += self._data[self.page:end - self.size]
        out = []
        taken = 0
        for hdr, rec in self._split.iter_unpack(blob):
            if hdr & BUSY_BIT:
                break  # reserved, not committed yet: stop here, read it next time
            if (hdr & ~(BUSY_BIT | DISCARD_BIT)) != self.record:
                raise OSError(0, f"ring buffer record of {hdr & 0x3FFFFFFF} bytes, expected {self.record}: "
                                 "probes and tracer are from different builds")
            taken += 1
            if not hdr & DISCARD_BIT:
                out.append(rec)
        if taken:
            POS.pack_into(self._cons, 0, cons + taken * self.slot)
        return out

    def close(self) -> None:
        for m in (self._data, self._cons):
            m.close()
        self._epoll.close()

