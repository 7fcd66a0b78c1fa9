"""The path hash the kernel counts by (vtr_hop_hash in probes/vethtrace.h) and its Python
mirror (tracer/counters.py) agree: the header's function compiled with the host compiler and
run on the same inputs.  And a replayed journey's key is the sum of its events' hashes,
ended by its one free that released the data."""
from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from conftest import ROOT
from vethtrace.tracer import counters
from vethtrace.tracer.counters import ExactPaths, KernelCounts, hop_hash, journey_key
from vethtrace.tracer.events import KIND_IDS, PF_LAST
from vethtrace.tracer.sources import replay

TRACES = ROOT / "tests" / "traces"


def test_python_hop_hash_is_the_headers(tmp_path):
    cc = shutil.which("clang") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler: scripts/setup installs clang")
    rng = random.Random(12)
    cases = [(1, 2, 4026531840, 0x0800), (4, 0, 0, 0x0806), (255, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF)]
    cases += [(rng.randrange(1, 12), rng.randrange(1 << 32), rng.randrange(1 << 32), rng.randrange(1 << 16))
              for _ in range(200)]
    calls = "\n".join(f'printf("%llu\\n", (unsigned long long)vtr_hop_hash({k}u, {i}u, {n}u, {p}u));'
                      for k, i, n, p in cases)
    src = tmp_path / "hop.c"
    src.write_text(f'#include <stdio.h>\n#include "vethtrace.h"\nint main(void) {{\n{calls}\nreturn 0; }}\n')
    exe = tmp_path / "hop"
    subprocess.run([cc, "-I", str(ROOT / "probes"), str(src), "-o", str(exe)], check=True)
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    assert got == [hop_hash(*c) for c in cases]


def test_journey_key_of_replayed_journeys():
    _rec, corr = replay(str(TRACES / "identity" / "two-netns-scope.jsonl"))
    keyed = 0
    for j in corr.journeys:
        last = [e for e in j.frees if e.arg2 & PF_LAST]
        k = journey_key(j)
        if len(last) != 1:
            assert k is None
            continue
        keyed += 1
        want = sum(hop_hash(KIND_IDS[e.kind], e.ifindex, e.netns, e.protocol) for e in j.events) % (1 << 64)
        assert k == (want, last[0].kind, last[0].where, last[0].reason)
    assert keyed, "the trace has journeys ended by a free that released their data (PF_LAST)"


def test_exact_rows_count_the_kernels_packets_and_the_unseen():
    _rec, corr = replay(str(TRACES / "identity" / "two-netns-scope.jsonl"))
    exact = ExactPaths(lambda j: ("row", j.id))
    for j in corr.journeys:
        exact.note(j)
    known = next(iter(exact.rows))
    kc = KernelCounts()
    kc.paths[known] = 7
    kc.paths[(12345, "consume", "nowhere", "")] = 3
    out = exact.counts(kc, "unseen")
    assert out == {exact.rows[known]: 7, "unseen": 3}
    assert counters.MAX_ROWS >= 1024
