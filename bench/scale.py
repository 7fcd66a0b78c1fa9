"""bench part 4 (`--only scale`): the rows of issue 12's goals table that part 3 does not
measure, each in this one run (see bench/README.md, "4. Scale").

- probe cost: `ping -f` rates with the empty-program floor (one empty tp_btf program per
  tracepoint vethtrace uses, bench/empty.bpf.c), with `vethtrace record` in another, idle
  namespace, and with variants of the probe object built from a copy of probes/ (no packet
  copy, no comm, no LRU update, no consumer wake-up) read by a consumer
  that only counts them, so the kernel's share and the consumer's share are told apart;
- peak RSS (VmHWM, sampled: see hwm_kib) of the flood commands;
- RSS of `trace` and `tui` under steady traffic, sampled over time;
- `show` of the replay recording vs `tshark -r` of its pcapng export (time and peak RSS);
- counts under overflow: `vethtrace ping -f --buffer-mb 1`'s summary against ping's own
  statistics.

Helpers that need to run inside a lab namespace are this file run as a script:
`python bench/scale.py floor OBJ` (attach every program of OBJ, print ready, wait for
SIGINT) and `python bench/scale.py consume OBJ` (vethtrace's loader with OBJ, records read
and counted, not decoded).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# probe variants: (name, what is cut, sed-like replacements applied to a copy of the C)
VARIANTS = [
    ("no_packet_copy", "no bpf_probe_read_kernel of the packet bytes",
     [("if (bpf_probe_read_kernel(e->data, VTR_DATA_MAX, head + off)) {", "if (1) {")]),
    ("no_comm", "no copy of task->comm",
     [("COPY_NAME16(e->comm, task->comm);", "")]),
    ("no_ifname", "no copy of dev->name",
     [("COPY_NAME16(e->ifname, dev->name);", "")]),
    ("helper_names", "comm, pid, dev->name, ndo_start_xmit read with helpers (as before plain loads)",
     [("e->pid = task->tgid;", "e->pid = bpf_get_current_pid_tgid() >> 32;"),
      ("COPY_NAME16(e->comm, task->comm);", "bpf_get_current_comm(e->comm, sizeof(e->comm));"),
      ("COPY_NAME16(e->ifname, dev->name);", "bpf_probe_read_kernel(e->ifname, sizeof(e->ifname), dev->name);"),
      ("(__u64)dev->netdev_ops->ndo_start_xmit;", "(__u64)BPF_CORE_READ(dev, netdev_ops, ndo_start_xmit);")]),
    ("no_seen", "no early exit: every event looks up `tracked`, every namespace is searched for clones/answers",
     [("seen_skb_maybe(skb) ? bpf_map_lookup_elem(&tracked, &key) : NULL;\n\tstruct vtr_track *t",
       "bpf_map_lookup_elem(&tracked, &key);\n\tstruct vtr_track *t"),
      ("\tif (!seen_ns_maybe(netns))\n\t\treturn 0;  /* no followed packet was ever reported here */\n", ""),
      ("struct vtr_track *t = seen_skb_maybe(skb) ? bpf_map_lookup_elem(&tracked, &key) : NULL;",
       "struct vtr_track *t = bpf_map_lookup_elem(&tracked, &key);"),
      ("return in_scope(netns) || (seen_ns_maybe(netns) && just_followed(netns));",
       "return in_scope(netns) || just_followed(netns);")]),
    ("no_map_updates", "no tracked/heads map updates (every event judged as a new packet)",
     [("bpf_map_update_elem(&tracked, &key, &fresh, BPF_ANY);", ";"),
      ("bpf_map_update_elem(&heads, &head, &h, BPF_ANY);", ";")]),
    ("no_counts", "no exact counters (ends, paths maps)",
     [("count(&ends, &ek);", ";"), ("count(&paths, &pk);", ";")]),
    ("wake_each", "the reader woken at every record (as before adaptive wake-ups)",
     [("BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP", "0 : 0")]),
]


# ----------------------------------------------------------------------------------------
# building objects (in a temp dir, from copies: probes/ is not touched)

def build_objects(tmpdir: str) -> dict[str, str]:
    """{"empty": path, "full": path, variant: path}: compiled BPF objects."""
    src = ROOT / "probes"
    vmlinux = src / "build" / "vmlinux.h"
    if not vmlinux.exists():
        subprocess.run(["make", "-C", str(src), "build/vmlinux.h"], check=True, capture_output=True)
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    out: dict[str, str] = {}

    def cc(c_file: Path, obj: str) -> None:
        subprocess.run(["clang", "-g", "-O2", "-Wall", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
                        f"-I{vmlinux.parent}", f"-I{src}", "-c", str(c_file), "-o", obj],
                       check=True, capture_output=True)

    cc(ROOT / "bench" / "empty.bpf.c", os.path.join(tmpdir, "empty.bpf.o"))
    out["empty"] = os.path.join(tmpdir, "empty.bpf.o")
    code = (src / "vethtrace.bpf.c").read_text()
    for name, _what, edits in [("full", "", []), *VARIANTS]:
        text = code
        for old, new in edits:
            if old not in text:
                print(f"bench: variant {name}: the probe source changed ({old[:40]!r} not found); skipped",
                      file=sys.stderr)
                text = None
                break
            text = text.replace(old, new)
        if text is None:
            continue
        c_file = Path(tmpdir) / f"{name}.bpf.c"
        c_file.write_text(text)
        cc(c_file, os.path.join(tmpdir, f"{name}.bpf.o"))
        out[name] = os.path.join(tmpdir, f"{name}.bpf.o")
    return out


# ----------------------------------------------------------------------------------------
# processes with their peak RSS (VmHWM of the pid and its children: `ip netns exec` execs,
# so the pid is the command's own)

def hwm_kib(pid: int) -> int:
    """The largest VmHWM (peak RSS, KiB) of pid and its descendants, 0 when gone.  Not
    wait4's ru_maxrss: a child spawned by vfork+exec starts with its parent's peak there
    (the kernel carries the old mm's high-water mark across exec), so once the bench itself
    had grown every child would report at least that."""
    best, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return best


def wait_rusage(p: subprocess.Popen, timeout: float = 600) -> tuple[int, int]:
    """(exit status, peak RSS in KiB) of a child started by Popen, reaped here.  The peak is
    sampled (hwm_kib) every 20 ms while it runs; VmHWM only grows, so at most the last 20 ms
    of growth can be missed.  A child gone before the first sample falls back to ru_maxrss."""
    deadline = time.monotonic() + timeout
    peak = 0
    while True:
        peak = max(peak, hwm_kib(p.pid))
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, peak or ru.ru_maxrss
        if time.monotonic() > deadline:
            p.kill()
            timeout = 1e9
        time.sleep(0.02)


def run_rss(argv, timeout: float = 600, stdout=subprocess.PIPE) -> dict:
    """Run argv to its end: exit, wall time, peak RSS (MB), its stdout and stderr text."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    import threading
    bufs = {}

    def pump(name, stream):
        bufs[name] = stream.read() if stream else b""

    ts = [threading.Thread(target=pump, args=(k, s)) for k, s in (("out", p.stdout), ("err", p.stderr))]
    for t in ts:
        t.start()
    rc, kib = wait_rusage(p, timeout)
    wall = time.monotonic() - t0
    for t in ts:
        t.join()
    return dict(exit=rc, wall_s=round(wall, 3), peak_rss_mb=round(kib / 1024, 1),
                stdout=bufs.get("out", b"").decode(errors="replace"), stderr=bufs["err"].decode(errors="replace"))


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# ----------------------------------------------------------------------------------------
# the helpers run inside a namespace

def child_floor(obj: str) -> int:
    sys.path.insert(0, str(ROOT))
    from vethtrace.tracer import libbpf
    lib = libbpf.lib()
    o = libbpf.check_ptr(lib.bpf_object__open_file(obj.encode(), None), "open")
    links = []
    try:
        libbpf.check_int(lib.bpf_object__load(o), "load")
        prog = lib.bpf_object__next_program(o, None)
        while prog:
            links.append(libbpf.check_ptr(lib.bpf_program__attach(prog), "attach"))
            prog = lib.bpf_object__next_program(o, prog)
        print(f"ready {len(links)}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    finally:
        for link in links:
            lib.bpf_link__destroy(link)
        lib.bpf_object__close(o)
    return 0


def child_consume(obj: str) -> int:
    """vethtrace's loader with this object, filtering on this namespace; records counted."""
    sys.path.insert(0, str(ROOT))
    from vethtrace.tracer import kernel
    from vethtrace.tracer.live import build_filters
    from vethtrace.tracer.loader import Probes
    btf = kernel.open_btf()
    n = 0
    with Probes(build_filters(), btf, want_fentry=False, obj_path=Path(obj), ring_bytes=32 << 20) as probes:
        print("ready", flush=True)
        try:
            while True:
                # ring_buffer__poll consumes only after a wake-up; the no-wake-up variant
                # needs the explicit consume as well
                n += len(probes.poll(100)) + len(probes.drain())
        except KeyboardInterrupt:
            n += len(probes.drain())
        print(f"consumed {n} lost {probes.lost()}", flush=True)
    btf.close()
    return 0


# ----------------------------------------------------------------------------------------
# the part (imported by bench/run.py, which passes its helpers in)

def started(h, argv, ready: re.Pattern, what: str, on_stderr: bool = False):
    """A helper process (floor, consumer, tracer) running and ready (the ready line on
    stdout, or on stderr)."""
    p = h.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = h.LineReader(p.stdout), h.LineReader(p.stderr)
    if (err if on_stderr else out).wait_for(ready, 120) is None:
        h.stop(p)
        raise RuntimeError(f"{what} did not start: {err.text()[-400:]}")
    return p, out, err


def floor_mode(h, built, n: int, obj: str) -> dict:
    p, _out, _err = started(h, [sys.executable, __file__, "floor", obj], re.compile(r"^ready"), "empty programs")
    try:
        return h.run_ping(built, n)
    finally:
        h.stop(p)


# variants also measured tracing the idle namespace (probe_time): what the early exit saves there
IDLE_VARIANTS = ("no_seen",)


def consumer_mode(h, built, n: int, obj: str, where=None) -> dict:
    """The flood in `built`; the consumer (and the scope) in `where`, by default the same."""
    p, out, err = started(h, (where or built).exec_cmd([sys.executable, __file__, "consume", obj]),
                          re.compile(r"^ready"), "probe variant")
    try:
        res = h.run_ping_beside(built, n, p.pid)
        h.wait_idle(p.pid)
    finally:
        h.stop(p)
    m = re.search(r"consumed (\d+) lost (\d+)", out.text())
    if m:
        res["events"], res["lost"] = int(m.group(1)), int(m.group(2))
    else:
        res["events"], res["lost"] = None, None
    return res


def idle_record_mode(h, idle, built, n: int, tmpdir: str) -> dict:
    """vethtrace record in the idle lab while the flood runs in the other."""
    path = os.path.join(tmpdir, "idle.jsonl")
    p, _o, err = started(h, idle.exec_cmd([h.vethtrace_bin(), "record", "-o", path]), h.READY_RE,
                         "vethtrace record (idle namespace)", on_stderr=True)
    try:
        res = h.run_ping_beside(built, n, p.pid)
    finally:
        h.stop(p)
        with contextlib.suppress(OSError):
            os.unlink(path)
    m = h.RECORD_DONE_RE.search(err.text())
    res["events"], res["lost"] = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    return res


def traced_modes(h, n: int, objs: dict, tmpdir: str) -> dict:
    """The traced rounds both rate parts run, by name: fn(flood lab, idle lab) -> result."""
    modes = {"empty_programs_floor": lambda b, i: floor_mode(h, b, n, objs["empty"]),
             "record_idle_netns": lambda b, i: idle_record_mode(h, i, b, n, tmpdir),
             "vethtrace_record": lambda b, i: h.traced_by_record(b, n, tmpdir),
             "probes_counting_consumer": lambda b, i: consumer_mode(h, b, n, objs["full"])}
    for name, _what, _e in VARIANTS:
        if name in objs:
            modes[f"variant_{name}"] = (lambda o: lambda b, i: consumer_mode(h, b, n, o))(objs[name])
    return modes


def probe_rates(h, cfg: dict, tmpdir: str, report) -> dict:
    """Interleaved rounds: untraced, floor, idle-namespace record, record, the variants
    read by a counting consumer, bpftrace."""
    n = cfg["ping_n"]
    objs = build_objects(tmpdir)
    have, _ = h.available_tracepoints()
    script = os.path.join(tmpdir, "count4.bt")
    Path(script).write_text(h.bpftrace_script(have, exit_at_begin=False))
    from vethtrace.tracer import lab
    modes = {"untraced": lambda b, i: h.run_ping(b, n), **traced_modes(h, n, objs, tmpdir)}
    modes["bpftrace_count"] = lambda b, i: h.traced_by_bpftrace(b, n, script)
    runs: dict[str, list[dict]] = {k: [] for k in modes}
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as built, \
            lab.lab("two-ips-fixed", name=lab.unique_name()) as idle:
        h.run_ping(built, 100)
        for r in range(cfg["ping_reps"]):
            for k, fn in modes.items():
                others = h.tracing_programs()
                res = fn(built, idle)
                res["other_tracing_programs"] = others
                runs[k].append(res)
                report(f"  round {r + 1}/{cfg['ping_reps']} {k}: {res['pps']} packets/s"
                       + (f", {res.get('events')} events, {res.get('lost')} lost" if "events" in res else ""))
    base = h.med([x["pps"] for x in runs["untraced"]])
    floor = h.med([x["pps"] for x in runs["empty_programs_floor"]])
    out: dict = {"n": n, "command": " ".join(h.ping_argv(n)),
                 "variants": {name: what for name, what, _ in VARIANTS}}
    cpu_floor = h.med([x["cpu_us_per_ping"] for x in runs["empty_programs_floor"]])
    for k, rs in runs.items():
        pps = h.med([x["pps"] for x in rs])
        cpu = h.med([x["cpu_us_per_ping"] for x in rs])
        consumer = h.med([x["consumer_cpu_us_per_ping"] for x in rs if x.get("consumer_cpu_us_per_ping") is not None])
        out[k] = dict(pps_median=pps, consumer_cpu_us_per_ping=consumer, pps_runs=[x["pps"] for x in rs], vs_untraced=round(pps / base, 3),
                      ping_cpu_us_per_ping=cpu, ping_cpu_runs=[x["cpu_us_per_ping"] for x in rs],
                      ping_cpu_above_floor_us=round(cpu - cpu_floor, 3),
                      vs_floor=round(pps / floor, 3), events_median=h.med([x["events"] for x in rs
                                                                            if x.get("events") is not None]),
                      lost_median=h.med([x["lost"] for x in rs if x.get("lost") is not None]), runs=rs)
    # time per traced event above the floor: (1/pps - 1/floor_pps) * pings / events
    ev = out["vethtrace_record"]["events_median"] or 0
    for k in [k for k in runs if k not in ("untraced", "empty_programs_floor", "record_idle_netns")]:
        pps = out[k]["pps_median"]
        if pps and floor and ev:
            out[k]["us_per_event_above_floor"] = round((1 / pps - 1 / floor) * n / ev * 1e6, 3)
    return out


class ProbeClock:
    """The kernel's own account of what BPF programs cost: with run-time statistics on
    (BPF_ENABLE_STATS, held by an fd: off again when it is closed, also if the bench is
    killed), every program's run_time_ns and run_cnt.  Read around a ping flood, summed over
    the tracing programs, it is the probes' time per ping, free of the scheduling noise
    that moves the rates (the consumer, other work on a 2-CPU machine).  The statistics
    cost each run two clock reads, so rates measured meanwhile are not comparable: the
    probe_time sub-part runs its own rounds."""

    TYPES = {2, 5, 7, 17, 26}  # kprobe, tracepoint, perf_event, raw_tracepoint, tracing (tp_btf)
    INFO_SIZE = 512
    TYPE_OFF, NAME_OFF, RUN_TIME_OFF = 0, 64, 192  # struct bpf_prog_info: type, name[16], run_time_ns, run_cnt

    def __init__(self):
        import ctypes
        sys.path.insert(0, str(ROOT))
        from vethtrace.tracer import libbpf
        self.ct = ctypes
        self.lib = lib = libbpf.lib()
        for name, args in (("bpf_enable_stats", [ctypes.c_int]), ("bpf_prog_get_next_id", [ctypes.c_uint32,
                           ctypes.POINTER(ctypes.c_uint32)]), ("bpf_prog_get_fd_by_id", [ctypes.c_uint32]),
                           ("bpf_obj_get_info_by_fd", [ctypes.c_int, ctypes.c_void_p,
                                                       ctypes.POINTER(ctypes.c_uint32)])):
            getattr(lib, name).argtypes, getattr(lib, name).restype = args, ctypes.c_int
        self.fd = lib.bpf_enable_stats(0)  # BPF_STATS_RUN_TIME
        if self.fd < 0:
            raise RuntimeError(f"BPF run-time statistics unavailable: {os.strerror(-self.fd)}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def snapshot(self) -> dict[int, tuple[str, int, int]]:
        """{program id: (name, run_time_ns, run_cnt)} of every tracing program loaded now."""
        ct, lib, out = self.ct, self.lib, {}
        cur, nxt = ct.c_uint32(0), ct.c_uint32(0)
        while lib.bpf_prog_get_next_id(cur.value, ct.byref(nxt)) == 0:
            cur.value = nxt.value
            fd = lib.bpf_prog_get_fd_by_id(cur.value)
            if fd < 0:
                continue  # unloaded meanwhile
            try:
                buf, ln = ct.create_string_buffer(self.INFO_SIZE), ct.c_uint32(self.INFO_SIZE)
                if lib.bpf_obj_get_info_by_fd(fd, buf, ct.byref(ln)) != 0:
                    continue
                raw = buf.raw
                if int.from_bytes(raw[self.TYPE_OFF:self.TYPE_OFF + 4], "little") not in self.TYPES:
                    continue
                name = raw[self.NAME_OFF:self.NAME_OFF + 16].split(b"\0", 1)[0].decode(errors="replace")
                out[cur.value] = (name, int.from_bytes(raw[self.RUN_TIME_OFF:self.RUN_TIME_OFF + 8], "little"),
                                  int.from_bytes(raw[self.RUN_TIME_OFF + 8:self.RUN_TIME_OFF + 16], "little"))
            finally:
                os.close(fd)
        return out

    @staticmethod
    def per_ping(before: dict, after: dict, pings: int) -> dict:
        """Run time and runs per ping of the programs alive at both snapshots, and by name."""
        by_name: dict[str, list[float]] = {}
        for pid, (name, ns, cnt) in after.items():
            if pid in before:
                d = by_name.setdefault(name, [0.0, 0.0])
                d[0] += (ns - before[pid][1]) / pings
                d[1] += (cnt - before[pid][2]) / pings
        return dict(probe_ns_per_ping=round(sum(d[0] for d in by_name.values()), 1),
                    probe_runs_per_ping=round(sum(d[1] for d in by_name.values()), 2),
                    probe_ns_by_program={k: round(d[0], 1) for k, d in sorted(by_name.items())})


def probe_time(h, cfg: dict, tmpdir: str, report) -> dict:
    """The probes' own run time per ping (ProbeClock) in interleaved rounds: the empty
    programs (the floor: what the statistics themselves add to a run), vethtrace record in
    an idle namespace and in the flood's, and the full object and each variant read by the
    counting consumer.  Each figure above the floor is what that build costs a ping."""
    n = cfg["ping_n"]
    objs = build_objects(tmpdir)
    from vethtrace.tracer import lab
    modes = traced_modes(h, n, objs, tmpdir)
    modes["full_idle_netns"] = lambda b, i: consumer_mode(h, b, n, objs["full"], where=i)
    for name in IDLE_VARIANTS:
        if name in objs:
            modes[f"variant_{name}_idle_netns"] = (lambda o: lambda b, i: consumer_mode(h, b, n, o, where=i))(objs[name])
    runs: dict[str, list[dict]] = {k: [] for k in modes}
    clock = ProbeClock()
    h.PROBE_CLOCK = clock
    try:
        with lab.lab("two-ips-fixed", name=lab.unique_name()) as built, \
                lab.lab("two-ips-fixed", name=lab.unique_name()) as idle:
            h.run_ping(built, 100)
            for r in range(cfg["ping_reps"]):
                for k, fn in modes.items():
                    res = fn(built, idle)
                    runs[k].append(res)
                    report(f"  round {r + 1}/{cfg['ping_reps']} {k}: {res['probe_ns_per_ping']:.0f} ns/ping in "
                           f"{res['probe_runs_per_ping']} program runs")
    finally:
        h.PROBE_CLOCK = None
        clock.close()
    out: dict = {"n": n, "command": " ".join(h.ping_argv(n)), "variants": {name: what for name, what, _ in VARIANTS}}
    floor = h.med([x["probe_ns_per_ping"] for x in runs["empty_programs_floor"]])
    for k, rs in runs.items():
        ns = h.med([x["probe_ns_per_ping"] for x in rs])
        progs = sorted({p for x in rs for p in x["probe_ns_by_program"]})
        out[k] = dict(ns_per_ping_median=ns, ns_per_ping_runs=[x["probe_ns_per_ping"] for x in rs],
                      above_floor_ns=round(ns - floor, 1), runs_per_ping=h.med([x["probe_runs_per_ping"] for x in rs]),
                      by_program={p: h.med([x["probe_ns_by_program"].get(p, 0.0) for x in rs]) for p in progs},
                      events_median=h.med([x["events"] for x in rs if x.get("events") is not None]))
    return out


def flood_rss(h, cfg: dict, tmpdir: str, report) -> dict:
    """Peak RSS of the flood commands, one run each."""
    from vethtrace.tracer import lab
    n, big = cfg["ping_n"], cfg["big_flood"]
    rec = os.path.join(tmpdir, "rss.jsonl")
    flood = ["-f", "-q", "-c", str(n), "-I", "veth0", h.PEER]
    cmds = {
        "ping": [h.vethtrace_bin(), "ping", *flood],
        "ping_record": [h.vethtrace_bin(), "ping", "--record", rec, *flood],
        "record_ping": [h.vethtrace_bin(), "record", "-o", rec, "--", "ping", *flood],
        "record_big_flood": [h.vethtrace_bin(), "record", "-o", rec, "--", "ping", "-f", "-q", "-c", str(big),
                             "-I", "veth0", h.PEER],
    }
    out: dict = {}
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as built:
        h.run_ping(built, 100)
        for k, argv in cmds.items():
            r = run_rss(built.exec_cmd(argv), stdout=subprocess.PIPE)
            m = h.SUMMARY_RE.search(r["stdout"]) or h.RECORD_DONE_RE.search(r["stderr"])
            r["summary"] = m.group(0) if m else None
            r["command"] = "ip netns exec NS " + " ".join(argv).replace(rec, "FILE")
            r.pop("stdout"), r.pop("stderr")
            out[k] = r
            report(f"  {k}: peak RSS {r['peak_rss_mb']} MB, {r['wall_s']} s, {r['summary']}")
            with contextlib.suppress(OSError):
                os.unlink(rec)
    return out


TUI_EVENTS_RE = re.compile(r"([\d,]+) events read \(([\d,]+) about packets\), ([\d,]+) lost")


def steady_rss(h, cfg: dict, tmpdir: str, report) -> dict:
    """`trace` (output to a file) and `tui` (in a detached tmux) at the same time, in one
    lab, on the same traffic: ping sends 500 echo requests per second for steady_s (600 s
    in the full run: the goal is "over 10 minutes"); VmRSS of both sampled every few
    seconds.  What each read and lost is said too (trace's summary, the TUI's line after
    quitting): a flat RSS only counts if they kept up."""
    from vethtrace.tracer import lab
    sys.path.insert(0, str(ROOT / "bench"))
    from tui_flood import Tmux
    seconds = cfg["steady_s"]
    every = 5.0 if seconds <= 120 else 10.0
    out: dict = {"seconds": seconds, "traffic": f"ping -i 0.002 -I veth0 {h.PEER}",
                 "how": "trace and tui at the same time, on the same traffic"}
    session = f"vethtrace-bench-{os.getpid()}"
    trace_out = os.path.join(tmpdir, "steady-trace.txt")
    samples = []
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as built, open(trace_out, "wb") as tf:
        tracer = h.spawn(built.exec_cmd([h.vethtrace_bin(), "trace"]), stdout=tf, stderr=subprocess.PIPE)
        tmux = Tmux(session, built.exec_cmd([h.vethtrace_bin(), "tui"]), 160, 48)
        ping = None
        try:
            err = h.LineReader(tracer.stderr)
            if err.wait_for(re.compile("tracing"), 60) is None:
                raise RuntimeError(f"trace did not start: {err.text()[-300:]}")
            if tmux.wait(lambda s: "LIVE" in s, 60, poll=0.2) is None:
                raise RuntimeError("the TUI did not start: " + tmux.screen()[-300:])
            tui_pid = tmux.child_pid()
            ping = h.spawn(built.exec_cmd(["ping", "-q", "-i", "0.002", "-I", "veth0", h.PEER]),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                time.sleep(every)
                samples.append((round(time.monotonic() - t0, 1), rss_mb(tracer.pid), rss_mb(tui_pid)))
            h.stop(ping)
            m = h.PING_STATS_RE.search(ping.stdout.read() if ping.stdout else "")
            out["ping"] = dict(sent=int(m.group(1)), received=int(m.group(2))) if m else None
            time.sleep(1.0)  # the last replies read
            tmux.keys("q")
            done = tmux.wait(lambda s: "TUI-EXIT=" in s, 30, poll=0.2)
            m = TUI_EVENTS_RE.search(tmux.screen(joined=True) if done else "")
            out["tui_read"] = dict(events=int(m.group(1).replace(",", "")), lost=int(m.group(3).replace(",", ""))) \
                if m else None
        finally:
            if ping is not None:
                h.stop(ping)
            h.stop(tracer)
            tmux.kill()
    with open(trace_out, "rb") as f:  # only its end: the summary (the whole text is hundreds of MB)
        f.seek(max(0, os.path.getsize(trace_out) - (256 << 10)))
        m = h.SUMMARY_RE.search(f.read().decode(errors="replace"))
    out["trace_read"] = dict(packets=int(m.group(1)), events=int(m.group(3)), lost=m.group(4)) if m else None
    for i, k in ((1, "trace"), (2, "tui")):
        xs = [(t, v[i - 1]) for t, *v in samples if v[i - 1]]
        if not xs:
            continue
        half = xs[len(xs) // 2:]
        slope = (half[-1][1] - half[0][1]) / ((half[-1][0] - half[0][0]) / 60) if len(half) > 1 else 0.0
        out[k] = dict(first_mb=round(xs[0][1], 1), max_mb=round(max(v for _, v in xs), 1),
                      last_mb=round(xs[-1][1], 1), second_half_mb_per_min=round(slope, 1),
                      samples=[(t, round(v, 1)) for t, v in xs])
        report(f"  {k}: RSS {out[k]['first_mb']} MB at {xs[0][0]} s, max {out[k]['max_mb']}, last "
               f"{out[k]['last_mb']} at {xs[-1][0]} s ({out[k]['second_half_mb_per_min']:+} MB/min, second half)")
    report(f"  ping {out.get('ping')}; trace read {out['trace_read']}; tui read {out.get('tui_read')}")
    return out


def show_vs_tshark(h, cfg: dict, tmpdir: str, recording_path: str | None, report) -> dict:
    """`vethtrace show FILE` vs `tshark -r` of the same recording exported to pcapng
    (both to /dev/null), interleaved rounds; medians."""
    out: dict = {}
    path = recording_path
    if path is None:
        path = os.path.join(tmpdir, "show.jsonl")
        out["recording"] = {"pings": cfg["replay_pings"]}
        report(f"  recording {cfg['replay_pings']} pings live (paced 1000/s) ...")
        h.make_recording(path, cfg["replay_pings"], out["recording"])
    pcap = os.path.join(tmpdir, "show.pcapng")
    exp = run_rss([h.vethtrace_bin(), "export", path, "--pcapng", pcap])
    out["export"] = dict(wall_s=exp["wall_s"], peak_rss_mb=exp["peak_rss_mb"], exit=exp["exit"],
                         message=exp["stderr"].strip()[-200:])
    if exp["exit"] != 0:
        raise RuntimeError(f"export failed: {exp['stderr'][-300:]}")
    runs: dict[str, list[dict]] = {"show": [], "tshark": []}
    argv = {"show": [h.vethtrace_bin(), "show", path], "tshark": ["tshark", "-r", pcap]}
    for i in range(cfg["show_reps"]):
        for k, a in argv.items():
            r = run_rss(a, stdout=subprocess.DEVNULL)
            r.pop("stdout"), r.pop("stderr")
            runs[k].append(r)
        report(f"  round {i + 1}: show {runs['show'][-1]['wall_s']} s ({runs['show'][-1]['peak_rss_mb']} MB), "
               f"tshark {runs['tshark'][-1]['wall_s']} s ({runs['tshark'][-1]['peak_rss_mb']} MB)")
    for k, rs in runs.items():
        out[k] = dict(wall_s_median=h.med([r["wall_s"] for r in rs]),
                      peak_rss_mb_median=h.med([r["peak_rss_mb"] for r in rs]), runs=rs,
                      command=" ".join(argv[k]).replace(path, "FILE.jsonl").replace(pcap, "FILE.pcapng"))
    out["events"] = sum(1 for _ in open(path, "rb")) - 2
    out["ratio_show_over_tshark"] = round(out["show"]["wall_s_median"] / out["tshark"]["wall_s_median"], 2)
    return out


DROP_RE = re.compile(r"^\s*(\d+)x\s+(?:dropped|freed) at (\w+) \((\w+)\)(?:, within: .*)?$", re.M)


COUNT_RE = re.compile(r"^\s*(\d+)x\s+(ICMP echo request|ICMP echo reply)\s+(.*)$", re.M)


def overflow_counts(h, cfg: dict, report) -> dict:
    """`vethtrace ping -f -c N --buffer-mb 1`: does its summary count what ping sent and got?"""
    from vethtrace.tracer import lab
    n = cfg["ping_n"]
    argv = [h.vethtrace_bin(), "ping", "--buffer-mb", "1", "-f", "-q", "-c", str(n), "-I", "veth0", h.PEER]
    with lab.lab("two-ips-fixed", name=lab.unique_name()) as built:
        h.run_ping(built, 100)
        before = lab.icmp_counters(built.name)
        r = run_rss(built.exec_cmd(argv))
        after = lab.icmp_counters(built.name)
    kernel = {k: after[k] - before.get(k, 0) for k in after}  # the namespace's own account (nstat)
    text = r["stdout"]
    m, s = h.PING_STATS_RE.search(text), h.SUMMARY_RE.search(text)
    if not m or not s:
        raise RuntimeError(f"vethtrace ping failed: {r['stderr'][-300:]}")
    counted = {"ICMP echo request": 0, "ICMP echo reply": 0}
    ticked_when_lost = []
    for c in COUNT_RE.finditer(text):
        counted[c.group(2)] += int(c.group(1))
        if "✓" in c.group(3) and int(s.group(4) or 0):
            ticked_when_lost.append(c.group(0).strip())
    sent, received = int(m.group(1)), int(m.group(2))
    drops = {(f, why): int(k) for k, f, why in DROP_RE.findall(text)}
    out = dict(command="ip netns exec NS " + " ".join(argv), sent=sent, received=received,
               nstat=dict(IcmpInEchos=kernel.get("InEchos"), IcmpInEchoReps=kernel.get("InEchoReps")),
               drops_counted_ping_rcv_no_socket=drops.get(("ping_rcv", "NO_SOCKET")),
               requests_counted=counted["ICMP echo request"], replies_counted=counted["ICMP echo reply"],
               events=int(s.group(3)), lost=int(s.group(4)) if s.group(4) != "unknown" else None,
               summary_line=s.group(0), ticked_lines_when_events_lost=ticked_when_lost[:6],
               exact=counted["ICMP echo request"] == sent == kernel.get("InEchos")
               and counted["ICMP echo reply"] == received
               and drops.get(("ping_rcv", "NO_SOCKET")) == kernel.get("InEchoReps"))
    report(f"  sent {sent}, received {received} (nstat: {out['nstat']}); summary counts {out['requests_counted']} "
           f"requests, {out['replies_counted']} replies, {out['drops_counted_ping_rcv_no_socket']} drops at ping_rcv; "
           f"{out['lost']} events lost")
    return out


SUBPARTS = ("rates", "probe_time", "flood_rss", "steady", "show", "overflow")


def part_scale(h, cfg: dict, tmpdir: str, recording_path: str | None, report, only=None) -> dict:
    """only: the sub-parts to run (SUBPARTS), default all."""
    out: dict = {}
    for key, label, fn in (("rates", "probe cost: ping -f rates (floor, idle namespace, variants)",
                            lambda: probe_rates(h, cfg, tmpdir, report)),
                           ("probe_time", "probe run time per ping (the kernel's BPF run-time statistics)",
                            lambda: probe_time(h, cfg, tmpdir, report)),
                           ("flood_rss", "peak RSS of the flood commands", lambda: flood_rss(h, cfg, tmpdir, report)),
                           ("steady", f"trace/tui RSS over {cfg['steady_s']} s of steady traffic",
                            lambda: steady_rss(h, cfg, tmpdir, report)),
                           ("show", "show vs tshark -r", lambda: show_vs_tshark(h, cfg, tmpdir, recording_path,
                                                                                report)),
                           ("overflow", "counts under overflow (--buffer-mb 1)", lambda: overflow_counts(h, cfg,
                                                                                                        report))):
        if only and key not in only:
            continue
        report(f"4. {label}")
        try:
            out[key] = fn()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            out[key] = {"error": str(exc)}
            report(f"  FAILED: {exc}")
    return out


def _mb(x):
    return f"{x:,.0f} MB" if x is not None else "-"


def print_scale(p, s: dict) -> None:
    """The goals table of issue 12, as measured in this run."""
    p()
    p("4. Scale (issue 12 goals table), measured in this run")
    rows = []
    r = s.get("rates", {})
    if "untraced" in r:
        rec, flo, idle = r["vethtrace_record"], r["empty_programs_floor"], r["record_idle_netns"]
        rows.append((f"ping -f rate, record in the flood's namespace, vs untraced (floor x{flo['vs_untraced']:.2f})",
                     f"x{rec['vs_untraced']:.2f}", ">= 0.70", rec["vs_untraced"] >= 0.70))
        rows.append(("same, record in an idle namespace, vs the empty-program floor", f"x{idle['vs_floor']:.2f}",
                     ">= 0.95", idle["vs_floor"] >= 0.95))
    fr = s.get("flood_rss", {})
    for k, label in (("ping", "peak RSS, vethtrace ping -f (20k)"), ("ping_record", "  ping -f --record"),
                     ("record_ping", "  record -- ping -f"), ("record_big_flood", "  record, 200k-ping flood")):
        if k in fr and "peak_rss_mb" in fr[k]:
            rows.append((label, _mb(fr[k]["peak_rss_mb"]), "<= 150 MB", fr[k]["peak_rss_mb"] <= 150))
    st = s.get("steady", {})
    for k in ("trace", "tui"):
        if k in st:
            d = st[k]
            rows.append((f"RSS of {k}, {st['seconds']} s at 500 pings/s, with the other (max; MB/min, 2nd half)",
                         f"{_mb(d['max_mb'])}; {d['second_half_mb_per_min']:+.1f}", "<= 150 MB, flat",
                         d["max_mb"] <= 150 and abs(d["second_half_mb_per_min"]) < 2))
    sh = s.get("show", {})
    if "ratio_show_over_tshark" in sh:
        rows.append((f"show of {sh['events']:,} events vs tshark -r of its pcapng "
                     f"({sh['show']['wall_s_median']:.2f} s vs {sh['tshark']['wall_s_median']:.2f} s)",
                     f"x{sh['ratio_show_over_tshark']:.2f}", "<= 1.0", sh["ratio_show_over_tshark"] <= 1.0))
        rows.append(("  show's peak RSS", _mb(sh["show"]["peak_rss_mb_median"]), "<= 150 MB",
                     sh["show"]["peak_rss_mb_median"] <= 150))
    ov = s.get("overflow", {})
    if "sent" in ov:
        rows.append((f"counts under overflow: {ov['requests_counted']}/{ov['sent']} requests, "
                     f"{ov['replies_counted']}/{ov['received']} replies, {ov.get('drops_counted_ping_rcv_no_socket')}/"
                     f"{(ov.get('nstat') or {}).get('IcmpInEchoReps')} drops ({ov['lost']} events lost)",
                     "exact" if ov["exact"] else "not exact", "exact", ov["exact"]))
    for label, now, goal, ok in rows:
        p(f"   {label:<78} {now:>14}  goal {goal:<16} {'met' if ok else 'MISSED'}")
    if "untraced" in r:
        p(f"   ping -f packets/s, median of {len(r['untraced']['runs'])} interleaved rounds (`{r['command']}`):")
        labels = {"untraced": "untraced", "empty_programs_floor": "10 empty tp_btf programs (floor)",
                  "record_idle_netns": "vethtrace record, idle namespace", "vethtrace_record": "vethtrace record",
                  "probes_counting_consumer": "probes + counting consumer (no decode)",
                  "bpftrace_count": "bpftrace count map"}
        for name, what, _ in VARIANTS:
            labels[f"variant_{name}"] = f"  variant: {what}"
        for k, label in labels.items():
            d = r.get(k)
            if not d:
                continue
            extra = f"  {d['us_per_event_above_floor']:.3f} us/event above floor" \
                if d.get("us_per_event_above_floor") is not None else ""
            ev = f"  events {d['events_median']:,.0f} lost {d['lost_median']:,.0f}" \
                if d.get("events_median") is not None and d.get("lost_median") is not None else ""
            cpu = f"  ping CPU {d['ping_cpu_us_per_ping']:.2f} us/ping ({d['ping_cpu_above_floor_us']:+.2f} vs floor)" \
                if d.get("ping_cpu_us_per_ping") is not None else ""
            if d.get("consumer_cpu_us_per_ping") is not None:
                cpu += f", consumer {d['consumer_cpu_us_per_ping']:.2f} us/ping"
            p(f"      {label:<58} {d['pps_median']:>9,}/s  x{d['vs_untraced']:.3f} untraced  "
              f"x{d['vs_floor']:.3f} floor{cpu}{extra}{ev}")
    pt = s.get("probe_time", {})
    if "empty_programs_floor" in pt:
        p(f"   probe run time per ping (kernel BPF statistics), median of {len(pt['empty_programs_floor']['ns_per_ping_runs'])}"
          f" rounds; 'above floor' is the build's own cost:")
        labels = {"empty_programs_floor": "10 empty tp_btf programs (floor)",
                  "record_idle_netns": "vethtrace record, idle namespace", "vethtrace_record": "vethtrace record",
                  "probes_counting_consumer": "probes + counting consumer"}
        for name, what, _ in VARIANTS:
            labels[f"variant_{name}"] = f"  variant: {what}"
        labels["full_idle_netns"] = "probes + counting consumer, idle namespace"
        for name in IDLE_VARIANTS:
            labels[f"variant_{name}_idle_netns"] = f"  variant {name}, idle namespace"
        for k, label in labels.items():
            d = pt.get(k)
            if d:
                p(f"      {label:<58} {d['ns_per_ping_median']:>7,.0f} ns/ping  {d['above_floor_ns']:>+7,.0f} above floor"
                  f"  ({d['runs_per_ping']} runs/ping)")
        full = pt.get("probes_counting_consumer")
        if full:
            p("      by program (probes + counting consumer): " + ", ".join(
                f"{k} {v:,.0f}" for k, v in sorted(full["by_program"].items(), key=lambda kv: -kv[1]) if v >= 1))
    for k in ("rates", "probe_time", "flood_rss", "steady", "show", "overflow"):
        if isinstance(s.get(k), dict) and "error" in s[k]:
            p(f"   {k}: FAILED: {s[k]['error']}")
    if fr:
        for k, d in fr.items():
            if "command" in d:
                p(f"      {d['command']}: {d['wall_s']} s; {d['summary']}")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit({"floor": child_floor, "consume": child_consume}[sys.argv[1]](sys.argv[2]))
