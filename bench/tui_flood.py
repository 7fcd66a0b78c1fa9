#!/usr/bin/env python3
"""`vethtrace tui` under `ping -f`: key-to-screen latency, and events shown vs counted.

    sudo .venv/bin/python bench/tui_flood.py               # 10 s flood, 20 key presses of each kind
    sudo .venv/bin/python bench/tui_flood.py --seconds 20 --presses 40

What it does, in a fresh `two-ips-fixed` lab namespace (removed at the end, also on errors):
  1. untraced: `ping -f -q -w SECONDS -I veth0 192.168.2.1`, for the packet rate without a tracer;
  2. the TUI in a detached tmux session (WIDTHxHEIGHT) inside the lab, as a user runs it; once
     its status bar says LIVE, key-to-screen latency with no traffic (idle baseline);
  3. the same ping -f again while the TUI traces; during the flood, key presses sent with
     `tmux send-keys` and the time until `tmux capture-pane` shows their effect:
       p      -> the status bar says PAUSED (and p again -> LIVE)
       ?      -> the help screen is drawn (and escape -> it is gone)
     plus the TUI process's CPU use and resident memory, sampled every 0.5 s;
  4. once the TUI is idle again, q, then its exit summary: events read, lost, conversations
     seen and shown, and the packet events that belong to the conversations it showed.

Latency here is what a user sees: tmux delivers the key, the TUI handles it and redraws, tmux
receives the new screen.  It includes one `capture-pane` (its cost alone is reported) and the
poll interval (--poll-ms, default 2 ms).

Safety: packets only go between veth0 192.168.2.11 and veth1 192.168.2.1 inside the lab
namespace; the host's interfaces, routes and sysctls are not touched.  The tmux session, ping
and the TUI are stopped by pid/session name before the script exits.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vethtrace.tracer import lab  # noqa: E402

TARGET = "192.168.2.1"
LAUNCH = """\
import sys
sys.path.insert(0, {root!r})
from vethtrace.tracer.live import build_filters
from vethtrace.tracer.sources import LiveEvents
import ui.tui
import gc
from vethtrace.cli import GC_THRESHOLDS
gc.set_threshold(*GC_THRESHOLDS)  # as vethtrace's main sets it (the app has its own while it runs)
with LiveEvents(build_filters()) as src:
    rc = ui.tui.run(src)
sys.exit(rc)
"""
SUMMARY_RE = re.compile(
    r"vethtrace tui: ([\d,]+) events read \(([\d,]+) about packets\), ([\d,]+) lost; ([\d,]+) conversations, "
    r"([\d,]+) shown; ([\d,]+) of ([\d,]+) packet events were in shown conversations")
PING_RE = re.compile(r"(\d+) packets transmitted, (\d+) received.*time (\d+)ms")


def num(s: str) -> int:
    return int(s.replace(",", ""))


class Tmux:
    def __init__(self, session: str, argv: list[str], width: int, height: int):
        self.session = session
        # COLUMNS/LINES from our environment would override the pane's size.
        shell = f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && {shlex.join(argv)}; echo TUI-EXIT=$?; sleep 600"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height),
                        "sh", "-c", shell], check=True)
        self.shell_pid = int(subprocess.run(["tmux", "display-message", "-p", "-t", session, "#{pane_pid}"],
                                            capture_output=True, text=True, check=True).stdout)

    def screen(self, joined: bool = False) -> str:
        """The visible screen; joined: lines the terminal wrapped are put back together."""
        return subprocess.run(["tmux", "capture-pane", "-p", *(["-J"] if joined else []), "-t", self.session],
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def wait(self, predicate, timeout: float, poll: float = 0.002) -> tuple[float, str] | None:
        """Seconds until predicate(screen) holds (None on timeout), and that screen."""
        start = time.perf_counter()
        while True:
            text = self.screen()
            if predicate(text):
                return time.perf_counter() - start, text
            if time.perf_counter() - start > timeout:
                return None
            time.sleep(poll)

    def child_pid(self) -> int | None:
        try:
            with open(f"/proc/{self.shell_pid}/task/{self.shell_pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


def press_and_see(tmux: Tmux, key: str, predicate, timeout: float, poll: float) -> float | None:
    start = time.perf_counter()
    tmux.keys(key)
    got = tmux.wait(predicate, timeout, poll)
    return None if got is None else time.perf_counter() - start


def key_round(tmux: Tmux, presses: int, poll: float, timeout: float = 5.0) -> dict[str, list[float | None]]:
    """`presses` transitions of each kind; None = not seen within timeout."""
    out: dict[str, list[float | None]] = {"p (pause/resume)": [], "? / escape (help)": []}
    for i in range(presses):
        want = "PAUSED" if i % 2 == 0 else "● LIVE"
        out["p (pause/resume)"].append(press_and_see(tmux, "p", lambda s, w=want: w in s.splitlines()[-2], timeout, poll))
    if "PAUSED" in tmux.screen().splitlines()[-2]:
        tmux.keys("p")
    for i in range(presses):
        if i % 2 == 0:
            lat = press_and_see(tmux, "?", lambda s: "vethtrace tui — keys" in s, timeout, poll)
        else:
            lat = press_and_see(tmux, "Escape", lambda s: "vethtrace tui — keys" not in s, timeout, poll)
        out["? / escape (help)"].append(lat)
    if "vethtrace tui — keys" in tmux.screen():
        tmux.keys("Escape")
    return out


def describe(samples: list[float | None]) -> dict:
    seen = sorted(s * 1000 for s in samples if s is not None)
    if not seen:
        return {"n": len(samples), "missed": len(samples)}
    return {"n": len(samples), "missed": len(samples) - len(seen), "median_ms": round(statistics.median(seen), 1),
            "p90_ms": round(seen[min(len(seen) - 1, int(len(seen) * 0.9))], 1), "max_ms": round(seen[-1], 1),
            "min_ms": round(seen[0], 1)}


def proc_sample(pid: int) -> tuple[float, int]:
    """(cpu seconds, rss bytes) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick
    with open(f"/proc/{pid}/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def ping(ns: lab.Lab, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(ns.exec_cmd(["ping", "-f", "-q", "-w", str(int(seconds)), "-I", "veth0", TARGET]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ping_result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=60)
    m = PING_RE.search(out)
    if not m:
        return {"error": out.strip()[-300:]}
    sent, received, ms = (int(g) for g in m.groups())
    return {"sent": sent, "received": received, "ms": ms, "pps": round(sent / (ms / 1000)) if ms else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10, help="length of each ping -f (default 10)")
    ap.add_argument("--presses", type=int, default=20, help="key transitions of each kind (default 20)")
    ap.add_argument("--poll-ms", type=float, default=2.0, help="screen poll interval (default 2)")
    ap.add_argument("--size", default="160x45", help="terminal size WIDTHxHEIGHT (default 160x45)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("tui_flood: needs root (namespaces, BPF, ping -f)", file=sys.stderr)
        return 2
    width, height = (int(x) for x in args.size.split("x"))
    poll = args.poll_ms / 1000
    result: dict = {"seconds": args.seconds, "presses": args.presses, "size": args.size}
    tmpdir = Path(tempfile.mkdtemp(prefix="vethtrace-tui-bench-"))
    tmux = None
    flood = None
    try:
        with lab.lab("two-ips-fixed", name=lab.unique_name()) as ns:
            subprocess.run(ns.exec_cmd(["ping", "-c", "3", "-i", "0.2", "-I", "veth0", TARGET]),
                           capture_output=True, check=True)  # resolves ARP
            print(f"lab {ns.name}: untraced ping -f for {args.seconds:g} s ...", flush=True)
            result["untraced"] = ping_result(ping(ns, args.seconds))

            script = tmpdir / "launch.py"
            script.write_text(LAUNCH.format(root=str(ROOT)))
            tmux = Tmux(f"vethtrace-bench-{os.getpid()}", ["ip", "netns", "exec", ns.name, sys.executable,
                                                           str(script)], width, height)
            if tmux.wait(lambda s: "● LIVE" in s, 30, 0.05) is None:
                raise SystemExit(f"the TUI did not start:\n{tmux.screen()}")
            pid = tmux.child_pid()
            capture = []
            for _ in range(20):
                t = time.perf_counter()
                tmux.screen()
                capture.append(time.perf_counter() - t)
            result["capture_pane_ms"] = round(statistics.median(capture) * 1000, 1)
            print("idle key latency ...", flush=True)
            result["idle"] = {k: describe(v) for k, v in key_round(tmux, args.presses, poll).items()}

            print(f"ping -f for {args.seconds:g} s with the TUI tracing ...", flush=True)
            cpu0, _ = proc_sample(pid)
            t0 = time.monotonic()
            flood = ping(ns, args.seconds)
            time.sleep(min(2.0, args.seconds / 4))  # let the flood reach its rate
            samples: list[tuple[float, float, int]] = []
            flood_keys = key_round(tmux, args.presses, poll)
            while flood.poll() is None:
                cpu, rss = proc_sample(pid)
                samples.append((time.monotonic() - t0, cpu, rss))
                time.sleep(0.5)
            result["traced"] = ping_result(flood)
            flood = None
            cpu1, rss1 = proc_sample(pid)
            result["flood"] = {k: describe(v) for k, v in flood_keys.items()}
            result["tui_cpu_percent"] = round(100 * (cpu1 - cpu0) / (time.monotonic() - t0), 1)
            result["rss_series_mb"] = [(round(s[0], 1), round(s[2] / 2**20)) for s in samples]
            result["tui_rss_mb"] = {"max": round(max([rss1] + [s[2] for s in samples]) / 2**20, 1),
                                    "end": round(rss1 / 2**20, 1)}
            # Let the TUI finish what it read (it goes idle), then quit and read its summary.
            t_end = time.monotonic()
            cpu_a, _ = proc_sample(pid)
            while time.monotonic() - t_end < 120:
                time.sleep(1.0)
                cpu_b, _ = proc_sample(pid)
                if cpu_b - cpu_a < 0.05:  # under 5% of a CPU for a second
                    break
                cpu_a = cpu_b
            result["catch_up_s"] = round(time.monotonic() - t_end - 1.0, 1)
            result["final_screen"] = tmux.screen()
            tmux.keys("q")
            tmux.wait(lambda s: "TUI-EXIT=" in s, 30, 0.05)
            text = tmux.screen(joined=True)
            m = SUMMARY_RE.search(text)
            if m:
                read, packets, lost, convs, shown, ev_shown, ev_counted = (num(g) for g in m.groups())
                result["tui"] = {"events_read": read, "packet_events": packets, "lost": lost,
                                 "conversations": convs, "shown": shown, "events_in_shown": ev_shown,
                                 "events_counted": ev_counted,
                                 "share_events_shown": round(ev_shown / ev_counted, 4) if ev_counted else None,
                                 "share_conversations_shown": round(shown / convs, 4) if convs else None,
                                 "exit": "probes detached" in text}
            else:
                result["tui"] = {"error": "no summary", "screen": text}
    finally:
        if flood is not None and flood.poll() is None:
            flood.send_signal(signal.SIGINT)
            flood.wait()
        if tmux is not None:
            tmux.kill()
        for p in tmpdir.iterdir():
            p.unlink()
        tmpdir.rmdir()
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def report(r: dict) -> None:
    print()
    print(f"vethtrace tui under ping -f ({r['seconds']:g} s, terminal {r['size']})")
    u, t = r.get("untraced", {}), r.get("traced", {})
    print(f"  ping -f untraced: {u.get('pps', '?'):,} packets/s; with the TUI tracing: {t.get('pps', '?'):,} packets/s "
          f"({t.get('sent', '?'):,} sent)")
    print(f"  key-to-screen latency (tmux send-keys -> capture-pane shows it; one capture-pane alone: "
          f"{r.get('capture_pane_ms', '?')} ms):")
    for phase in ("idle", "flood"):
        for key, d in r.get(phase, {}).items():
            if "median_ms" in d:
                print(f"    {phase:<5} {key:<18} median {d['median_ms']:>6} ms  p90 {d['p90_ms']:>6} ms  "
                      f"max {d['max_ms']:>6} ms  ({d['n']} presses, {d['missed']} not seen in 5 s)")
            else:
                print(f"    {phase:<5} {key:<18} no press seen ({d['n']} presses)")
    tui = r.get("tui", {})
    if "events_read" in tui:
        print(f"  TUI: {tui['events_read']:,} events read ({tui['packet_events']:,} about packets), {tui['lost']:,} lost "
              f"by the kernel/spool")
        pct = (lambda x: f"{100 * x:.2f}%" if x is not None else "n/a")
        print(f"  conversations: {tui['conversations']:,} seen, {tui['shown']:,} shown "
              f"({pct(tui['share_conversations_shown'])})")
        print(f"  packet events in shown conversations: {tui['events_in_shown']:,} of {tui['events_counted']:,} "
              f"counted (read + lost) = {pct(tui['share_events_shown'])}")
        print(f"  after the flood the TUI needed {r.get('catch_up_s')} s to finish what it had read")
        print(f"  TUI process during the flood: {r.get('tui_cpu_percent')}% CPU, RSS max {r['tui_rss_mb']['max']} MB "
              f"(end {r['tui_rss_mb']['end']} MB); probes detached on quit: {tui['exit']}")
        series = r.get("rss_series_mb") or []
        if len(series) >= 4:
            picks = [series[len(series) * k // 4] for k in range(4)] + [series[-1]]
            print("  RSS over the flood: " + ", ".join(f"{mb} MB at {t:g} s" for t, mb in picks))
    else:
        print(f"  TUI summary missing: {tui}")


if __name__ == "__main__":
    sys.exit(main())
