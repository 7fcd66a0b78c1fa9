#!/usr/bin/env python3
"""vethtrace benchmark: one run, one report.

    sudo .venv/bin/python bench/run.py            # full run, a few minutes
    sudo .venv/bin/python bench/run.py --quick    # smaller sizes, under a minute

Three parts (see bench/README.md for what each figure means):
  1. replay   decode + correlate throughput, from JSON lines and from raw 192-byte records
  2. attach   time from process start to "probes attached": vethtrace vs bpftrace
  3. ping     `ping -f` packets/s untraced vs traced (vethtrace record, vethtrace ping,
              bpftrace with a count map), with the events each tracer lost

Speed targets are printed as ratios measured in this run; nothing here asserts a time.
The report is printed and also written to bench/results.json.

Safety: packets only go between veth0 192.168.2.11 and veth1 192.168.2.1 inside lab
namespaces built with tracer.lab.lab (removed on exit, also on errors and Ctrl-C).  The
host's interfaces, routes and sysctls are not touched.  bpftrace needs tracefs; when it
is not mounted, bpftrace runs in a private mount namespace (`unshare --mount`) that
mounts it, so the host's mount table is not changed either.  Every process started here
is stopped before the script exits.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vethtrace.tracer import events as events_mod  # noqa: E402
from vethtrace.tracer import lab, recording, sources  # noqa: E402
from vethtrace.cli import GC_THRESHOLDS as CLI_GC_THRESHOLDS  # noqa: E402
from vethtrace.tracer.correlate import Correlator  # noqa: E402
from vethtrace.tracer.events import KIND_IDS  # noqa: E402
from vethtrace.tracer.ksyms import KernelSymbols  # noqa: E402

import scale  # noqa: E402  (bench/scale.py: part 4)
from vethtrace.tracer.record import (DATA_FIB, DATA_L2, DATA_L3, DATA_NEIGH, DATA_NONE, EVENT, FIB,  # noqa: E402
                           KIND_FUNC, NEIGH, Decoder)

FLOOR, AIM = 300_000, 1_000_000          # replay events/s, from the issue
PEER = "192.168.2.1"                     # veth1 in the lab; the only address pinged
TRACEPOINTS = [                          # what vethtrace's probes attach to, for bpftrace
    "net:net_dev_start_xmit", "net:netif_rx", "net:netif_receive_skb", "skb:kfree_skb",
    "skb:consume_skb", "fib:fib_table_lookup", "neigh:neigh_create", "neigh:neigh_update",
    "icmp:icmp_send", "skb:skb_copy_datagram_iovec",
]
READY_RE = re.compile(r"vethtrace: recording")
RECORD_DONE_RE = re.compile(r"vethtrace: (\d+) events, (\d+) lost")
SUMMARY_RE = re.compile(r"--- vethtrace: (\d+) packets, (\d+) distinct paths, (\d+) events, (\d+|unknown) lost ---")
PING_STATS_RE = re.compile(r"(\d+) packets transmitted, (\d+) received.*?time (\d+)ms")

DEFAULT_GC_THRESHOLDS = gc.get_threshold()   # Python's own, before anything changes them

SIZES = {
    # replay_pings: pings in the replay recording (13 events each); paced at 1000/s so
    # the recorder keeps up and the recording is complete (see README)
    # big_flood, steady_s, show_reps: part 4 (bench/scale.py)
    "full": dict(replay_pings=20_000, replay_reps=3, attach_reps=5, ping_n=20_000, ping_reps=5,
                 big_flood=200_000, steady_s=600, show_reps=3),
    "quick": dict(replay_pings=2_000, replay_reps=3, attach_reps=3, ping_n=10_000, ping_reps=3,
                  big_flood=50_000, steady_s=20, show_reps=2),
}


# ----------------------------------------------------------------------------------------
# processes: every child is registered so it is stopped on the way out

_children: list[subprocess.Popen] = []


def spawn(argv, **kw) -> subprocess.Popen:
    p = subprocess.Popen(argv, **kw)
    _children.append(p)
    return p


def stop(p: subprocess.Popen, timeout: float = 60) -> int:
    """SIGINT, wait; SIGKILL if it does not end.  Only this child, by its pid."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def stop_all() -> None:
    for p in _children:
        if p.poll() is None:
            stop(p, timeout=15)
    _children.clear()


class LineReader:
    """Collects a child's stream in a thread, so waiting for one line never blocks
    on the other stream and a chatty child never fills its pipe."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.times: list[float] = []
        self._cv = threading.Condition()
        self._closed = False
        self._t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._t.start()

    def _run(self, stream):
        for raw in stream:
            now = time.monotonic()
            with self._cv:
                self.lines.append(raw.decode(errors="replace") if isinstance(raw, bytes) else raw)
                self.times.append(now)
                self._cv.notify_all()
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def wait_for(self, pattern: re.Pattern, timeout: float) -> tuple[str, float] | None:
        """The first line matching, and when it was read (time.monotonic)."""
        deadline = time.monotonic() + timeout
        i = 0
        with self._cv:
            while True:
                while i < len(self.lines):
                    if pattern.search(self.lines[i]):
                        return self.lines[i], self.times[i]
                    i += 1
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._cv.wait(left)

    def text(self, timeout: float = 10) -> str:
        self._t.join(timeout)
        with self._cv:
            return "".join(self.lines)


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_idle(pid: int, timeout: float = 180, window: float = 0.3) -> float:
    """Wait until a process stops using CPU (two quiet windows in a row); seconds waited.

    Used before stopping `vethtrace record`: it may still be decoding and writing a big
    batch, and Ctrl-C in that moment discards the batch (see README, "Known issues")."""
    t0 = time.monotonic()
    quiet = 0
    last = cpu_ticks(pid)
    while time.monotonic() - t0 < timeout:
        time.sleep(window)
        try:
            now = cpu_ticks(pid)
        except OSError:
            break
        quiet = quiet + 1 if now - last <= 1 else 0
        last = now
        if quiet >= 2:
            return time.monotonic() - t0 - 2 * window
    return time.monotonic() - t0


def med(xs):
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a and b else None


# ----------------------------------------------------------------------------------------
# bpftrace: tracefs in a private mount namespace when the host has none mounted

TRACEFS = "/sys/kernel/tracing"


def tracefs_mounted() -> bool:
    return os.path.isdir(f"{TRACEFS}/events")


def bpftrace_wrapper() -> list[str]:
    """Prefix that runs a command with tracefs available, without touching the host."""
    if tracefs_mounted():
        return []
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount -t tracefs nodev {TRACEFS} && exec "$@"', "sh"]


def bpftrace_script(probes: list[str], exit_at_begin: bool) -> str:
    body = ",\n".join(f"tracepoint:{p}" for p in probes)
    begin = 'BEGIN { printf("ready\\n"); exit(); }' if exit_at_begin else 'BEGIN { printf("ready\\n"); }'
    return f"{begin}\n{body}\n{{ @c[probe] = count(); }}\n"


def available_tracepoints() -> tuple[list[str], list[str]]:
    """TRACEPOINTS that this kernel has (by BTF: btf_trace_<name>), and the missing ones."""
    from vethtrace.tracer import kernel
    btf = kernel.open_btf()
    try:
        have = [p for p in TRACEPOINTS if btf.tracepoint_arity(p.split(":")[1]) is not None]
    finally:
        btf.close()
    return have, [p for p in TRACEPOINTS if p not in have]


# ----------------------------------------------------------------------------------------
# part 1: replay throughput

def make_recording(path: str, pings: int, out: dict) -> None:
    """A live recording of `pings` echo exchanges in a fresh two-ips-fixed lab.

    Paced at 1 ms (1000 pings/s, ~13k events/s) so the recorder keeps up: under
    `ping -f` it loses most events (part 3 shows how many) and the recording would
    hold broken journeys."""
    argv = [vethtrace_bin(), "record", "-o", path, "--",
            "ping", "-q", "-i", "0.001", "-c", str(pings), "-I", "veth0", PEER]
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as built:
        t0 = time.monotonic()
        p = spawn(built.exec_cmd(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = p.communicate(timeout=pings / 1000 * 4 + 120)
        finally:
            stop(p)
        wall = time.monotonic() - t0
    err = stderr.decode(errors="replace")
    m = RECORD_DONE_RE.search(err)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"recording failed (exit {p.returncode}): {err.strip()[-400:]}")
    out.update(command=" ".join(["ip netns exec NS", *map(shlex.quote, argv)]), wall_s=round(wall, 2),
               events=int(m.group(1)), lost=int(m.group(2)),
               bytes=os.path.getsize(path))


class GCMeter:
    """Time spent in Python's cyclic garbage collector, by generation (gc.callbacks)."""

    def __init__(self):
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._t = 0.0

    def _cb(self, phase, info):
        if phase == "start":
            self._t = time.perf_counter()
        else:
            g = info["generation"]
            self.seconds[g] += time.perf_counter() - self._t
            self.count[g] += 1

    def __enter__(self):
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._cb)


def _replay_jsonl(path: str, how: str = "show"):
    """A recording replayed.  "show": `vethtrace show`'s path, sources.replay (the lines
    parsed by a child process while this one builds events and correlates them, chunk by
    chunk; the collector paused); "inline": the same in one process (VETHTRACE_READER=inline);
    "library": recording.read then Correlator.feed, as a library user would, timed in two
    stages, without the collector pause."""
    events_mod.clear_caches()  # the packet caches would otherwise be warm from the last run
    saved = os.environ.pop("VETHTRACE_READER", None)
    if how == "inline":
        os.environ["VETHTRACE_READER"] = "inline"
    try:
        t0 = time.perf_counter()
        if how == "library":
            rec = recording.read(path)
            t1 = time.perf_counter()
            corr = Correlator(rec.context)
            corr.feed(rec.events)
            return len(rec.events), t1 - t0, time.perf_counter() - t1, corr
        rec, corr = sources.replay(path)
        return len(rec.events), time.perf_counter() - t0, None, corr
    finally:
        os.environ.pop("VETHTRACE_READER", None)
        if saved is not None:
            os.environ["VETHTRACE_READER"] = saved


def write_format1(rec, path: str) -> None:
    """The same recording in format 1 (one JSON object per event), to show what rows gain."""
    head = {k: v for k, v in rec.header.items() if k != "fields"}
    head["version"] = 1
    with open(path, "wb") as f:
        f.write(json.dumps(head).encode() + b"\n")
        recording.write_lines(f, rec.events, rows=False)
        f.write(json.dumps({"footer": True, "events": len(rec.events), "lost": rec.lost or 0}).encode() + b"\n")


def _replay_raw(raws: list[bytes], decoder: Decoder, context: dict):
    events_mod.clear_caches()
    t0 = time.perf_counter()
    evs = decoder.decode_batch(raws)
    t1 = time.perf_counter()
    corr = Correlator(context)
    corr.feed(evs)
    t2 = time.perf_counter()
    return len(evs), t1 - t0, t2 - t1, corr


def _record_write_path(raws: list[bytes], decoder: Decoder):
    """What `vethtrace record` does per event: decode, to_row, orjson, write (to memory)."""
    events_mod.clear_caches()
    buf = io.BytesIO()
    t0 = time.perf_counter()
    n = recording.write_lines(buf, decoder.decode_batch(raws))
    return n, time.perf_counter() - t0


class RawPacker:
    """Events back into raw 192-byte records (tracer.record.EVENT), plus a Decoder that
    turns them into the same Events again.

    `where` is given an address in a made-up kallsyms file (one fake address per
    function, plus the offset), so decoding resolves it through the real KernelSymbols
    path; drop-reason names come from the recording itself."""

    def __init__(self, events, tmpdir: str):
        funcs = sorted({self._split(e.where)[0] for e in events if e.where and e.kind != "func"} - {""})
        self.addr = {name: 0xffffffff81000000 + i * 0x100000 for i, name in enumerate(funcs)}
        kallsyms = os.path.join(tmpdir, "kallsyms")
        with open(kallsyms, "w") as f:
            for name, a in self.addr.items():
                f.write(f"{a:016x} T {name}\n")
        reasons = {e.arg: "SKB_DROP_REASON_" + e.reason for e in events if e.kind == "kfree" and e.reason}
        self.decoder = Decoder(reasons, KernelSymbols(kallsyms))

    @staticmethod
    def _split(where: str) -> tuple[str, int]:
        name, _, off = where.partition("+")
        if name.startswith("0x"):
            return "", 0
        return name, int(off, 16) if off else 0

    def pack(self, e) -> bytes:
        data, data_len, data_kind = b"", 0, DATA_NONE
        if e.fib:
            f = e.fib
            data, data_kind = FIB.pack(socket.inet_aton(f["src"]), socket.inet_aton(f["dst"]), f["iif"],
                                       f["oif"], f["proto"], b"\0\0\0"), DATA_FIB
        elif e.neigh:
            n = e.neigh
            data, data_kind = NEIGH.pack(socket.inet_aton(n["addr"]), bytes.fromhex(n["lladdr"].replace(":", "")),
                                         b"\0\0"), DATA_NEIGH
        elif e.data:
            data, data_len, data_kind = e.data, len(e.data), DATA_L2 if e.l2 else DATA_L3
        kind = KIND_IDS[e.kind]
        location = 0
        if e.where and kind != KIND_FUNC:
            name, off = self._split(e.where)
            location = self.addr[name] + off if name else 0
        return EVENT.pack(e.ts, e.skb, e.head, location, e.netns, e.ifindex, e.len, e.arg, e.arg2, e.pid,
                          e.protocol, kind, data_kind, e.cpu, data_len, 0, e.dev.encode(), e.comm.encode(), data)


def top_functions(fn, n: int = 12) -> list[dict]:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    st = pstats.Stats(prof)
    rows = []
    for (file, line, name), (cc, nc, tt, ct, _) in st.stats.items():
        rows.append(dict(function=f"{Path(file).name}:{line}({name})", calls=nc, tottime_s=round(tt, 3),
                         cumtime_s=round(ct, 3)))
    rows.sort(key=lambda r: -r["tottime_s"])
    total = sum(r["tottime_s"] for r in rows) or 1
    for r in rows:
        r["share"] = round(r["tottime_s"] / total, 3)
    return rows[:n]


def part_replay(cfg: dict, tmpdir: str, recording_path: str | None, profile: bool, report) -> dict:
    out: dict = {}
    if recording_path:
        path = recording_path
        out["recording"] = {"source": path, "bytes": os.path.getsize(path)}
    else:
        path = os.path.join(tmpdir, "replay.jsonl")
        out["recording"] = {"pings": cfg["replay_pings"]}
        report(f"  recording {cfg['replay_pings']} pings live (paced 1000/s) ...")
        make_recording(path, cfg["replay_pings"], out["recording"])
        r = out["recording"]
        report(f"  recorded {r['events']} events, {r['lost']} lost, {r['bytes'] / 1e6:.1f} MB in {r['wall_s']} s")

    rec = recording.read(path)
    n = len(rec.events)
    out["events"] = n
    out["format"] = rec.header.get("version")
    path1 = os.path.join(tmpdir, "replay-format1.jsonl")
    write_format1(rec, path1)
    packer = RawPacker(rec.events, tmpdir)
    raws = [packer.pack(e) for e in rec.events]
    # the packed records must decode to the recorded events, or the raw figure is meaningless
    mismatches = sum(1 for e, r in zip(rec.events, raws) if packer.decoder.decode(r).to_json() != e.to_json())
    out["raw_roundtrip_mismatches"] = mismatches
    context = rec.context
    del rec
    gc.collect()

    def best(fn, gc_mode=None):
        """Best of replay_reps runs of fn() under one garbage-collector setting (None = off)."""
        runs = []
        saved = gc.get_threshold()
        for _ in range(cfg["replay_reps"]):
            gc.collect()
            if gc_mode is None:
                gc.disable()
            else:
                gc.set_threshold(*gc_mode)
            try:
                with GCMeter() as meter:
                    count, a, b, corr = fn()
            finally:
                gc.enable()
                gc.set_threshold(*saved)
            runs.append((a + (b or 0), a, b, len(corr.journeys), len(corr.conversations), meter))
            del corr
        runs.sort(key=lambda r: r[0])
        total, a, b, nj, nc, meter = runs[0]
        stages = {} if b is None else dict(stage1_s=round(a, 4), stage2_s=round(b, 4),
                                           stage1_events_per_s=round(count / a), stage2_events_per_s=round(count / b))
        return dict(events_per_s=round(count / total), seconds=round(total, 4),
                    vs_floor=round(count / total / FLOOR, 2), vs_aim=round(count / total / AIM, 2),
                    **stages, all_runs_s=[round(r[0], 4) for r in runs],
                    gc_s=round(sum(meter.seconds), 4), gc_full_collections=meter.count[2],
                    gc_young_collections=meter.count[0] + meter.count[1], journeys=nj, conversations=nc)

    # Python's cyclic collector rescans every live Event/Journey as the heap grows, so the
    # figures depend on it.  The headline is what vethtrace does: a replay pauses the
    # collector (sources.collector_paused); live decoding runs under the thresholds the CLI
    # sets.  Also measured: Python's defaults without the pause (a library user calling
    # recording.read + Correlator.feed), and the collector off (diagnostic).
    modes = {"cli": CLI_GC_THRESHOLDS, "python_default": DEFAULT_GC_THRESHOLDS, "off": None}
    out["gc_thresholds"] = dict(modes)
    out["cpus_available"] = len(os.sched_getaffinity(0))
    out["by_gc"] = {}
    for mode, thresholds in modes.items():
        out["by_gc"][mode] = {
            "jsonl": best(lambda: _replay_jsonl(path, "show" if mode == "cli" else "library"), gc_mode=thresholds),
            "raw": best(lambda: _replay_raw(raws, packer.decoder, context), gc_mode=thresholds)}
    out["jsonl"], out["raw"] = out["by_gc"]["cli"]["jsonl"], out["by_gc"]["cli"]["raw"]
    out["inline"] = best(lambda: _replay_jsonl(path, "inline"), gc_mode=CLI_GC_THRESHOLDS)
    out["format1"] = best(lambda: _replay_jsonl(path1), gc_mode=CLI_GC_THRESHOLDS)
    os.unlink(path1)

    writes = []
    saved = gc.get_threshold()
    gc.set_threshold(*modes["cli"])
    try:
        for _ in range(cfg["replay_reps"]):
            gc.collect()
            writes.append(_record_write_path(raws, packer.decoder))
    finally:
        gc.set_threshold(*saved)
    count, secs = min(writes, key=lambda w: w[1])
    out["record_write_path"] = dict(events_per_s=round(count / secs), seconds=round(secs, 4))

    if profile:
        # Profiled with the collector off: a collection is charged to whichever function
        # happened to allocate when it started, which hides the real hot spots.
        gc.collect()
        gc.disable()
        try:
            out["profile"] = {
                "jsonl": top_functions(lambda: _replay_jsonl(path, "inline")),  # one process: all of it
                "raw": top_functions(lambda: _replay_raw(raws, packer.decoder, context)),
                "record_write_path": top_functions(lambda: _record_write_path(raws, packer.decoder)),
            }
        finally:
            gc.enable()
    return out


# ----------------------------------------------------------------------------------------
# part 2: attach time

VETHTRACE_CHILD = r"""
import json, sys, time
t_main = time.monotonic()
from vethtrace.tracer.live import LiveSource, build_filters
t_import = time.monotonic()
src = LiveSource(build_filters(), want_fentry=%(want_fentry)r)
t_ctor = time.monotonic()
src.__enter__()
t_attached = time.monotonic()
print(json.dumps(dict(t_main=t_main, t_import=t_import, t_ctor=t_ctor, t_attached=t_attached,
                      mechanism=src.mechanism, attached=len(src.report.attached))), flush=True)
src.__exit__(None, None, None)
print(json.dumps(dict(t_closed=time.monotonic())), flush=True)
"""


def time_vethtrace_source(want_fentry) -> dict:
    code = VETHTRACE_CHILD % {"want_fentry": want_fentry}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    p = spawn([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
    stdout, stderr = p.communicate(timeout=120)
    t_exit = time.monotonic()
    lines = [json.loads(x) for x in stdout.decode().splitlines() if x.startswith("{")]
    if p.returncode != 0 or len(lines) < 2:
        raise RuntimeError(f"LiveSource child failed (exit {p.returncode}): {stderr.decode()[-400:]}")
    a, b = lines
    return dict(to_attached=a["t_attached"] - t0, total=t_exit - t0, interpreter=a["t_main"] - t0,
                imports=a["t_import"] - a["t_main"], construct=a["t_ctor"] - a["t_import"],
                enter=a["t_attached"] - a["t_ctor"], exit=b["t_closed"] - a["t_attached"],
                mechanism=a["mechanism"], programs=a["attached"])


def time_vethtrace_cli() -> dict:
    """`vethtrace record`: until it prints "vethtrace: recording" (attached), and until it exits."""
    argv = [vethtrace_bin(), "record", "-o", "/dev/null", "-d", "0.001"]
    t0 = time.monotonic()
    p = spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reader = LineReader(p.stderr)
    hit = reader.wait_for(READY_RE, 120)
    p.wait(120)
    t_exit = time.monotonic()
    if hit is None:
        raise RuntimeError(f"vethtrace record did not attach: {reader.text()[-400:]}")
    return dict(to_attached=hit[1] - t0, total=t_exit - t0)


def time_bpftrace(script: str) -> dict:
    argv = [*bpftrace_wrapper(), "bpftrace", "-B", "none", script]
    t0 = time.monotonic()
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader = LineReader(p.stdout)
    err = LineReader(p.stderr)
    hit = reader.wait_for(re.compile(r"^ready"), 120)
    p.wait(120)
    t_exit = time.monotonic()
    if hit is None:
        raise RuntimeError(f"bpftrace did not print ready (exit {p.returncode}): {err.text()[-400:]}")
    return dict(to_attached=hit[1] - t0, total=t_exit - t0)


def time_wrapper() -> dict:
    argv = [*bpftrace_wrapper(), "true"]
    t0 = time.monotonic()
    subprocess.run(argv, check=True)
    return dict(total=time.monotonic() - t0)


def summarize(runs: list[dict]) -> dict:
    out = {}
    for k in runs[0]:
        vals = [r[k] for r in runs]
        if isinstance(vals[0], float):
            out[k] = dict(min=round(min(vals), 4), median=round(med(vals), 4), max=round(max(vals), 4))
        else:
            out[k] = vals[0]
    return out


def part_attach(cfg: dict, tmpdir: str, report) -> dict:
    have, missing = available_tracepoints()
    script = os.path.join(tmpdir, "attach.bt")
    Path(script).write_text(bpftrace_script(have, exit_at_begin=True))
    kinds = {
        "vethtrace_source": lambda: time_vethtrace_source("auto"),      # as the CLI starts
        "vethtrace_source_fentry_tried": lambda: time_vethtrace_source(True),  # first run since boot, doctor
        "vethtrace_source_tp_btf_only": lambda: time_vethtrace_source(False),
        "vethtrace_record_cli": time_vethtrace_cli,
        "bpftrace": lambda: time_bpftrace(script),
    }
    if bpftrace_wrapper():
        kinds["tracefs_wrapper_only"] = time_wrapper
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for i in range(cfg["attach_reps"] + 1):          # the first round warms caches, not counted
        for k, fn in kinds.items():                  # interleaved: drift hits all alike
            r = fn()
            if i:
                runs[k].append(r)
        report(f"  round {i}/{cfg['attach_reps']}" + (" (warm-up)" if not i else ""))
    out = {k: summarize(v) for k, v in runs.items()}
    out["bpftrace_tracepoints"] = have
    out["bpftrace_tracepoints_missing"] = missing
    out["bpftrace_via_private_tracefs_mount"] = bool(bpftrace_wrapper())
    vt = out["vethtrace_source"]["to_attached"]["median"]
    bt = out["bpftrace"]["to_attached"]["median"]
    wrap = out.get("tracefs_wrapper_only", {}).get("total", {}).get("median", 0.0)
    out["ratio_vethtrace_over_bpftrace"] = round(vt / bt, 2)
    out["ratio_vethtrace_over_bpftrace_without_wrapper"] = round(vt / (bt - wrap), 2) if bt > wrap else None
    out["ratio_total_vethtrace_over_bpftrace"] = round(out["vethtrace_source"]["total"]["median"]
                                                       / out["bpftrace"]["total"]["median"], 2)
    out["ratio_record_cli_over_bpftrace"] = round(out["vethtrace_record_cli"]["to_attached"]["median"] / bt, 2)
    return out


# ----------------------------------------------------------------------------------------
# part 3: ping -f traced vs untraced

def ping_argv(n: int) -> list[str]:
    return ["ping", "-f", "-q", "-c", str(n), "-I", "veth0", PEER]


def tracing_programs() -> int | None:
    """BPF programs of tracing kinds loaded right now (anyone's): they run on this
    machine's packets too, even when they filter on another namespace."""
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=20).stdout
        return sum(1 for prog in json.loads(out or "[]")
                   if prog.get("type") in ("tracing", "raw_tracepoint", "tracepoint", "kprobe", "perf_event"))
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def run_ping(built, n: int) -> dict:
    """ping's own statistics, and the CPU time ping used per packet (wait4: `ip netns exec`
    execs, so the pid is ping's).  The probes run in ping's context (its sends, and the
    softirqs its sends raise), so that CPU time shows their cost even when other work on
    the machine makes the rates noisy."""
    t0 = time.monotonic()
    p = spawn(built.exec_cmd(ping_argv(n)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = LineReader(p.stderr)
    stdout = p.stdout.read()
    _pid, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    text = stdout.decode(errors="replace")
    m = PING_STATS_RE.search(text)
    if not m:
        raise RuntimeError(f"ping printed no statistics (exit {p.returncode}): {text[-300:]} {err.text()[-300:]}")
    res = parse_ping(m, wall, n)
    res["cpu_us_per_ping"] = round((ru.ru_utime + ru.ru_stime) * 1e6 / max(res["sent"], 1), 3)
    return res


def parse_ping(m: re.Match, wall: float, n: int) -> dict:
    sent, received, ms = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return dict(sent=sent, received=received, ping_time_s=ms / 1000, wall_s=round(wall, 4),
                pps=round(sent / (ms / 1000)) if ms else None, wall_pps=round(sent / wall))


def read_footer(path: str) -> dict | None:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 4096))
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        d = json.loads(last)
    except ValueError:
        return None
    return d if d.get("footer") else None


# A pcap-filter expression the flood never matches: what evaluating it in the kernel costs.
NO_MATCH = ["tcp", "port", "9"]


def traced_by_record(built, n: int, tmpdir: str, words: list[str] = (), rec_in=None) -> dict:
    """ping -f in `built` while `vethtrace record [words]` runs in `rec_in` (default: the same
    namespace, so every packet is in scope; another lab: none is, the cost of being loaded)."""
    path = os.path.join(tmpdir, "traced.jsonl")
    t_start = time.monotonic()
    p = spawn((rec_in or built).exec_cmd([vethtrace_bin(), "record", "-o", path, *words]),
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        err = LineReader(p.stderr)
        hit = err.wait_for(READY_RE, 120)
        if hit is None:
            raise RuntimeError(f"vethtrace record did not attach: {err.text()[-400:]}")
        attach = hit[1] - t_start
        res = run_ping(built, n)
        t_ping_end = time.monotonic()
        backlog = wait_idle(p.pid)           # let it finish decoding and writing before Ctrl-C
        res["recorder_catch_up_s"] = round(backlog, 2)
        res["attach_s"] = round(attach, 3)
        t_int = time.monotonic()
        stop(p)
        res["stop_s"] = round(time.monotonic() - t_int, 2)
        res["after_ping_s"] = round(time.monotonic() - t_ping_end, 2)
        m = None
        for m in RECORD_DONE_RE.finditer(err.text()):
            pass
        if not m:
            raise RuntimeError(f"vethtrace record printed no summary: {err.text()[-400:]}")
        res["events"], res["lost"] = int(m.group(1)), int(m.group(2))
        res["recorder_events_per_s"] = (round(res["events"] / (res["ping_time_s"] + backlog))
                                        if backlog > 0 and res["events"] else None)
        foot = read_footer(path)
        res["footer"] = foot
        with open(path, "rb") as f:
            res["events_in_file"] = sum(1 for _ in f) - 2
        res["record_exit"] = p.returncode
    finally:
        stop(p)
        with contextlib.suppress(OSError):
            os.unlink(path)
    return res


def traced_by_vethtrace_ping(built, n: int) -> dict:
    argv = [vethtrace_bin(), "ping", *ping_argv(n)[1:]]
    t0 = time.monotonic()
    p = spawn(built.exec_cmd(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = p.communicate(timeout=600)
    wall = time.monotonic() - t0
    text = stdout.decode(errors="replace")
    m = PING_STATS_RE.search(text)
    s = SUMMARY_RE.search(text)
    if not m or not s:
        raise RuntimeError(f"vethtrace ping failed (exit {p.returncode}): {stderr.decode()[-400:]}")
    res = parse_ping(m, wall, n)
    res.update(events=int(s.group(3)), lost=None if s.group(4) == "unknown" else int(s.group(4)),
               journeys=int(s.group(1)), distinct_paths=int(s.group(2)), output_lines=text.count("\n"),
               command_wall_s=round(wall, 2))
    return res


def traced_by_bpftrace(built, n: int, script: str) -> dict:
    p = spawn([*bpftrace_wrapper(), "bpftrace", "-B", "none", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = LineReader(p.stdout)
        err = LineReader(p.stderr)
        if out.wait_for(re.compile(r"^ready"), 120) is None:
            raise RuntimeError(f"bpftrace did not attach: {err.text()[-400:]}")
        res = run_ping(built, n)
        stop(p)
        counts = {m.group(1): int(m.group(2))
                  for m in re.finditer(r"@c\[tracepoint:([\w:]+)\]: (\d+)", out.text())}
        res["events"] = sum(counts.values())
        res["counts"] = counts
        res["lost"] = 0  # a count map has nothing to lose
    finally:
        stop(p)
    return res


def part_ping(cfg: dict, tmpdir: str, report) -> dict:
    n = cfg["ping_n"]
    have, _ = available_tracepoints()
    script = os.path.join(tmpdir, "count.bt")
    Path(script).write_text(bpftrace_script(have, exit_at_begin=False))
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as built, \
            lab.lab("two-ips-fixed", name=lab.unique_name()) as elsewhere:
        modes = {
            "untraced": lambda b: run_ping(b, n),
            "vethtrace_record": lambda b: traced_by_record(b, n, tmpdir),
            "vethtrace_record_nomatch": lambda b: traced_by_record(b, n, tmpdir, NO_MATCH),
            # the recorder in another namespace: the flood is out of its scope
            "vethtrace_record_out_of_scope": lambda b: traced_by_record(b, n, tmpdir, rec_in=elsewhere),
            "vethtrace_ping": lambda b: traced_by_vethtrace_ping(b, n),
            "bpftrace_count": lambda b: traced_by_bpftrace(b, n, script),
        }
        runs: dict[str, list[dict]] = {k: [] for k in modes}
        run_ping(built, 100)  # resolves ARP; warms the path
        for i in range(cfg["ping_reps"]):
            for k, fn in modes.items():
                others = tracing_programs()   # before our own tracer starts
                runs[k].append(fn(built))
                r = runs[k][-1]
                r["other_tracing_programs"] = others
                extra = f", {r['events']} events, {r['lost']} lost" if "events" in r else ""
                report(f"  round {i + 1}/{cfg['ping_reps']} {k}: {r['pps']} packets/s{extra}")
    out: dict = {"n": n, "command": " ".join(ping_argv(n)), "no_match_expression": " ".join(NO_MATCH)}
    busy = [r["other_tracing_programs"] for rs in runs.values() for r in rs if r.get("other_tracing_programs")]
    if busy:
        out["warning"] = (f"{len(busy)} of {sum(map(len, runs.values()))} ping runs started with other BPF tracing "
                          f"programs loaded (up to {max(busy)}, someone else's): they run on these packets too, "
                          f"so those runs are slower than on a quiet machine")
    base = med([r["pps"] for r in runs["untraced"]])
    for k, rs in runs.items():
        pps = med([r["pps"] for r in rs])
        out[k] = dict(pps_median=pps, pps_runs=[r["pps"] for r in rs], ratio_vs_untraced=round(pps / base, 3),
                      runs=rs)
        if k != "untraced":
            out[k]["events_median"] = med([r["events"] for r in rs])
            out[k]["lost_median"] = med([r["lost"] for r in rs if r["lost"] is not None])
    return out


# ----------------------------------------------------------------------------------------
# report

def vethtrace_bin() -> str:
    cand = Path(sys.executable).parent / "vethtrace"
    return str(cand) if cand.exists() else (shutil.which("vethtrace") or "vethtrace")


def environment() -> dict:
    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None
    def git(*a):
        try:
            return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    dirty = git("status", "--porcelain", "--", "tracer", "probes", "ui")
    return dict(git_head=git("rev-parse", "--short", "HEAD"),
                uncommitted_code=[line.split(maxsplit=1)[-1] for line in dirty.splitlines()] if dirty else [],
                loadavg_at_start=os.getloadavg(),
                kernel=platform.release(), cpus=os.cpu_count(), python=platform.python_version(),
                bpftrace=version(["bpftrace", "--version"]), ping=version(["ping", "-V"]),
                host=socket.gethostname(), date=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def fmt_rate(x) -> str:
    return f"{x / 1000:,.0f}k/s" if x is not None else "-"


def print_report(res: dict) -> None:
    p = print
    env = res["environment"]
    p()
    p(f"=== vethtrace benchmark ({res['mode']}) — kernel {env['kernel']}, {env['cpus']} CPUs, "
      f"Python {env['python']}, {env['bpftrace']} ===")
    p(f"    code: {env['git_head']}" + (f" + uncommitted changes in {', '.join(env['uncommitted_code'])}"
                                       if env["uncommitted_code"] else "")
      + f"; load average at start {env['loadavg_at_start'][0]:.2f}, at end {env['loadavg_at_end'][0]:.2f}")
    r = res.get("replay")
    if r:
        p()
        p("1. Replay throughput (decode + correlate), best of %d" % res["sizes"]["replay_reps"])
        rec = r["recording"]
        if "events" in rec:
            p(f"   input: live recording of {rec['pings']} pings, {rec['events']} events "
              f"({rec['lost']} lost), {rec['bytes'] / 1e6:.1f} MB")
        else:
            p(f"   input: {rec['source']} ({r['events']} events)")
        gcs = r["gc_thresholds"]
        p(f"   garbage collector: paused for a replay (sources.collector_paused); live decoding under the "
          f"CLI's thresholds {tuple(gcs['cli'])}")
        p(f"   {r.get('cpus_available', '?')} CPUs available: a replay parses in a child process while it "
          f"correlates (recording.Reader)")
        for key, label, s1, s2 in (("jsonl", f"recording (format {r.get('format')}): sources.replay, as show",
                                    "", ""),
                                   ("inline", "  same, one process (VETHTRACE_READER=inline)", "", ""),
                                   ("raw", "live path: raw records, Decoder.decode + feed", "decode", "correlate"),
                                   ("format1", "same recording in format 1 (JSON objects)", "", "")):
            d = r.get(key)
            if d is None:
                continue
            p(f"   {label:<46} {d['events_per_s']:>10,} events/s   x{d['vs_floor']:.2f} of floor 300k, "
              f"x{d['vs_aim']:.2f} of aim 1M")
            split = (f"{s1} {fmt_rate(d['stage1_events_per_s'])} ({d['stage1_s']:.3f} s), "
                     f"{s2} {fmt_rate(d['stage2_events_per_s'])} ({d['stage2_s']:.3f} s); ") if "stage1_s" in d else ""
            p(f"      {split}garbage collector "
              f"{d['gc_s']:.3f} s = {d['gc_s'] / d['seconds']:.0%} ({d['gc_full_collections']} full collections); "
              f"runs {d['all_runs_s']} s")
        d = r["jsonl"]
        p(f"      both: {d['journeys']} journeys, {d['conversations']} conversations")
        p(f"   {'same, other garbage collector settings:':<46} {'recording':>10}          {'raw':>10}")
        for mode, label in (("python_default", f"read, then feed; Python default {tuple(gcs['python_default'])}"),
                            ("off", "read, then feed; collector off (gc.disable)")):
            j, w_ = r["by_gc"][mode]["jsonl"], r["by_gc"][mode]["raw"]
            p(f"      {label:<43} {j['events_per_s']:>10,} x{j['vs_floor']:.2f}  {w_['events_per_s']:>10,} "
              f"x{w_['vs_floor']:.2f} of floor   (collector {j['gc_s'] / j['seconds']:.0%} / "
              f"{w_['gc_s'] / w_['seconds']:.0%} of the time)")
        w = r["record_write_path"]
        p(f"   {'(for comparison) record write path: decode+to_row':<46} {w['events_per_s']:>10,} events/s "
          f"(CLI collector settings)")
        if r["raw_roundtrip_mismatches"]:
            p(f"   NOTE: {r['raw_roundtrip_mismatches']} packed records did not decode to the recorded event")
        for key, rows in (r.get("profile") or {}).items():
            p(f"   profile {key}, garbage collector off (top by own time):")
            for row in rows[:8]:
                p(f"      {row['share'] * 100:5.1f}%  {row['tottime_s']:7.3f} s  {row['calls']:>9}  {row['function']}")
    a = res.get("attach")
    if a:
        p()
        p(f"2. Time from process start to probes attached / to exit after detaching, "
          f"median of {res['sizes']['attach_reps']} (min..max)")
        rows = [("vethtrace: python + LiveSource enter/exit", "vethtrace_source"),
                ("  same, fentry tried again (first run since boot)", "vethtrace_source_fentry_tried"),
                ("  same, fentry never tried (tp_btf only)", "vethtrace_source_tp_btf_only"),
                ("vethtrace record -d 0.001 (until 'recording')", "vethtrace_record_cli"),
                (f"bpftrace, {len(a['bpftrace_tracepoints'])} tracepoints (until 'ready')", "bpftrace")]
        if "tracefs_wrapper_only" in a:
            rows.append(("  of which private tracefs mount wrapper", "tracefs_wrapper_only"))
        p(f"   {'':<48} {'attached':>22}   {'exited':>22}")
        for label, k in rows:
            cols = []
            for key in ("to_attached", "total"):
                d = a[k].get(key)
                cols.append(f"{d['median']:.3f} s ({d['min']:.3f}..{d['max']:.3f})" if d else "")
            p(f"   {label:<48} {cols[0]:>22}   {cols[1]:>22}")
        v = a["vethtrace_source"]
        p(f"   vethtrace breakdown (medians): interpreter {v['interpreter']['median']:.3f}, imports "
          f"{v['imports']['median']:.3f}, LiveSource() {v['construct']['median']:.3f}, "
          f"__enter__ {v['enter']['median']:.3f}, __exit__ {v['exit']['median']:.3f} s; "
          f"mechanism {v['mechanism']}, {v['programs']} programs")
        t = a["vethtrace_source_tp_btf_only"]
        f = a["vethtrace_source_fentry_tried"]
        p(f"   __enter__: fentry tried {f['enter']['median']:.3f} s, never tried {t['enter']['median']:.3f} s "
          f"(a refusal is remembered until reboot, so only the first run since boot pays for the attempt)")
        p(f"   ratio vethtrace / bpftrace: x{a['ratio_vethtrace_over_bpftrace']}"
          + (f" (x{a['ratio_vethtrace_over_bpftrace_without_wrapper']} against bpftrace without the "
             f"tracefs wrapper)" if a.get("ratio_vethtrace_over_bpftrace_without_wrapper") else "")
          + f"; vethtrace record / bpftrace: x{a['ratio_record_cli_over_bpftrace']}")
        p(f"   start to exit, vethtrace / bpftrace: x{a['ratio_total_vethtrace_over_bpftrace']} (bpftrace's exit "
          f"waits for each classic tracepoint to detach)")
        if a["bpftrace_tracepoints_missing"]:
            p(f"   (not in this kernel, left out for both: {', '.join(a['bpftrace_tracepoints_missing'])})")
    g = res.get("ping")
    if g:
        p()
        p(f"3. `{g['command']}` packets/s, median of {res['sizes']['ping_reps']} (ping's own 'time')")
        for k, label in (("untraced", "untraced"), ("vethtrace_record", "vethtrace record -o FILE"),
                         ("vethtrace_record_nomatch", f"  ... {g.get('no_match_expression', '')!r}"),
                         ("vethtrace_record_out_of_scope", "record in another netns"),
                         ("vethtrace_ping", "vethtrace ping -f ..."), ("bpftrace_count", "bpftrace count map")):
            d = g.get(k)
            if d is None:
                continue
            line = f"   {label:<28} {d['pps_median']:>9,} pkts/s  x{d['ratio_vs_untraced']:.3f} of untraced"
            if k != "untraced":
                rs = d["runs"]
                ev = d["events_median"]
                line += f"   events {ev:,.0f}"
                lost = [x["lost"] for x in rs if x["lost"] is not None]
                if lost and max(lost):
                    share = [x["lost"] / (x["lost"] + x["events"]) for x in rs if x["lost"] is not None]
                    line += (f", lost {d['lost_median']:,.0f} ({min(lost):,}..{max(lost):,}; "
                             f"{statistics.median(share):.0%} of what the probes saw)")
                elif lost:
                    line += ", lost 0"
            p(line)
        rr = g["vethtrace_record"]["runs"]
        p(f"   vethtrace record: attached in {med([x['attach_s'] for x in rr]):.2f} s; after ping ended it needed "
          f"{med([x['recorder_catch_up_s'] for x in rr]):.1f} s more to decode and write what it had read "
          f"(~{med([x['recorder_events_per_s'] for x in rr if x['recorder_events_per_s']]) or 0:,.0f} "
          f"events/s written)")
        vp = g["vethtrace_ping"]["runs"]
        p(f"   vethtrace ping: whole command {med([x['command_wall_s'] for x in vp]):.1f} s, "
          f"{med([x['output_lines'] for x in vp]):,.0f} output lines")
    if res.get("scale"):
        scale.print_scale(p, res["scale"])
    if g and g.get("warning"):
        res.setdefault("warnings", []).append(g["warning"])
    for w in res.get("warnings", []):
        p(f"WARNING: {w}")
    p()


# ----------------------------------------------------------------------------------------

def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes: under a minute")
    ap.add_argument("--only", action="append", choices=["replay", "attach", "ping", "scale"],
                    help="run only this part (repeatable)")
    ap.add_argument("--scale-part", action="append", choices=scale.SUBPARTS,
                    help="with --only scale: run only this sub-part (repeatable)")
    ap.add_argument("--steady-s", type=int, metavar="SECONDS", help="scale's steady part: this long instead "
                    "(full run 600, --quick 20)")
    ap.add_argument("--recording", metavar="FILE", help="replay this recording instead of recording one live")
    ap.add_argument("--profile", action="store_true", help="also cProfile each replay path and list hot functions")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results.json"), metavar="FILE",
                    help="where to write the JSON results (default bench/results.json)")
    args = ap.parse_args(argv)
    parts = args.only or ["replay", "attach", "ping", "scale"]
    mode = "quick" if args.quick else "full"
    cfg = dict(SIZES[mode])
    if args.steady_s:
        cfg["steady_s"] = args.steady_s
    live_needed = "attach" in parts or "ping" in parts or "scale" in parts or ("replay" in parts and not args.recording)
    if live_needed and os.geteuid() != 0:
        print("bench: live parts need root (namespaces, BPF); run with sudo, or --only replay --recording FILE",
              file=sys.stderr)
        return 2
    if ("attach" in parts or "ping" in parts or "scale" in parts) and not shutil.which("bpftrace"):
        print("bench: bpftrace is not installed (apt-get install bpftrace)", file=sys.stderr)
        return 2

    def report(msg):
        print(msg, file=sys.stderr, flush=True)

    # Ctrl-C / SIGTERM unwind through the finally blocks: labs removed, children stopped.
    # Installing a handler (even when started with SIGINT ignored, as `cmd &` does) also
    # means children start with SIGINT at its default, so the SIGINT that stops
    # vethtrace record and bpftrace reaches them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    res: dict = dict(mode=mode, sizes=cfg, environment=environment(), warnings=[],
                     command=" ".join(["bench/run.py", *(argv if argv is not None else sys.argv[1:])]))
    t0 = time.monotonic()
    tmpdir = tempfile.mkdtemp(prefix="vethtrace-bench-")
    try:
        if "replay" in parts:
            report("1. replay throughput")
            res["replay"] = part_replay(cfg, tmpdir, args.recording, args.profile, report)
            rec = res["replay"]["recording"]
            if rec.get("lost"):
                res["warnings"].append(f"the replay recording lost {rec['lost']} events")
        if "attach" in parts:
            report("2. attach time")
            res["attach"] = part_attach(cfg, tmpdir, report)
        if "ping" in parts:
            report("3. ping -f traced vs untraced")
            res["ping"] = part_ping(cfg, tmpdir, report)
        if "scale" in parts:
            replayed = os.path.join(tmpdir, "replay.jsonl")
            res["scale"] = scale.part_scale(sys.modules[__name__], cfg, tmpdir,
                                            args.recording or (replayed if os.path.exists(replayed) else None),
                                            report, only=args.scale_part)
    except KeyboardInterrupt:
        report("bench: interrupted; cleaning up")
        return 130
    finally:
        stop_all()
        shutil.rmtree(tmpdir, ignore_errors=True)
    res["bench_wall_s"] = round(time.monotonic() - t0, 1)
    res["environment"]["loadavg_at_end"] = os.getloadavg()
    print_report(res)
    print(f"(bench took {res['bench_wall_s']} s; results in {args.results})")
    Path(args.results).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
