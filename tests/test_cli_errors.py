"""The CLI's error paths and clean-up, run as real subprocesses.

Standards under test (notes: "Bad input", "Never leave probes attached"):

* Bad input gets one clear line saying what is wrong and what to do, exit
  status 2, no traceback, and nothing left behind: not root, no BTF, unknown
  interface, bad address, corrupt trace file.
* Never leave probes attached or namespaces behind -- on normal exit, Ctrl-C,
  or a crash.  After Ctrl-C of `vethtrace ping`: no vethtrace BPF program
  stays loaded and no namespace stays behind.

Root-free tests need nothing special.  The "not root" tests, when the suite
runs as root, drop to nobody (65534) with `setpriv` and run the checkout with
an interpreter that user can execute.  Live tests (root) only send packets
inside namespaces they create (vethtrace-t<pid>-<n>, 192.168.2.x), and never
touch the host namespace's interfaces, routes or sysctls.

Which BPF programs belong to a vethtrace process is read from its
/proc/PID/fdinfo (prog_id of its bpf-prog and bpf_link fds), so tracers run
concurrently by others are never counted.
"""
from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, is_root, needs_root

from vethtrace.tracer import lab as labmod
from vethtrace.tracer import recording
from vethtrace.tracer.lab import pid_alive

DATA = ROOT / "tests" / "data" / "errors"
GOOD_RECORDING = DATA / "two-ips-fixed-ping.jsonl"  # `vethtrace record -- ping -c 1 ...` in a two-ips-fixed lab
NOBODY = 65534
OWN_PREFIX = f"{labmod.PREFIX}t{os.getpid()}-"
TEST_NS_RE = re.compile(r"^vethtrace-t(\d+)-(\d+)$")

# Program names in probes/vethtrace.bpf.c; the kernel keeps 15 characters of a name.
PROG_NAMES = {n[:15] for n in (
    "tp_xmit", "tp_netif_rx", "tp_receive", "tp_kfree_skb", "tp_kfree_skb_noreason", "tp_consume_skb",
    "tp_consume_skb_noloc", "tp_icmp_send", "tp_deliver", "tp_fib", "tp_neigh_create", "tp_neigh_update",
    "fe_veth_xmit", "fe_loopback_xmit", "fe_arp_rcv", "fe_icmp_rcv")}

EXIT_TIMEOUT = 4.0  # seconds a signalled vethtrace may take to clean up and exit


# -- helpers ------------------------------------------------------------------------------
def _env(**extra: str) -> dict[str, str]:
    """The environment for a vethtrace subprocess: ours, minus any VETHTRACE_* knobs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VETHTRACE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def vethtrace(*args: str, env: dict | None = None, input: bytes | None = None, timeout: float = 20,
              prefix: list[str] | None = None, python: str | None = None) -> subprocess.CompletedProcess:
    cmd = [*(prefix or []), python or sys.executable, "-m", "vethtrace", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env or _env(), input=input, capture_output=True,
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)


def out_lines(r: subprocess.CompletedProcess) -> tuple[list[str], list[str]]:
    return (r.stdout.decode(errors="replace").splitlines(), r.stderr.decode(errors="replace").splitlines())


def assert_one_line_error(r: subprocess.CompletedProcess, *must_mention: str) -> str:
    """Exit status 2, no traceback, exactly one line (on stderr, nothing on stdout); returns it."""
    stdout, stderr = out_lines(r)
    shown = "\n".join(["stdout:", *stdout, "stderr:", *stderr])
    assert "Traceback" not in shown, f"traceback instead of a one-line error:\n{shown}"
    assert r.returncode == 2, f"exit status {r.returncode}, want 2:\n{shown}"
    assert len(stderr) == 1 and not stdout, f"want exactly one line on stderr and nothing on stdout:\n{shown}"
    line = stderr[0]
    assert line.startswith("vethtrace: "), line
    for word in must_mention:
        assert re.search(word, line, re.I), f"the error should mention {word!r}: {line}"
    return line


def loaded_programs() -> dict[int, str]:
    """id -> name of every BPF program the kernel has loaded now."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: p.get("name", "") for p in json.loads(out or "[]")}


def held_programs(pid: int) -> set[int]:
    """Program ids a process holds through bpf-prog or bpf_link file descriptors."""
    ids: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return ids
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if not target.startswith(("anon_inode:bpf-prog", "anon_inode:bpf_link")):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return ids


def held_by_anyone() -> set[int]:
    ids: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ids |= held_programs(int(entry))
    return ids


def wait_programs_gone(ids: set[int], timeout: float = 3.0) -> set[int]:
    """The ids still loaded after waiting up to `timeout` (freeing is deferred in the kernel)."""
    deadline = time.monotonic() + timeout
    while True:
        left = ids & set(loaded_programs())
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def orphaned_vethtrace_programs(before: dict[int, str]) -> dict[int, str]:
    """vethtrace-named programs loaded since `before` that no process holds: leaked."""
    deadline = time.monotonic() + 3.0
    while True:
        new = {i: n for i, n in loaded_programs().items() if i not in before and n in PROG_NAMES}
        orphans = {i: n for i, n in new.items() if i not in held_by_anyone()}
        if not orphans or time.monotonic() > deadline:
            return orphans
        time.sleep(0.05)


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [e["name"] for e in json.loads(out or "[]") if isinstance(e, dict) and "name" in e]


def children(pid: int) -> set[int]:
    kids: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids |= {int(x) for x in f.read().split()}
    except OSError:
        pass
    return kids


class Running:
    """A vethtrace subprocess in its own session whose output is read by threads."""

    def __init__(self, cmd: list[str], env: dict | None = None):
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env or _env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.pid = self.proc.pid
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._q: queue.Queue = queue.Queue()
        self._threads = [threading.Thread(target=self._read, args=(name, stream), daemon=True)
                         for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))]
        for t in self._threads:
            t.start()

    def _read(self, name: str, stream) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines[name].append(line)
            self._q.put((name, line))

    def wait_for(self, pattern: str, stream: str = "stdout", timeout: float = 10.0) -> str:
        rx = re.compile(pattern)
        for line in self.lines[stream]:
            if rx.search(line):
                return line
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and self._q.empty():
                raise AssertionError(f"no line matching {pattern!r} on {stream} within {timeout}s "
                                     f"(exit status {self.proc.poll()}):\n{self.output()}")
            try:
                name, line = self._q.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if name == stream and rx.search(line):
                return line

    def wait(self, timeout: float) -> int | None:
        """Exit status, or None when still running after `timeout`."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(timeout=1)
        return rc

    def output(self) -> str:
        return "\n".join(["stdout:", *self.lines["stdout"], "stderr:", *self.lines["stderr"]])

    def kill_all(self) -> None:
        """Safety net: SIGKILL the session this test started (our own process group, by id)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


def _session_members(sid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _events(path: Path = GOOD_RECORDING) -> tuple[dict, list[dict]]:
    lines = path.read_text().splitlines()
    head = json.loads(lines[0])
    return head, [json.loads(line) for line in lines[1:] if not json.loads(line).get("footer")]


needs_bpftool = pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool not installed")
needs_ip = pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 `ip` not installed")


@pytest.fixture(scope="module", autouse=True)
def _no_namespaces_left_behind():
    """After the module: none of our test namespaces remain, and no stale test namespace
    (vethtrace-t<pid>-<n> of a dead process) appeared while it ran."""
    if not is_root() or shutil.which("ip") is None:
        yield
        return
    before = set(netns_names())
    yield
    names = netns_names()
    ours = [n for n in names if n.startswith(OWN_PREFIX)]
    stale_new = [n for n in names if n not in before and (m := TEST_NS_RE.match(n)) and not pid_alive(int(m[1]))]
    for ns in ours:  # safety net, then fail loudly
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert not ours and not stale_new, f"namespaces left behind: {ours + stale_new}"


# -- not root -----------------------------------------------------------------------------
def _traversable_by_others(path: Path) -> str | None:
    """None if `other` can reach and read `path`, else the first component that blocks it."""
    for p in [*reversed(path.parents), path]:
        mode = p.stat().st_mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return str(p)
        if not stat.S_ISDIR(mode) and not mode & stat.S_IROTH:
            return str(p)
    return None


_UNPRIV: dict = {}


def unprivileged() -> tuple[list[str], str]:
    """(command prefix, interpreter) that run vethtrace as an unprivileged user; skips if impossible."""
    if "ok" in _UNPRIV:
        return _UNPRIV["ok"]
    if "skip" in _UNPRIV:
        pytest.skip(_UNPRIV["skip"])
    if not is_root():
        _UNPRIV["ok"] = ([], sys.executable)
        return _UNPRIV["ok"]
    reason = None
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if shutil.which("setpriv") is None:
        reason = "setpriv (util-linux) not installed: cannot run as an unprivileged user"
    elif blocker := (_traversable_by_others(ROOT / "vethtrace" / "cli" / "__init__.py")
                     or _traversable_by_others(ROOT / "ui" / "text.py")):
        reason = f"the checkout is not readable by uid {NOBODY} ({blocker} blocks it); not copying it"
    else:
        tried = []
        for py in dict.fromkeys([sys.executable, os.path.realpath(sys.executable), "/usr/bin/python3",
                                 shutil.which("python3") or ""]):
            if not py:
                continue
            r = subprocess.run([*prefix, py, "-c", "import vethtrace.cli"], cwd=ROOT, env=_env(),
                               capture_output=True, text=True, timeout=20)
            if r.returncode == 0:
                _UNPRIV["ok"] = (prefix, py)
                return _UNPRIV["ok"]
            tried.append(f"{py}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        reason = f"no Python interpreter that uid {NOBODY} can run imports tracer ({'; '.join(tried)})"
    _UNPRIV["skip"] = reason
    pytest.skip(reason)


@pytest.fixture
def shared_dir():
    """A directory the unprivileged user can write (tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="vethtrace-errors-"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("args", [["record", "-o", "{dir}/out.jsonl", "-d", "1"], ["trace", "-d", "1"]],
                         ids=["record", "trace"])
def test_not_root_one_line(args, shared_dir):
    prefix, py = unprivileged()
    r = vethtrace(*[a.format(dir=shared_dir) for a in args], prefix=prefix, python=py)
    assert_one_line_error(r, r"root|sudo")


def test_not_root_record_leaves_no_output_file(shared_dir):
    """`record -o FILE` as non-root must not leave an empty FILE behind."""
    prefix, py = unprivileged()
    out = shared_dir / "out.jsonl"
    r = vethtrace("record", "-o", str(out), "-d", "1", prefix=prefix, python=py)
    assert_one_line_error(r, r"root|sudo")
    assert not out.exists(), (f"{out} was left behind ({out.stat().st_size} bytes) although nothing "
                              "was recorded: cmd_record opens the output before checking privileges")


def test_not_root_unreadable_recording(shared_dir):
    prefix, py = unprivileged()
    if not prefix:
        pytest.skip("needs root to create a file the test user cannot read")
    f = shared_dir / "secret.jsonl"
    shutil.copy(GOOD_RECORDING, f)
    f.chmod(0o000)
    r = vethtrace("show", str(f), prefix=prefix, python=py)
    assert_one_line_error(r, re.escape(str(f)), r"permission")


# -- no BTF (needs root: the root check comes first) ----------------------------------------
@pytest.mark.live
@needs_root
@pytest.mark.parametrize("args", [["trace", "-d", "1"], ["record", "-o", "{dir}/out.jsonl", "-d", "1"]],
                         ids=["trace", "record"])
def test_no_btf_one_line(args, tmp_path):
    r = vethtrace(*[a.format(dir=tmp_path) for a in args], env=_env(VETHTRACE_BTF="/nonexistent"))
    assert_one_line_error(r, r"BTF", r"CONFIG_DEBUG_INFO_BTF")


@pytest.mark.live
@needs_root
def test_no_btf_record_leaves_no_output_file(tmp_path):
    out = tmp_path / "out.jsonl"
    r = vethtrace("record", "-o", str(out), "-d", "1", env=_env(VETHTRACE_BTF="/nonexistent"))
    assert_one_line_error(r, r"BTF")
    assert not out.exists(), (f"{out} was left behind ({out.stat().st_size} bytes) by a record that "
                              "never started: cmd_record opens the output before LiveSource checks BTF")


@pytest.mark.live
@needs_root
def test_no_btf_record_keeps_existing_file(tmp_path):
    """A failed start must not destroy the file it would have written."""
    out = tmp_path / "trace.jsonl"
    shutil.copy(GOOD_RECORDING, out)
    r = vethtrace("record", "-o", str(out), "-d", "1", env=_env(VETHTRACE_BTF="/nonexistent"))
    assert_one_line_error(r, r"BTF")
    assert out.read_bytes() == GOOD_RECORDING.read_bytes(), (
        f"the existing recording was truncated to {out.stat().st_size} bytes by a record that never started")


@pytest.mark.live
@needs_root
@pytest.mark.parametrize("btf", ["/etc/hostname", "/"], ids=["not-btf-file", "directory"])
def test_unreadable_btf_one_line(btf):
    r = vethtrace("trace", "-d", "1", env=_env(VETHTRACE_BTF=btf))
    line = assert_one_line_error(r, r"BTF", re.escape(btf))
    assert "Unknown error" not in line, f"libbpf's private errno leaks into the message: {line}"


# -- unknown interface / bad address (validated before privileges: no root needed) ------------
@pytest.mark.parametrize("cmd", ["record", "trace"])
def test_unknown_interface(cmd, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["record", "-o", str(out)] if cmd == "record" else ["trace"]
    r = vethtrace(*args, "-i", "nosuchif0", "-d", "1")
    line = assert_one_line_error(r, r"nosuchif0", r"interface")
    assert "lo" in line, f"the message should list the interfaces that exist: {line}"
    assert not out.exists(), "record left its output file behind"


def test_unknown_interface_keeps_existing_file(tmp_path):
    out = tmp_path / "trace.jsonl"
    shutil.copy(GOOD_RECORDING, out)
    r = vethtrace("record", "-o", str(out), "-i", "nosuchif0", "-d", "1")
    assert_one_line_error(r, r"nosuchif0")
    assert out.read_bytes() == GOOD_RECORDING.read_bytes()


@pytest.mark.parametrize("host", ["300.1.2.3", "notanip", "1.2.3", "fd00::zz", "192.168.2.1/24"])
@pytest.mark.parametrize("cmd", ["record", "trace"])
def test_bad_address(cmd, host, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["record", "-o", str(out)] if cmd == "record" else ["trace"]
    r = vethtrace(*args, "--host", host, "-d", "1")
    assert_one_line_error(r, re.escape(repr(host)), r"IPv4 or IPv6 address such as")
    assert not out.exists(), "record left its output file behind"


@pytest.mark.parametrize("option", ["--host", "--interface"])
def test_empty_filter_is_rejected(option, tmp_path):
    """`--host ''` / `-i ''` are bad input, not "no filter": the user asked for a filter.
    (As root a buggy build traces everything for 0.3 s; no packets are sent.)"""
    r = vethtrace("trace", option, "", "-d", "0.3")
    assert_one_line_error(r, r"address|interface")


# -- show: missing, unreadable and corrupt recordings ---------------------------------------
def _corrupt_cases() -> dict:
    head, events = _events()
    good_head = json.dumps(head)
    xmit = next(i for i, e in enumerate(events) if e["kind"] == "xmit" and e.get("where"))
    fib = next(i for i, e in enumerate(events) if e["kind"] == "fib")

    def with_event(i: int, **changes):
        evs = [dict(e) for e in events]
        evs[i].update(changes)
        return "\n".join([good_head, *(json.dumps(e) for e in evs)]) + "\n"

    return {
        # name: (file content or None for special handling, words the one line must contain)
        "missing": (None, [r"no such file"]),
        "directory": (None, [r"directory"]),
        "empty": ("", [r"empty"]),
        "blank-lines": ("\n\n\n", [r"empty"]),
        "random-bytes": (bytes((i * 97 + 13) % 256 for i in range(4096)), [r"not a vethtrace recording"]),
        "json-without-header": ('{"events": [], "version": 1}\n', [r"not a vethtrace recording"]),
        "json-array": ("[1, 2, 3]\n", [r"not a vethtrace recording"]),
        "header-then-garbage": (good_head + "\nthis is {not json\n", [r"line 2", r"damaged"]),
        "header-then-array": (good_head + "\n[1, 2]\n", [r"line 2"]),
        # A cut last line is no longer an error (issue 11): it is shown up to the cut with one
        # warning, see test_hardening.py::test_cut_recording_is_shown_with_one_warning.
        "future-version": (json.dumps(dict(head, version=99)) + "\n", [r"version 99", r"upgrade"]),
        "footer-lost-not-a-number": (good_head + '\n{"footer": true, "lost": "many"}\n', [r"line 2"]),
        "event-without-kind": (good_head + '\n{"ts": 1}\n', [r"line 2"]),
        # type-corrupted but well-formed JSON: must still be one line, not a traceback
        "event-where-not-a-string": (with_event(xmit, where=5), []),
        "event-fib-missing-fields": (with_event(fib, fib={}), []),
        "event-ts-not-a-number": (with_event(xmit, ts="soon"), []),  # shown with --events, see EVENTS_TOO
        "header-command-not-a-list": (json.dumps(dict(head, command=5)) + "\n", []),
        "header-context-not-an-object": ("\n".join([json.dumps(dict(head, context="x")),
                                                    *(json.dumps(e) for e in events)]) + "\n", []),
    }


CORRUPT = _corrupt_cases()
EVENTS_TOO = {"event-ts-not-a-number"}  # `show --events` lists every event: the listing must cope too


@pytest.mark.parametrize("case", list(CORRUPT))
def test_show_bad_recording(case, tmp_path):
    content, words = CORRUPT[case]
    path = tmp_path / f"{case}.jsonl"
    if case == "directory":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = vethtrace("show", str(path), *(["--events"] if case in EVENTS_TOO else []))
    assert_one_line_error(r, re.escape(str(path)), *words)


def test_show_damaged_format2_row(tmp_path):
    """What vethtrace writes now (rows): a row with a damaged column is one line too."""
    rec = recording.read(str(GOOD_RECORDING))
    path = tmp_path / "v2.jsonl"
    recording.write_file(str(path), recording.header(rec.context, "tp_btf", ["ping"]), rec.events, 0)
    lines = path.read_text().splitlines()
    row = json.loads(lines[3])
    row[6] = 12  # skb: a number where the hex string goes
    lines[3] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    assert_one_line_error(vethtrace("show", str(path)), re.escape(str(path)), r"line 4", r"damaged")


def test_show_bad_recording_on_stdin():
    r = vethtrace("show", "-", input=b"garbage\n")
    assert_one_line_error(r, r"not a vethtrace recording")


def test_show_non_integer_version_is_not_blamed_on_an_old_vethtrace(tmp_path):
    head, _ = _events()
    path = tmp_path / "strver.jsonl"
    path.write_text(json.dumps(dict(head, version="1")) + "\n")
    line = assert_one_line_error(vethtrace("show", str(path)))
    assert "upgrade" not in line, f"a damaged version field is not a reason to upgrade: {line}"


def test_show_good_recording_and_header_helper(tmp_path):
    """Sanity for the cases above: the untouched recording, and a header written with
    recording.header() and nothing else, both replay with status 0."""
    r = vethtrace("show", str(GOOD_RECORDING))
    assert r.returncode == 0, r.stderr.decode()
    assert b"--- vethtrace:" in r.stdout
    path = tmp_path / "header-only.jsonl"
    path.write_bytes(json.dumps(recording.header({"netns": 1, "name": "", "interfaces": [], "sysctl": {}},
                                                 "tp_btf", ["ping"])).encode() + b"\n")
    r = vethtrace("show", str(path))
    assert r.returncode == 0, r.stderr.decode()


# -- ping / lab usage errors ----------------------------------------------------------------
@pytest.mark.parametrize("args", [["ping"], ["ping", "--events"], ["ping", "--"], ["ping", "--record", "x.jsonl"]],
                         ids=["bare", "own-options-only", "double-dash", "record-only"])
def test_ping_without_destination(args):
    r = vethtrace(*args)
    assert_one_line_error(r, r"what to ping")
    assert not (ROOT / "x.jsonl").exists()


@pytest.mark.parametrize("args", [["lab", "up", "nosuchscenario"], ["lab", "up"], ["lab", "down"]],
                         ids=["unknown-scenario", "up-without-scenario", "down-without-scenario"])
def test_lab_usage_errors(args):
    r = vethtrace(*args)
    line = assert_one_line_error(r)
    assert "two-ips-fixed" in line, f"the message should list the scenarios: {line}"


# -- live: bad input inside a lab, and clean-up after signals ----------------------------------
@pytest.fixture
def lab_ns():
    with labmod.lab("two-ips-fixed", name=labmod.unique_name()) as built:
        yield built
    assert built.name not in netns_names(), f"{built.name} still exists after the lab context exited"


@pytest.mark.live
@needs_root
@needs_ip
def test_ping_no_btf_in_lab(lab_ns):
    r = subprocess.run(lab_ns.exec_cmd([sys.executable, "-m", "vethtrace", "ping", "-c", "1", "-W", "1",
                                        "-I", "veth0", "192.168.2.1"]),
                       cwd=ROOT, env=_env(VETHTRACE_BTF="/nonexistent"), capture_output=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert_one_line_error(r, r"BTF")


def _start_and_collect(run: Running, ready_pattern: str, stream: str) -> set[int]:
    """Wait until the probes are up, then the program ids the vethtrace process holds."""
    run.wait_for(ready_pattern, stream=stream, timeout=15)
    ids = held_programs(run.pid)
    names = loaded_programs()
    assert ids, f"vethtrace (pid {run.pid}) holds no BPF programs while tracing:\n{run.output()}"
    foreign = {i: names.get(i) for i in ids if names.get(i) not in PROG_NAMES}
    assert not foreign, f"unexpected program names held by vethtrace: {foreign}"
    return ids


def _assert_released(ids: set[int], before: dict[int, str], what: str) -> None:
    left = wait_programs_gone(ids)
    assert not left, f"after {what}: programs {sorted(left)} are still loaded"
    orphans = orphaned_vethtrace_programs(before)
    assert not orphans, f"after {what}: vethtrace programs loaded and held by no process: {orphans}"


@pytest.mark.live
@needs_root
@needs_ip
@needs_bpftool
@pytest.mark.parametrize("target", ["process", "group"], ids=["sigint-vethtrace", "ctrl-c-group"])
def test_ctrl_c_of_ping_cleans_up(target):
    """Ctrl-C of a never-ending `vethtrace ping`: ping's status and summary, the vethtrace
    summary, no program left loaded, ping gone, and the namespace removed afterwards."""
    before = loaded_programs()
    with labmod.lab("two-ips-fixed", name=labmod.unique_name()) as built:
        run = Running(built.exec_cmd([sys.executable, "-m", "vethtrace", "ping", "-I", "veth0", "192.168.2.1"]))
        try:
            ids = _start_and_collect(run, r"icmp_seq=", "stdout")
            pings = children(run.pid)
            assert pings, "vethtrace ping has no ping child"
            t0 = time.monotonic()
            if target == "process":
                os.kill(run.pid, signal.SIGINT)
            else:  # what the terminal does: SIGINT to the whole foreground process group
                os.killpg(run.pid, signal.SIGINT)
            rc = run.wait(EXIT_TIMEOUT)
            took = time.monotonic() - t0
            assert rc is not None, f"still running {EXIT_TIMEOUT}s after SIGINT:\n{run.output()}"
            assert "Traceback" not in run.output(), run.output()
            assert rc == 0, f"exit status {rc}, want ping's (0: it got replies):\n{run.output()}"
            out = "\n".join(run.lines["stdout"])
            assert "ping statistics" in out, f"ping's own summary is missing:\n{out}"
            assert re.search(r"^--- vethtrace:", out, re.M), f"the vethtrace summary is missing:\n{out}"
            assert took < EXIT_TIMEOUT
            assert not [p for p in pings if pid_alive(p)], "ping still runs after vethtrace exited"
        finally:
            run.kill_all()
        _assert_released(ids, before, "Ctrl-C of vethtrace ping")
    assert built.name not in netns_names(), f"{built.name} still exists after the lab context exited"


@pytest.mark.live
@needs_root
@needs_bpftool
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_of_record_cleans_up(sig, tmp_path):
    """SIGINT/SIGTERM/SIGHUP of `vethtrace record`: exits 0, the recording is complete
    (footer) and replays, no program stays loaded."""
    before = loaded_programs()
    out = tmp_path / "rec.jsonl"
    run = Running([sys.executable, "-m", "vethtrace", "record", "-o", str(out)])
    try:
        ids = _start_and_collect(run, r"^vethtrace: recording", "stderr")
        os.kill(run.pid, sig)
        rc = run.wait(EXIT_TIMEOUT)
        assert rc is not None, f"still running {EXIT_TIMEOUT}s after {sig.name}:\n{run.output()}"
        assert "Traceback" not in run.output(), run.output()
        assert rc == 0, f"exit status {rc}:\n{run.output()}"
    finally:
        run.kill_all()
    _assert_released(ids, before, f"{sig.name} of vethtrace record")
    last = out.read_text().splitlines()[-1]
    assert json.loads(last).get("footer"), f"no footer: the recording was not closed ({last[:80]})"
    assert vethtrace("show", str(out)).returncode == 0


@pytest.mark.live
@needs_root
@needs_bpftool
def test_sigterm_of_record_with_command_cleans_up(tmp_path):
    """`vethtrace record -o F -- sleep 30`, then SIGTERM to vethtrace (kill PID, a service
    stop): it should stop promptly, release its probes and not leave the command running."""
    before = loaded_programs()
    out = tmp_path / "rec.jsonl"
    run = Running([sys.executable, "-m", "vethtrace", "record", "-o", str(out), "--", "sleep", "30"])
    try:
        ids = _start_and_collect(run, r"^vethtrace: recording", "stderr")
        deadline = time.monotonic() + 5
        while not children(run.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        kids = children(run.pid)
        assert kids, "the command did not start"
        os.kill(run.pid, signal.SIGTERM)
        rc = run.wait(EXIT_TIMEOUT)
        still = held_programs(run.pid) if rc is None else set()
        assert rc is not None, (f"vethtrace record is still running {EXIT_TIMEOUT}s after SIGTERM, holding "
                                f"{len(still)} BPF programs, waiting for its command (pids {sorted(kids)}) "
                                f"to exit by itself:\n{run.output()}")
        assert "Traceback" not in run.output(), run.output()
        assert not [k for k in kids if pid_alive(k)], "the recorded command was left running"
    finally:
        run.kill_all()
    _assert_released(ids, before, "SIGTERM of vethtrace record -- COMMAND")


def _kill_recorder(out: Path) -> tuple[set[int], dict[int, str]]:
    before = loaded_programs()
    run = Running([sys.executable, "-m", "vethtrace", "record", "-o", str(out)])
    try:
        ids = _start_and_collect(run, r"^vethtrace: recording", "stderr")
        os.kill(run.pid, signal.SIGKILL)
        assert run.wait(EXIT_TIMEOUT) == -signal.SIGKILL
    finally:
        run.kill_all()
    return ids, before


@pytest.mark.live
@needs_root
@needs_bpftool
def test_sigkill_of_record_releases_probes(tmp_path):
    """A crash cannot clean up; the kernel must, because every link is fd-based."""
    ids, before = _kill_recorder(tmp_path / "rec.jsonl")
    _assert_released(ids, before, "SIGKILL of vethtrace record")


@pytest.mark.live
@needs_root
def test_killed_recorder_leaves_a_readable_recording(tmp_path):
    """What a killed recorder leaves behind should be a (footer-less) recording that `show`
    reads, not an empty file: the header is written at start but sits in a buffer."""
    out = tmp_path / "rec.jsonl"
    _kill_recorder(out)
    r = vethtrace("show", str(out))
    assert b"Traceback" not in r.stderr, r.stderr.decode()
    assert r.returncode == 0, (f"{out} ({out.stat().st_size} bytes) is not readable after SIGKILL: "
                               f"{r.stderr.decode().strip()}")


@pytest.mark.live
@needs_root
@needs_bpftool
def test_ctrl_c_of_trace_cleans_up():
    before = loaded_programs()
    run = Running([sys.executable, "-m", "vethtrace", "trace"])
    try:
        ids = _start_and_collect(run, r"^vethtrace: tracing", "stderr")
        os.kill(run.pid, signal.SIGINT)
        rc = run.wait(EXIT_TIMEOUT)
        assert rc == 0, f"exit status {rc}:\n{run.output()}"
        assert "Traceback" not in run.output(), run.output()
        # the summary: a block, or one line when nothing was seen
        assert any(line.startswith(("--- vethtrace:", "vethtrace: no packets were traced"))
                   for line in run.lines["stdout"]), run.output()
    finally:
        run.kill_all()
    _assert_released(ids, before, "Ctrl-C of vethtrace trace")


@pytest.mark.live
@needs_root
@needs_ip
@needs_bpftool
@pytest.mark.parametrize("sig,target", [(signal.SIGINT, "group"), (signal.SIGINT, "process"),
                                        (signal.SIGTERM, "process")],
                         ids=["ctrl-c-group", "sigint-demo-only", "sigterm-demo-only"])
def test_signal_of_demo_cleans_up(sig, target):
    """`vethtrace demo` builds vethtrace-demo-<pid> and runs `vethtrace ping` in it.  Ctrl-C
    (the whole group), `kill -INT PID` or `kill PID` must remove the namespace and leave no
    process (vethtrace ping, ping) or probe behind."""
    before = loaded_programs()
    run = Running([sys.executable, "-m", "vethtrace", "demo"])
    ns = f"{labmod.PREFIX}demo-{run.pid}"
    try:
        run.wait_for(r"icmp_seq=", timeout=15)
        members = {p: _cmdline(p) for p in _session_members(run.pid) if p != run.pid}
        ids = set().union(*(held_programs(p) for p in members)) if members else set()
        assert ns in netns_names()
        if target == "group":
            os.killpg(run.pid, sig)
        else:
            os.kill(run.pid, sig)
        rc = run.wait(EXIT_TIMEOUT)
        assert rc is not None, f"demo still running {EXIT_TIMEOUT}s after {sig.name}:\n{run.output()}"
        time.sleep(0.5)
        left_ns = ns in netns_names()
        left_procs = {p: c for p, c in members.items() if pid_alive(p)}
        assert not left_ns, f"after {sig.name} (exit status {rc}) the demo left namespace {ns} behind"
        assert not left_procs, f"after {sig.name} (exit status {rc}) the demo left processes running: {left_procs}"
    finally:
        run.kill_all()
        for p in _session_members(run.pid):  # our own session, by id
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if ns in netns_names():  # created by our child; remove it so the machine stays clean
            subprocess.run(["ip", "netns", "del", ns], check=False)
    _assert_released(ids, before, f"{sig.name} of vethtrace demo")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
