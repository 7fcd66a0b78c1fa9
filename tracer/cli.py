"""The `vethtrace` command line."""
from __future__ import annotations

import argparse
import gc
import os
import pty
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time

from . import kernel, lab, recording
from .correlate import Correlator, device_crossings
from .kernel import SetupError
from .lab import LabError
from .live import LiveSource, build_filters
from .recording import RecordingError
from .sources import LiveEvents, ReplaySource, replay
from .verdict import conversation_outcome
from ui.text import Style, conversation_lines, event_lines, journey_lines, summary_lines

SEQ_RE = re.compile(rb"icmp_seq=(\d+)")
TARGET_RE = re.compile(rb"^PING \S+ \(([0-9.]+)\)")
GRACE_NS = 200_000_000  # a clone (raw-socket copy) follows its original within this
KEEP_LIVE = 20_000  # journeys kept in memory by long-running live commands
SETTLE_S = 0.03  # after ping prints a line, the events that explain it are already queued; drain once more

EPILOG = """\
examples:
  vethtrace demo                                   the article's experiment 2, in a private namespace
  vethtrace lab up two-ips-fixed                   build a lab namespace to play in
  ip netns exec vethtrace-two-ips-fixed vethtrace ping -c 2 -I veth0 192.168.2.1
  vethtrace record -o trace.jsonl -- ping -c 1 -I veth0 192.168.2.1
  vethtrace show trace.jsonl
  vethtrace doctor
"""


def _filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (applied in the kernel)")
    g.add_argument("-i", "--interface", help="only packets on this interface")
    g.add_argument("--host", metavar="IPV4", help="only packets from or to this IPv4 address")
    g.add_argument("--all-netns", action="store_true", help="trace every network namespace, not just this one")
    g.add_argument("--ipv6", action="store_true", help="include IPv6 (router/multicast housekeeping is hidden by default)")
    p.add_argument("--buffer-mb", type=int, default=32, metavar="MB",
                   help="kernel ring buffer size (default 32 MB); larger loses fewer events in floods")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="vethtrace", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Trace where packets go inside the Linux kernel (veth0 -> veth1 -> stack -> lo -> socket) "
                    "and why they stop there.")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("ping", help="run ping and show the path of every request, reply and error",
                       description="Runs the system ping with your arguments, traces while it runs, and under each "
                                   "line ping prints shows the packets involved, their path and verdict.")
    p.add_argument("--events", action="store_true", help="also list the raw kernel events at the end")
    p.add_argument("--record", metavar="FILE", help="also save the trace as a recording")
    p.add_argument("--ipv6", action="store_true", help="include IPv6 packets")
    p.add_argument("--svg", metavar="FILE", help="also draw the packets' paths (.svg, .png or .dot)")
    p.add_argument("--buffer-mb", type=int, default=32, metavar="MB", help="kernel ring buffer size (default 32 MB)")
    p.add_argument("ping_args", nargs=argparse.REMAINDER, metavar="PING_ARGS", help="arguments for ping, unchanged")

    p = sub.add_parser("record", help="record events to a JSON-lines file (until COMMAND exits or Ctrl-C)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="recording to write ('-' for stdout)")
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS", help="stop after this long")
    _filter_args(p)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="command to run while recording")

    p = sub.add_parser("trace", help="print each packet's path live as its journey ends (Ctrl-C stops)")
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS", help="stop after this long")
    p.add_argument("--json", action="store_true", help="print events as JSON lines instead")
    _filter_args(p)

    p = sub.add_parser("show", help="replay a recording: conversations, paths and verdicts")
    p.add_argument("file", help="recording made by `vethtrace record` ('-' for stdin)")
    p.add_argument("--events", action="store_true", help="list the events too")
    p.add_argument("--devices", action="store_true", help="list what crossed each device, as tcpdump on it would show")
    p.add_argument("--json", action="store_true", help="print each event as a JSON object (for jq), with the ids of "
                   "its journey and conversation, instead of the text")

    p = sub.add_parser("lab", help="build, list or remove the article's lab namespaces")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("scenario", nargs="?", help=", ".join(f"{n}: {s.description}" for n, s in lab.SCENARIOS.items()))

    p = sub.add_parser("demo", help="the article's experiment in a private namespace, traced and shown, then removed")
    p.add_argument("scenario", nargs="?", default="two-ips-fixed", choices=sorted(lab.SCENARIOS))

    p = sub.add_parser("render", help="draw a recording as a diagram (.svg, .png, .pdf or .dot)")
    p.add_argument("file", help="recording made by `vethtrace record` or `vethtrace ping --record`")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="out.svg, out.png, out.pdf or out.dot")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--conversation", type=int, metavar="ID", help="one conversation (IDs as `vethtrace show` lists them)")
    g.add_argument("--all", action="store_true", help="every packet, aggregated: counts on the edges")

    p = sub.add_parser("export", help="export a recording for other tools")
    p.add_argument("file", help="recording")
    p.add_argument("--pcapng", required=True, metavar="OUT", help="pcapng for Wireshark/tshark: one interface per "
                   "(namespace, device), one record per hop, commented with hop and verdict")

    sub.add_parser("schema", help="print the JSON schema of the recording format")

    p = sub.add_parser("tui", help="interactive: watch packets flow (live, or a recording), select one to see its path",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Live: traces the network namespace it runs in, like the other commands "
                                   "(ip netns exec NS vethtrace tui). With FILE: replays a recording.",
                       epilog="examples:\n  ip netns exec vethtrace-two-ips-fixed vethtrace tui\n"
                              "  ip netns exec vethtrace-two-ips-fixed vethtrace tui -- ping -c 3 -I veth0 192.168.2.1\n"
                              "  vethtrace tui trace.jsonl\n\n"
                              "-- COMMAND runs COMMAND while tracing (its output is shown in a pane).\n"
                              "Keys: ? lists them; q or Ctrl-C quits and detaches the probes.")
    p.add_argument("file", nargs="?", help="a recording (vethtrace record) to replay instead of tracing live")
    _filter_args(p)

    sub.add_parser("doctor", help="what this kernel allows and which probe mechanism will be used")
    return ap


def _split_ping(argv: list[str]) -> list[str]:
    """`vethtrace ping [OWN OPTIONS] PING_ARGS...`: everything after vethtrace's own
    options goes to ping unchanged, even when it starts with '-' (argparse cannot)."""
    own, i = [], 1
    while i < len(argv):
        a = argv[i]
        if a in ("--events", "--ipv6", "-h", "--help"):
            own.append(a)
        elif a in ("--record", "--svg", "--buffer-mb") and i + 1 < len(argv):
            own += argv[i:i + 2]
            i += 1
        elif a.startswith(("--record=", "--svg=", "--buffer-mb=")):
            own.append(a)
        else:
            break
        i += 1
    rest = argv[i:]
    return ["ping", *own, *(["--", *rest] if rest else [])]


# Traces make millions of small long-lived objects; the default GC thresholds would rescan
# them all constantly (bench/run.py: replay 2x slower).  The correlator breaks its own
# reference cycles when it prunes, so rare collections are enough.  Replays of a recording
# pause the collector altogether (sources.collector_paused).
GC_THRESHOLDS = (500_000, 1000, 1000)


def main(argv: list[str] | None = None) -> int:
    gc.set_threshold(*GC_THRESHOLDS)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ping"]:
        argv = _split_ping(argv)
    tui_command: list[str] = []
    if argv[:1] == ["tui"] and "--" in argv:  # argparse would take the command for FILE
        cut = argv.index("--")
        argv, tui_command = argv[:cut], argv[cut + 1:]
    args = parser().parse_args(argv)
    if args.cmd == "tui":
        args.command = tui_command
    try:
        return COMMANDS[args.cmd](args)
    except (SetupError, RecordingError, LabError) as exc:
        print(f"vethtrace: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


# -- ping -----------------------------------------------------------------------------
class PingView:
    """Prints ping's lines, and under each one the conversations that explain it."""

    def __init__(self, corr: Correlator, style: Style):
        self.corr, self.style = corr, style
        self.target: str | None = None
        self.shown: set[int] = set()

    def line(self, raw: bytes) -> None:
        if raw.startswith(b"--- ") and b"statistics" in raw:
            self.rest()  # explain what ping never printed a line for, before its summary
        print(raw.decode(errors="replace"), flush=True)
        m = TARGET_RE.match(raw)
        if m:
            self.target = m.group(1).decode()
        m = SEQ_RE.search(raw)
        if not m:
            return
        conv = self.corr.echo(int(m.group(1)), self.target)
        self.show_background(before=conv.start if conv else None)
        if conv is not None:
            self.show(conv)

    def explained(self, raw: bytes) -> bool:
        """Has the packet behind a line of ping's (a reply or an error) been seen arriving?"""
        m = SEQ_RE.search(raw)
        if not m:
            return True
        conv = self.corr.echo(int(m.group(1)), self.target)
        return conv is not None and any(j.delivered for j in conv.journeys if j.role in ("reply", "error"))

    def show_background(self, before: int | None = None) -> None:
        """ARP exchanges and other packets that happened before, not yet shown."""
        for conv in self.corr.conversations:
            if conv.id in self.shown or conv.kind == "echo":
                continue
            if before is not None and conv.start > before and conv.kind != "arp":
                continue
            self.show(conv)

    def show(self, conv) -> None:
        self.shown.add(conv.id)
        for text in conversation_lines(conv, self.corr, self.style):
            print(text)
        sys.stdout.flush()

    def rest(self, limit: int = 12) -> None:
        """What ping printed no line for; a flood would print thousands, so beyond `limit`
        only the failures are shown (up to `limit`) and the rest is counted."""
        todo = [c for c in self.corr.conversations if c.id not in self.shown]
        if len(todo) > limit:
            failed = [c for c in todo if conversation_outcome(c, self.corr).failure][:limit]
            for conv in failed:
                self.show(conv)
            print(self.style.dim(f"    ({len(todo) - len(failed)} more conversations not listed; the summary "
                                 f"below counts every path, `--record FILE` keeps them all)"))
            self.shown.update(c.id for c in todo)
            return
        for conv in todo:
            self.show(conv)


def cmd_ping(args) -> int:
    ping_args = [a for a in args.ping_args if a != "--"] if args.ping_args[:1] == ["--"] else args.ping_args
    if not ping_args:
        raise SetupError("say what to ping, e.g. `vethtrace ping -c 2 -I veth0 192.168.2.1`")
    if shutil.which("ping") is None:
        raise SetupError("ping is not installed: apt-get install iputils-ping")
    style = Style()
    with LiveSource(build_filters(ipv6=args.ipv6), ring_mb=args.buffer_mb) as src:
        corr = Correlator(kernel.context())
        kept = [] if (args.record or args.events) else None
        view = PingView(corr, style)
        status = _run_ping(ping_args, src, corr, view, kept)
        time.sleep(SETTLE_S)
        _feed(src.drain(), corr, kept)
        lost = src.lost()
        view.rest()
        print()
        for text in summary_lines(corr, style, lost):
            print(text)
        print(style.dim(f"probes: {src.mechanism}"))
        if args.events:
            print("\n".join(event_lines(kept)))
        if args.svg:
            _draw(corr.journeys, corr, args.svg, title="vethtrace ping " + " ".join(ping_args))
            print(style.dim(f"diagram saved to {args.svg}"))
        if args.record:
            recording.write_file(args.record, recording.header(corr.context, src.mechanism, ["ping", *ping_args]),
                                 kept, lost)
            print(style.dim(f"recording saved to {args.record}"))
    return status


def _feed(events, corr: Correlator, kept: list | None) -> None:
    corr.feed(events)
    if kept is not None:
        kept.extend(events)


def _run_ping(ping_args: list[str], src: LiveSource, corr: Correlator, view: PingView, kept) -> int:
    # A pty keeps ping's output line-buffered and exactly as it looks in a terminal.
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(["ping", *ping_args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    finally:
        os.close(slave)
    interrupted = [0]

    def on_int(signum, frame):
        interrupted[0] += 1
        if interrupted[0] > 1:
            raise KeyboardInterrupt
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # ping prints its statistics and exits

    old = signal.signal(signal.SIGINT, on_int)
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    sel.register(src.epoll_fd(), selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            ready = {key.fd for key, _ in sel.select(0 if src.backlog else 0.1)}
            _feed(src.poll(0), corr, kept)  # a chunk at a time: the ring buffer is emptied often
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                buf += data.replace(b"\r\n", b"\n")
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    _feed(src.drain(), corr, kept)
                    if not view.explained(raw):  # its last events may still be on their way
                        time.sleep(SETTLE_S)
                        _feed(src.drain(), corr, kept)
                    view.line(raw)
        if buf:
            view.line(buf)
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, old)
        sel.close()
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- record / trace / show ----------------------------------------------------------------
def cmd_record(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    filters = build_filters(args.interface, args.host, args.all_netns, args.ipv6)
    to_stdout = args.output == "-"
    proc = None
    status = 0
    with LiveSource(filters, ring_mb=args.buffer_mb) as src:
        # Opened only once the probes run: a run that cannot start leaves an older
        # recording of the same name untouched; a killed run leaves a readable prefix.
        if to_stdout:
            out = sys.stdout.buffer
        else:
            try:
                out = open(args.output, "wb")
            except OSError as exc:
                raise SetupError(f"cannot write {args.output}: {exc.strerror}") from None
        try:
            writer = recording.Writer(out, recording.header(kernel.context(), src.mechanism, command))
            print(f"vethtrace: recording ({src.mechanism}); {'running ' + ' '.join(command) if command else 'Ctrl-C stops'}",
                  file=sys.stderr)
            deadline = time.monotonic() + args.duration if args.duration else None
            with StopSignals() as stop:
                if command:
                    proc = subprocess.Popen(command)
                while not stop.requested:
                    writer.write(src.poll(100))
                    if proc is not None and proc.poll() is not None:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                if stop.requested:
                    status = 130
                    _stop(proc)
                time.sleep(SETTLE_S)
                writer.write(src.drain())
                writer.close(src.lost())
            if proc is not None:
                status = _stop(proc)
            print(f"vethtrace: {writer.count} events, {src.lost()} lost"
                  + ("" if to_stdout else f", written to {args.output}"), file=sys.stderr)
        finally:
            _stop(proc)
            if not to_stdout:
                out.close()
    return status if command else 0


class StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP ask a reading loop to stop after the batch in hand (so no
    batch is half-written or uncounted); a second signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self) -> "StopSignals":
        self.requested = False
        self._old = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}
        return self

    def _on_signal(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _stop(proc, sig: int = signal.SIGTERM, grace: float = 3.0) -> int:
    """End a child we started: ask politely (sig), then insist.  Returns its status."""
    if proc is None:
        return 0
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def cmd_trace(args) -> int:
    filters = build_filters(args.interface, args.host, args.all_netns, args.ipv6)
    style = Style()
    with LiveSource(filters, ring_mb=args.buffer_mb) as src:
        corr = Correlator(kernel.context(), keep=KEEP_LIVE)
        pending: dict[int, object] = {}  # ended journeys, printed once no clone can join them
        if not args.json:
            corr.on_journey_end = lambda j: pending.__setitem__(j.id, j)

        def flush(everything: bool = False) -> None:
            now = time.monotonic_ns()  # the probes' clock (bpf_ktime_get_ns)
            for jid, j in list(pending.items()):
                if everything or now - j.last > GRACE_NS:
                    if j.ended or j.cut:
                        print("\n".join(journey_lines(j, corr, style, indent="")), flush=True)
                    del pending[jid]

        print(f"vethtrace: tracing ({src.mechanism}); Ctrl-C stops", file=sys.stderr)
        deadline = time.monotonic() + args.duration if args.duration else None
        with StopSignals() as stop:
            while not stop.requested and (deadline is None or time.monotonic() < deadline):
                events = src.poll(100)
                if args.json:
                    recording.write_lines(sys.stdout.buffer, events, rows=False)
                corr.feed(events)
                flush()
        if not args.json:
            flush(everything=True)
            print("\n".join(summary_lines(corr, style, src.lost())))
    return 0


def cmd_show(args) -> int:
    rec, corr = replay(args.file)
    if args.json:
        return _show_json(rec, corr)
    style = Style()
    head = rec.header
    print(style.dim(f"recording: {' '.join(head.get('command') or []) or 'no command'}; kernel {head.get('kernel', '?')}; "
                    f"probes {head.get('mechanism', '?')}"))
    for conv in corr.conversations:
        print(style.paint(f"[{conv.id}] {conv.title}", "1"))
        for text in conversation_lines(conv, corr, style):
            print(text)
    print()
    print("\n".join(summary_lines(corr, style, rec.lost)))
    if args.devices:
        for dev, rows in device_crossings(rec.events).items():
            print(style.paint(f"{dev}: {len(rows)} packets", "1"))
            for direction, text in rows:
                print(f"    {direction:<3} {text}")
    if args.events:
        print("\n".join(event_lines(rec.events)))
    return 0


def _show_json(rec, corr) -> int:
    """Events as JSON objects in recorded order (the recording's rows, named), each with
    the journey and conversation `show` puts it in: null for route and neighbour events,
    and the conversation also for a journey whose packet could not be parsed."""
    placed = {}
    for j in corr.journeys:
        ids = (j.id, j.conversation.id if j.conversation is not None else None)
        for e in j.events:
            placed[id(e)] = ids
    out = sys.stdout.buffer
    for k in range(0, len(rec.events), 4096):
        lines = []
        for e in rec.events[k:k + 4096]:
            d = e.to_json()
            d["journey"], d["conversation"] = placed.get(id(e), (None, None))
            lines.append(recording.dumps(d))
        out.write(b"\n".join(lines) + b"\n")
    out.flush()
    return 0


# -- diagrams and exports --------------------------------------------------------------------
def _draw(journeys, corr, path: str, title: str, aggregate: bool | None = None) -> None:
    from ui import diagram  # graphviz is only needed here
    try:
        diagram.write(diagram.build(journeys, corr, title=title, aggregate=aggregate), path)
    except diagram.DotMissing as exc:
        raise SetupError(str(exc)) from None


def cmd_render(args) -> int:
    rec, corr = replay(args.file)
    name = " ".join(rec.header.get("command") or []) or args.file
    if args.conversation is not None:
        conv = next((c for c in corr.conversations if c.id == args.conversation), None)
        if conv is None:
            raise SetupError(f"no conversation {args.conversation} in {args.file} "
                             f"(it has 1..{len(corr.conversations)}; `vethtrace show {args.file}` lists them)")
        _draw(conv.journeys, corr, args.output, title=f"{conv.title}  ({name})", aggregate=False)
    else:
        _draw(corr.journeys, corr, args.output, title=name, aggregate=True if args.all else None)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from . import pcapng
    rec, corr = replay(args.file)
    try:
        n = pcapng.export(args.pcapng, corr, rec.header.get("wall_offset_ns", 0))
    except OSError as exc:
        raise SetupError(f"cannot write {args.pcapng}: {exc.strerror}") from None
    print(f"wrote {n} packet records to {args.pcapng}", file=sys.stderr)
    return 0


def cmd_schema(args) -> int:
    import json
    from .schema import SCHEMA
    print(json.dumps(SCHEMA, indent=2))
    return 0


def cmd_tui(args) -> int:
    from ui import tui  # Textual is imported only by this command
    live_only = args.command or args.interface is not None or args.host is not None or args.all_netns or args.ipv6
    if args.file:
        if live_only:
            raise SetupError("a recording is replayed as it was recorded: filters and -- COMMAND only apply "
                             "when tracing live (vethtrace tui [filters] [-- COMMAND])")
        return tui.run(ReplaySource(args.file))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise SetupError("vethtrace tui needs a terminal; in scripts and pipes use `vethtrace trace` "
                         "or `vethtrace record -o -`")
    if args.command and shutil.which(args.command[0]) is None:
        raise SetupError(f"{args.command[0]}: command not found")
    with LiveEvents(build_filters(args.interface, args.host, args.all_netns, args.ipv6),
                    ring_mb=args.buffer_mb) as src:
        return tui.run(src, args.command or None)


# -- lab / demo / doctor ----------------------------------------------------------------------
def cmd_lab(args) -> int:
    if args.action == "status":
        labs = lab.status()
        if not labs:
            print("no lab namespaces")
        for st in labs:
            print(f"{st.name}  ({st.scenario or 'unknown scenario'})")
            for i in st.interfaces:
                print(f"    {i.name:<8} {i.state:<6} {' '.join(i.addresses)}")
        return 0
    if not args.scenario:
        raise LabError(f"say which lab: one of {', '.join(lab.SCENARIOS)}")
    if args.action == "up":
        built = lab.up(args.scenario)
        print(lab.describe(built))
        return 0
    removed = lab.down(args.scenario)
    print(f"removed {lab.ns_name(args.scenario)}" if removed else f"no lab {lab.ns_name(args.scenario)} to remove")
    return 0


def cmd_demo(args) -> int:
    kernel.require_root()
    scenario = lab.SCENARIOS[args.scenario]
    name = f"{lab.PREFIX}demo-{os.getpid()}"
    style = Style()
    lab.cleanup_stale()
    # SIGTERM/SIGHUP unwind like Ctrl-C so the namespace is always removed.
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    child = None
    try:
        with lab.lab(scenario.name, name=name) as built:
            print(style.paint(f"# {scenario.description}", "1"))
            print(style.dim(f"# namespace {built.name} (removed when the demo ends); running: vethtrace ping "
                            f"{' '.join(scenario.ping[1:])}"), flush=True)
            cmd = built.exec_cmd([sys.executable, "-m", "tracer", "ping", *scenario.ping[1:]])
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([_project_root(), os.environ.get("PYTHONPATH", "")]))
            child = subprocess.Popen(cmd, env=env)
            try:
                rc = child.wait()
            except KeyboardInterrupt:
                # Let vethtrace ping stop ping and print its summary, then remove the lab.
                _stop(child, signal.SIGINT, grace=5.0)
                raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 0 if rc in (0, 1) else rc


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _project_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cmd_doctor(args) -> int:
    rows = kernel.doctor()
    ok_all = True
    for name, ok, detail in rows:
        ok_all &= ok or name.startswith(("function", "tracepoint icmp_send"))
        print(f"{'ok ' if ok else 'NO '} {name:<38} {detail}")
    if os.geteuid() == 0 and os.path.exists(kernel.btf_path()):
        try:
            with LiveSource(build_filters(), want_fentry=True) as src:  # tries fentry again
                print(f"\nprobe mechanism: {src.mechanism}")
                for s in src.report.skipped:
                    print(f"  skipped {s}")
        except SetupError as exc:
            print(f"\nprobes cannot load: {exc}")
            return 1
    else:
        print("\nprobe mechanism: unknown until run as root")
    return 0 if ok_all else 1


COMMANDS = {"ping": cmd_ping, "record": cmd_record, "trace": cmd_trace, "show": cmd_show,
            "render": cmd_render, "export": cmd_export, "schema": cmd_schema, "tui": cmd_tui,
            "lab": cmd_lab, "demo": cmd_demo, "doctor": cmd_doctor}


if __name__ == "__main__":
    sys.exit(main())
