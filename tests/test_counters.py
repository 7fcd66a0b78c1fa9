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


# -- the kernel's counts in a recording's footer ------------------------------------------------

from collections import Counter  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402

from vethtrace.tracer import recording  # noqa: E402

SCOPE = TRACES / "identity" / "two-netns-scope.jsonl"


def _counts(entries: int = 0) -> KernelCounts:
    kc = KernelCounts(uncounted=3)
    kc.ends[("kfree", "ping_rcv+0x8e", "NO_SOCKET", 4026531840, 0)] = 20000
    kc.paths[((1 << 64) - 1, "consume", "raw_recvmsg+0xac", "")] = 20000
    for i in range(entries):  # a footer far longer than an event line
        kc.paths[(i * 0x9E3779B97F4A7C15 % (1 << 64), "kfree", f"fn{i}+0x{i:x}", "NO_SOCKET")] = i + 1
    return kc


def _rewrite(path, src, lost: int, counts: dict | None, events_times: int = 1) -> None:
    """src's header and events, `events_times` over, then a footer with `lost` and `counts`."""
    lines = src.read_bytes().splitlines()
    body = lines[1:-1] * events_times
    foot = {"footer": True, "events": len(body), "lost": lost}
    if counts is not None:
        foot["counts"] = counts
    path.write_bytes(b"\n".join([lines[0], *body, json.dumps(foot, separators=(",", ":")).encode()]) + b"\n")


@pytest.mark.parametrize("reader", ["inline", "child"])
def test_footer_counts_are_read_back_as_written(tmp_path, monkeypatch, reader):
    """Written by Writer.close (a footer of 3000 entries, longer than any event line), read
    back the same, in this process and through the forked parser (a file over 1 MiB)."""
    kc = _counts(3000)
    src = tmp_path / "src.jsonl"
    rec = recording.read(str(SCOPE))
    with open(src, "wb") as f:
        w = recording.Writer(f, rec.header)
        w.write(rec.events)
        w.close(7, counts=kc)
    assert len(src.read_bytes().splitlines()[-1]) > recording.MAX_LINE
    path = tmp_path / "big.jsonl"
    _rewrite(path, src, 7, kc.to_json(), events_times=1 if reader == "inline" else 200)
    if reader == "child":
        assert path.stat().st_size > recording.FORK_MIN_BYTES
    monkeypatch.setenv("VETHTRACE_READER", "inline" if reader == "inline" else "")
    back = recording.read(str(path))
    assert back.warning is None and back.lost == 7
    assert back.counts == kc
    r = recording.Reader(str(path))
    assert r.peek_losses() is not None and r._peek_footer()["counts"] == json.loads(json.dumps(kc.to_json()))
    r.close()


def test_older_recordings_have_no_counts():
    assert recording.read(str(SCOPE)).counts is None


def _vethtrace(*args, cwd=None, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", COLUMNS="200")
    with open(stdin or os.devnull, "rb") as inp:
        return subprocess.run([sys.executable, "-m", "vethtrace", *args], capture_output=True, text=True, env=env,
                              cwd=cwd, timeout=120, stdin=inp)


BAD_COUNTS = [
    ("not an object", []),
    ("a path is not an entry", {"paths": [["x"]]}),
    ("a count is negative", {"paths": [[1, "consume", "icmp_rcv", "", -1]]}),
    ("a hash is past 64 bits", {"paths": [[1 << 64, "consume", "icmp_rcv", "", 1]]}),
    ("a kind is unknown", {"ends": [["boom", "icmp_rcv", "", 1, 1, 1]]}),
    ("a name is too long", {"ends": [["kfree", "f" * 5000, "", 1, 1, 1]]}),
    ("too many entries", {"paths": [[i, "consume", "f", "", 1] for i in range(counters.MAX_ENTRIES + 1)]}),
]


@pytest.mark.parametrize("why,counts", BAD_COUNTS, ids=[b[0] for b in BAD_COUNTS])
def test_a_bad_footer_count_is_one_clear_line(tmp_path, why, counts):
    path = tmp_path / "bad.jsonl"
    _rewrite(path, SCOPE, 5, counts)
    for cmd in (["show", str(path)], ["render", str(path), "--all", "-o", str(tmp_path / "x.dot")]):
        res = _vethtrace(*cmd)
        assert res.returncode == 2, (why, res.stdout[-500:], res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "counts" in res.stderr and "damaged" in res.stderr, res.stderr
        assert res.stdout == ""
    assert not (tmp_path / "x.dot").exists()


def _scope_counts(times: int, unseen: int) -> tuple[KernelCounts, Counter]:
    """Kernel counts for the scope trace as if each path had been taken `times` over per
    journey seen, plus `unseen` packets on a path no journey took; and the rows they make."""
    _rec, corr = replay(str(SCOPE))
    from vethtrace.ui.text import path_key
    kc = KernelCounts()
    rows: Counter = Counter()
    first: dict = {}  # the kernel counts by path hash and end: journeys alike in both are one row
    for j in corr.journeys:
        k = journey_key(j)
        kc.paths[k] += times
        rows[first.setdefault(k, path_key(j, corr))] += times
    kc.paths[(12345, "kfree", "ip_rcv_core+0x1", "OTHERHOST")] = unseen
    kc.ends[("kfree", "ip_rcv_core+0x1", "OTHERHOST", 1, 2)] = unseen
    return kc, rows


LINE = re.compile(r"^\s*(\d+)x\s{2}(\S.*?)\s{2,}(\S.*?)\s{2}(\S) (.*)$", re.M)


def test_show_of_a_recording_that_lost_events_prints_the_footers_counts(tmp_path):
    """The footer's counts (made here: each path of the trace 1000 times per journey, and
    77 packets on a path no journey shows) are what show prints, as ping does live."""
    kc, rows = _scope_counts(1000, 77)
    path = tmp_path / "lossy.jsonl"
    _rewrite(path, SCOPE, 9, kc.to_json())
    for arg, extra in ((path, []), (path, ["--devices"]), ("-", [])):  # streamed, read whole, from a pipe
        res = _vethtrace("show", str(arg), *extra, stdin=path if arg == "-" else None)
        assert res.returncode == 0, res.stderr
        summary = res.stdout[res.stdout.index("--- vethtrace:"):]
        assert f"--- vethtrace: {sum(rows.values()) + 77} packets" in summary
        assert "the counts below are the kernel's own, exact" in summary
        got = {(label, p): int(n) for n, label, p, _mark, _how in LINE.findall(summary)}
        assert got.get(("packets", "on paths not seen in detail (their events were lost)")) == 77, summary
        for (label, p, _how, _outcome), n in rows.items():
            assert got[(label, p)] == n, (label, p, summary)
        assert "counted in the kernel (exact, whatever was lost)" in summary
        assert re.search(r"^\s+77x\s+dropped at ip_rcv_core \(OTHERHOST\)$", summary, re.M), summary
    # the same file without counts (an older recording): the survivors, as before
    _rewrite(path, SCOPE, 9, None)
    res = _vethtrace("show", str(path))
    assert res.returncode == 0 and "counted in the kernel" not in res.stdout
    assert "--- vethtrace: 16 packets" in res.stdout


def test_render_all_of_a_recording_that_lost_events_counts_the_kernels_packets(tmp_path):
    kc, rows = _scope_counts(1000, 77)
    path = tmp_path / "lossy.jsonl"
    _rewrite(path, SCOPE, 9, kc.to_json())
    out = tmp_path / "all.dot"
    res = _vethtrace("render", str(path), "--all", "-o", str(out))
    assert res.returncode == 0, res.stderr
    dot = out.read_text()
    labels = Counter(int(n) for n in re.findall(r'label="×(\d+)"', dot))
    # the echo replies (1000 counted for each seen) label each of their hops (veth1 > veth0 > stack > socket)
    replies = sum(n for (label, *_), n in rows.items() if label == "ICMP echo reply")
    assert replies > 1000 and labels[replies] >= 3, (labels, dot[:2000])
    assert sum(labels.values()) == len(re.findall(r'label="×', dot)) and max(labels) <= max(rows.values())
    assert "as the kernel counted them" in dot and "77 packets on paths not seen in detail" in dot
    # without counts: the journeys seen
    _rewrite(path, SCOPE, 9, None)
    res = _vethtrace("render", str(path), "--all", "-o", str(out))
    assert res.returncode == 0 and "kernel counted" not in out.read_text()
    assert max(int(n) for n in re.findall(r'label="×(\d+)"', out.read_text())) <= 16


def test_the_schema_describes_the_footers_counts():
    jsonschema = pytest.importorskip("jsonschema")
    from vethtrace.tracer.schema import SCHEMA
    foot = {"footer": True, "events": 1, "lost": 1, "counts": json.loads(json.dumps(_counts(10).to_json()))}
    jsonschema.validate(foot, SCHEMA)
    foot["counts"]["paths"][0][0] = 1 << 64
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(foot, {**SCHEMA, "oneOf": [{"$ref": "#/$defs/footer"}]})


def test_a_footer_over_a_mebibyte_is_refused_and_a_long_one_cut_short_is_a_cut(tmp_path):
    lines = SCOPE.read_bytes().splitlines()
    huge = tmp_path / "huge.jsonl"
    huge.write_bytes(b"\n".join([*lines[:-1], b'{"footer":true,"events":1,"lost":0,"pad":"' + b"x" * (2 << 20) + b'"}'])
                     + b"\n")
    res = _vethtrace("show", str(huge))
    assert res.returncode == 2 and "longer than 1 MiB, so not a footer" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stdout == ""
    src = tmp_path / "long.jsonl"
    _rewrite(src, SCOPE, 7, _counts(3000).to_json())
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(src.read_bytes()[:-5000])  # killed while writing its long footer
    rec = recording.read(str(cut))
    assert rec.counts is None and rec.lost is None and len(rec.events) == 114
    assert "cut short" in rec.warning
