"""Issue 11, tried as an attacker and as an unlucky user would: vethtrace runs as root, so
what it writes cannot be redirected, what it reads cannot crash it or reach a terminal or
graphviz raw, and what it starts dies with it.

Attacks are planted by an unprivileged user (nobody, through `setpriv`) in a directory
that user can write, as a local attacker would; the victim is a root-owned file elsewhere.
Live tests (marked `live`) load probes or build namespaces: run them under the flock.
"""
from __future__ import annotations

import json
import os
import pty
import re
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, TRACES, is_root, needs_root
from test_cli_errors import (GOOD_RECORDING, _env, assert_one_line_error, children, needs_bpftool, needs_ip,
                             out_lines, shared_dir, unprivileged, vethtrace)  # noqa: F401 - shared_dir is a fixture

from vethtrace.tracer import lab as labmod
from vethtrace.tracer import loader, owner, recording, safefile
from vethtrace.tracer.lab import pid_alive

TRACE = TRACES / "exp2.jsonl"
PRECIOUS = b"precious: must not be overwritten\n"


# -- helpers ----------------------------------------------------------------------------------
@pytest.fixture
def victim(tmp_path):
    """A root-owned file in a private directory: what an attacker's symlink points at."""
    v = tmp_path / "private" / "victim"
    v.parent.mkdir()
    v.write_bytes(PRECIOUS)
    return v


def as_nobody(*argv: str) -> None:
    prefix, _ = unprivileged()
    subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=20)


def plant_symlinks(links: list[Path], target: Path) -> None:
    """Symlinks made by the unprivileged user (one process for all of them)."""
    script = "".join(f"ln -s '{target}' '{link}'\n" for link in links)
    as_nobody("sh", "-c", script)
    for link in links:
        assert link.is_symlink() and link.lstat().st_uid != os.geteuid()


def recording_with(tmp_path: Path, name: str = "crafted.jsonl", head=None, rows=None, base: Path = TRACE) -> Path:
    """A copy of a recorded trace with header fields and event rows changed."""
    lines = base.read_text().splitlines()
    header = json.loads(lines[0])
    header.update(head or {})
    body = [json.loads(x) for x in lines[1:]]
    for i, changes in (rows or {}).items():
        for col, value in changes.items():  # the traces are format 1 (objects); format 2 rows too
            body[i][col if isinstance(body[i], dict) else recording.FIELDS.index(col)] = value
    path = tmp_path / name
    path.write_text("\n".join([json.dumps(header), *(json.dumps(r) for r in body)]) + "\n")
    return path


needs_root_attack = pytest.mark.skipif(not is_root(), reason="the attack is on root: needs root to run")


# -- 1. no code from the working directory ----------------------------------------------------
PLANT = "import os; open(os.path.join(os.path.dirname(__file__), '..', 'PWNED'), 'w').write('ran as %d' % os.geteuid())\n"


@pytest.mark.live
@needs_root
@needs_ip
@pytest.mark.parametrize("pythonpath", [None, ":"], ids=["plain", "empty-pythonpath-entry"])
def test_demo_child_does_not_import_from_cwd(pythonpath, shared_dir):
    """`vethtrace demo` run from a directory where another user planted vethtrace/ and
    tracer/ packages (with __main__): neither the demo nor its `vethtrace ping` child runs
    them, also when PYTHONPATH has an empty entry (which means the working directory; the
    demo itself then runs isolated, `python -I`, as the child must)."""
    script = Path(sys.executable).with_name("vethtrace")
    if not script.exists():
        pytest.skip("vethtrace is not installed in this environment (./scripts/setup)")
    plant = "".join(f"mkdir -p {shared_dir}/{pkg}/cli; printf %s \"$PLANT\" > {shared_dir}/{pkg}/{f}\n"
                    for pkg in ("vethtrace", "tracer") for f in ("__init__.py", "__main__.py", "cli/__init__.py"))
    prefix, _ = unprivileged()
    subprocess.run([*prefix, "env", f"PLANT={PLANT}", "sh", "-c", plant], check=True, timeout=20)
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}
    outer = [str(script)]
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
        outer = [sys.executable, "-I", str(script)]
    r = subprocess.run([*outer, "demo"], cwd=shared_dir, env=env, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert not (shared_dir / "PWNED").exists(), f"planted code ran: {(shared_dir / 'PWNED').read_text()}"
    assert r.returncode == 0, r.stderr.decode()
    assert b"icmp_seq=" in r.stdout


def test_child_command_is_isolated():
    """What `demo` execs: this interpreter with -I (no cwd, no PYTHONPATH), never a bare -m."""
    from vethtrace.cli.common import child_command
    cmd = child_command()
    assert cmd[0] == sys.executable and "-I" in cmd, cmd


# -- 2. no symlink or predictable name is followed -----------------------------------------------
@needs_root_attack
def test_render_dot_refuses_planted_symlink(shared_dir, victim):
    out = shared_dir / "flow.dot"
    plant_symlinks([out], victim)
    r = vethtrace("render", str(TRACE), "-o", str(out))
    assert_one_line_error(r, r"symbolic link")
    assert victim.read_bytes() == PRECIOUS and out.is_symlink()


@needs_root_attack
def test_export_refuses_planted_symlink(shared_dir, victim):
    out = shared_dir / "out.pcapng"
    plant_symlinks([out], victim)
    assert_one_line_error(vethtrace("export", str(TRACE), "--pcapng", str(out)), r"symbolic link")
    assert victim.read_bytes() == PRECIOUS


@needs_root_attack
def test_render_svg_temporary_name_is_not_predictable(shared_dir, victim):
    """The temporary file beside OUT.svg: symlinks planted at OUT.svg.tmp<pid> for the next
    pids are never followed; the diagram is a regular file."""
    out = shared_dir / "flow.svg"
    last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    plant_symlinks([shared_dir / f"flow.svg.tmp{p}" for p in range(last + 1, last + 400)], victim)
    r = vethtrace("render", str(TRACE), "-o", str(out))
    assert r.returncode == 0, r.stderr.decode()
    assert victim.read_bytes() == PRECIOUS
    assert stat.S_ISREG(out.lstat().st_mode) and out.read_bytes().startswith(b"<?xml")


@needs_root_attack
def test_write_file_temporary_name_is_not_predictable(shared_dir, victim):
    """recording.write_file (the TUI's `s`, `ping --record`): a symlink at the old
    temporary name (<name>.tmp<pid>) is not followed, one at the name itself is refused."""
    rec = recording.read(str(TRACE))
    path = shared_dir / "saved.jsonl"
    plant_symlinks([shared_dir / f"saved.jsonl.tmp{os.getpid()}"], victim)
    head = recording.header(rec.context, "tp_btf", ["ping"])
    recording.write_file(str(path), head, rec.events, 0)
    assert victim.read_bytes() == PRECIOUS
    assert len(recording.read(str(path)).events) == len(rec.events)
    link = shared_dir / "link.jsonl"
    plant_symlinks([link], victim)
    with pytest.raises(safefile.OutputError, match="symbolic link"):
        recording.write_file(str(link), head, rec.events, 0)
    assert victim.read_bytes() == PRECIOUS
    assert sorted(p.name for p in shared_dir.iterdir() if not p.is_symlink()) == ["saved.jsonl"]


@needs_root_attack
def test_fentry_memo_not_written_in_a_shared_directory(shared_dir, victim, monkeypatch, tmp_path):
    """The fentry memo's directory must be root's own: in a directory others can write (where
    the old predictable .fentry-refused.<pid> could be planted) nothing is written."""
    import errno
    boot = tmp_path / "boot_id"
    boot.write_text("1111\n")
    obj = tmp_path / "probes.o"
    obj.write_bytes(b"object")
    monkeypatch.setattr(loader, "BOOT_ID", boot)
    monkeypatch.setattr(loader, "FENTRY_MEMO", shared_dir / "fentry-refused")
    plant_symlinks([shared_dir / f".fentry-refused.{os.getpid()}"], victim)
    loader.remember_fentry_refusal(obj, OSError(errno.EPERM, "refused"))
    assert victim.read_bytes() == PRECIOUS
    assert not (shared_dir / "fentry-refused").exists()


def test_symlink_of_our_own_is_followed(tmp_path):
    """The documented exception: a symlink that belongs to the user running vethtrace (or
    root) is followed, and its target replaced, not the link."""
    target = tmp_path / "real.dot"
    link = tmp_path / "link.dot"
    link.symlink_to(target)
    r = vethtrace("render", str(TRACE), "-o", str(link))
    assert r.returncode == 0, r.stderr.decode()
    assert link.is_symlink() and target.read_text().startswith("digraph")


@pytest.mark.live
@needs_root
def test_record_refuses_planted_symlink(shared_dir, victim):
    out = shared_dir / "rec.jsonl"
    plant_symlinks([out], victim)
    assert_one_line_error(vethtrace("record", "-o", str(out), "-d", "0.2"), r"symbolic link")
    assert victim.read_bytes() == PRECIOUS


# -- 3. the output node is written into, not replaced --------------------------------------------
@needs_root_attack
def test_render_writes_into_devices_and_fifos(tmp_path):
    null = tmp_path / "null.svg"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    full = tmp_path / "full.svg"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    fifo = tmp_path / "pipe.svg"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = vethtrace("render", str(TRACE), "-o", str(fifo))
    reader.join(10)
    assert r.returncode == 0, r.stderr.decode()
    assert got and got[0].startswith(b"<?xml") and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert vethtrace("render", str(TRACE), "-o", str(null)).returncode == 0
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert_one_line_error(vethtrace("render", str(TRACE), "-o", str(full)), r"no space")
    assert stat.S_ISCHR(full.lstat().st_mode), "a device was replaced by a regular file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.svg", "null.svg", "pipe.svg"]


# -- 4. write errors: one line, exit 2, nothing left ----------------------------------------------
@pytest.mark.parametrize("case", ["missing-dir", "directory", "unknown-suffix"])
def test_render_write_errors(case, tmp_path):
    out = {"missing-dir": tmp_path / "nodir" / "x.svg", "directory": tmp_path,
           "unknown-suffix": tmp_path / "x.svgz"}[case]
    before = sorted(tmp_path.iterdir())
    words = {"missing-dir": [r"no such directory"], "directory": [r"directory"], "unknown-suffix": [r"suffix"]}[case]
    assert_one_line_error(vethtrace("render", str(TRACE), "-o", str(out)), *words)
    assert sorted(tmp_path.iterdir()) == before


def test_render_unwritable_directory(shared_dir, tmp_path):
    """As an unprivileged user into a directory that user cannot write."""
    prefix, py = unprivileged()
    closed = shared_dir / "closed"
    closed.mkdir(mode=0o755)
    rec = shared_dir / "rec.jsonl"
    rec.write_bytes(TRACE.read_bytes())
    rec.chmod(0o644)
    r = vethtrace("render", str(rec), "-o", str(closed / "x.svg"), prefix=prefix, python=py)
    assert_one_line_error(r, r"permission denied")
    assert not list(closed.iterdir())


@needs_root
@pytest.mark.parametrize("command", ["render", "export"])
def test_full_filesystem_leaves_nothing(command, tmp_path):
    """ENOSPC on an 8 KiB tmpfs mounted in a private mount namespace (unshare -m: the
    host's mounts are untouched): one line, exit 2, and no temporary file left."""
    if subprocess.run(["which", "unshare"], capture_output=True).returncode:
        pytest.skip("unshare (util-linux) not installed")
    big = recording_with(tmp_path, "big.jsonl", base=TRACES / "exp1.jsonl")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = mnt / ("x.svg" if command == "render" else "x.pcapng")
    argv = ["render", str(big), "-o", str(out)] if command == "render" else ["export", str(big), "--pcapng", str(out)]
    script = (f"mount -t tmpfs -o size=8k none {mnt} && {sys.executable} -m vethtrace {' '.join(argv)}; "
              f"rc=$?; ls -A {mnt} >&3; exit $rc")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", f"exec 3>{tmp_path}/ls; {script}"],
                       cwd=ROOT, env=_env(), capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    if b"mount:" in r.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    assert_one_line_error(r, r"no space")
    assert (tmp_path / "ls").read_text() == "", f"left in the full filesystem: {(tmp_path / 'ls').read_text()}"


@pytest.mark.live
@needs_root
def test_record_nosuchcmd_one_line_no_file(tmp_path):
    out = tmp_path / "rec.jsonl"
    assert_one_line_error(vethtrace("record", "-o", str(out), "--", "nosuchcmd-vethtrace"), r"not found")
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.live
@needs_root
def test_record_to_a_full_device_one_line(tmp_path):
    full = tmp_path / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    assert_one_line_error(vethtrace("record", "-o", str(full), "-d", "0.2"), r"no space")
    assert stat.S_ISCHR(full.lstat().st_mode)


@pytest.mark.live
@needs_root
@needs_ip
def test_record_on_a_full_filesystem_keeps_a_valid_prefix(tmp_path):
    """`record -o` onto a 64 KiB tmpfs (private mount namespace) while ping floods a lab:
    one line saying the recording stopped and what it keeps; the file replays (exit 0,
    with the cut-short/no-footer warning)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = mnt / "rec.jsonl"
    copy = tmp_path / "copy.jsonl"
    with labmod.lab("two-ips-fixed", name=labmod.unique_name()) as built:
        inner = " ".join(built.exec_cmd([sys.executable, "-m", "vethtrace", "record", "-o", str(out), "--",
                                         "ping", "-c", "400", "-i", "0.002", "-I", "veth0", "192.168.2.1"]))
        script = f"mount -t tmpfs -o size=64k none {mnt} && {inner}; rc=$?; cp {out} {copy}; exit $rc"
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], cwd=ROOT,
                           env=_env(), capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    stdout, stderr = out_lines(r)
    errors = [x for x in stderr if x.startswith("vethtrace: cannot write")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr.decode(), stderr
    assert re.search(r"no space.*recording stopped.*keeps the \d+ events", errors[0], re.I), errors[0]
    shown = vethtrace("show", str(copy))
    assert shown.returncode == 0, shown.stderr.decode()
    assert len(out_lines(shown)[1]) == 1 and "unknown" in out_lines(shown)[1][0]


@pytest.mark.live
@needs_root
def test_record_to_stdout_keeps_the_command_output_out(tmp_path):
    r = vethtrace("record", "-o", "-", "--", "sh", "-c", "echo COMMAND-OUTPUT; echo COMMAND-ERR >&2")
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.splitlines()
    assert lines and all(json.loads(x) is not None for x in lines), lines[:3]
    assert b"COMMAND-OUTPUT" in r.stderr.splitlines(), "the command's output went nowhere"


# -- 5. a recording cut short is shown up to its last good line ------------------------------------
def _cut(data: bytes) -> tuple[bytes, int]:
    """`data` cut in the middle of its last-but-one line; (bytes, that line's number)."""
    lines = data.splitlines(keepends=True)
    keep = b"".join(lines[:-2])
    return keep + lines[-2][: len(lines[-2]) // 2], len(lines) - 1


@pytest.mark.parametrize("reader", ["inline", "forked"])
def test_cut_recording_is_shown_with_one_warning(reader, tmp_path):
    """Both ways recording.Reader parses (in this process, or a forked child for files of
    1 MiB or more) keep the good lines and say where the file was cut."""
    lines = TRACE.read_bytes().splitlines(keepends=True)
    body = lines[1:-1] * (1 if reader == "inline" else (2 << 20) // sum(map(len, lines[1:-1])) + 1)
    data, cut_line = _cut(lines[0] + b"".join(body) + lines[-1])
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data)
    env = _env(**({"VETHTRACE_READER": "inline"} if reader == "inline" else {}))
    r = vethtrace("show", str(path), env=env)
    stdout, stderr = out_lines(r)
    assert r.returncode == 0, stderr
    assert len(stderr) == 1 and f"line {cut_line}" in stderr[0] and "unknown" in stderr[0], stderr
    assert f"showing the {cut_line - 2} events" in stderr[0]
    assert any(x.startswith("--- vethtrace:") for x in stdout)


def test_recording_without_footer_warns(tmp_path):
    path = tmp_path / "nofooter.jsonl"
    path.write_bytes(b"".join(TRACE.read_bytes().splitlines(keepends=True)[:-1]))
    r = vethtrace("show", str(path))
    stdout, stderr = out_lines(r)
    assert r.returncode == 0 and len(stderr) == 1 and "no footer" in stderr[0] and "unknown" in stderr[0], stderr


def test_damage_before_the_end_is_still_refused(tmp_path):
    """Only the last line may be cut: a broken line followed by others is damage."""
    lines = TRACE.read_bytes().splitlines(keepends=True)
    lines[5] = lines[5][:20] + b"\n"
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(b"".join(lines))
    assert_one_line_error(vethtrace("show", str(path)), r"line 6", r"damaged")


# -- 7. untrusted strings reach no terminal, DOT or HTML raw --------------------------------------
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m"


def _deliver_row() -> int:
    lines = TRACE.read_text().splitlines()
    return next(i for i, x in enumerate(lines[1:]) if _field(x, "kind") == "deliver")


def _field(line: str, name: str):
    e = json.loads(line)
    return e.get(name) if isinstance(e, dict) else e[recording.FIELDS.index(name)]


def test_show_escapes_terminal_controls(tmp_path):
    path = recording_with(tmp_path, head={"command": ["ping", ESCAPES], "mechanism": ESCAPES},
                          rows={_deliver_row(): {"comm": "evil" + ESCAPES, "dev": ESCAPES}})
    for args in (["show", str(path), "--events", "--devices"], ["render", str(path), "-o", str(tmp_path / "x.dot")]):
        r = vethtrace(*args)
        assert r.returncode == 0, r.stderr.decode()
        for stream in (r.stdout, r.stderr):
            assert b"\x1b" not in stream and "\x9b".encode() not in stream and b"\x07" not in stream, stream[:400]
    assert b"\\x1b]0;owned" in vethtrace("show", str(path)).stdout


@pytest.mark.parametrize("command", ['<b>bold</b>', 'back\\slash\\', 'nul\x00byte', '<<table>>', "x" * 100_000],
                         ids=["html", "backslash", "nul", "html-table", "100KB"])
def test_render_draws_hostile_commands(command, tmp_path):
    """A command that looks like HTML, holds backslashes or NUL, or is 100 KB long: the
    diagram is drawn (exit 0 and a file), the command shown as text."""
    path = recording_with(tmp_path, head={"command": [command]})
    out = tmp_path / "x.svg"
    r = vethtrace("render", str(path), "-o", str(out))
    assert r.returncode == 0 and "Traceback" not in r.stderr.decode(), r.stderr.decode()
    assert out.exists() and out.read_bytes().startswith(b"<?xml"), "render exited 0 having written nothing"


def test_render_dot_injection(tmp_path):
    """A command (the title) and an interface name crafted to close their DOT string and add
    a node: the node does not appear."""
    path = recording_with(tmp_path, head={"command": ["x\\"], "context": {
        **json.loads(TRACE.read_text().splitlines()[0])["context"], "name": '"]; injected [shape=box]; y ["'}})
    out = tmp_path / "x.dot"
    assert vethtrace("render", str(path), "-o", str(out)).returncode == 0
    r = subprocess.run(["dot", "-Tjson"], input=out.read_bytes(), capture_output=True, check=True)
    names = {o.get("name") for o in json.loads(r.stdout).get("objects", [])}
    assert "injected" not in names, names


def test_export_comments_escaped(tmp_path):
    path = recording_with(tmp_path, rows={_deliver_row(): {"comm": "evil" + ESCAPES}},
                          head={"command": [ESCAPES]})
    out = tmp_path / "x.pcapng"
    assert vethtrace("export", str(path), "--pcapng", str(out)).returncode == 0
    data = out.read_bytes()  # binary: look at the comment text
    assert b"evil\x1b" not in data and b"evil\\x1b]0;owned" in data


def test_live_names_escaped():
    """The kernel side: a process may name itself with escape sequences (PR_SET_NAME)."""
    from vethtrace.tracer import record
    assert record._cstr(b"\x1b[2Jping\0junk") == "\\x1b[2Jping"


def test_tui_status_is_not_markup(tmp_path):
    """The recording's mechanism is shown in the TUI's status bar as text, not markup (a
    stray closing tag would stop the app)."""
    import asyncio
    from vethtrace.tracer.sources import ReplaySource
    from vethtrace.ui.tui import build_app
    path = recording_with(tmp_path, head={"mechanism": "[/bogus] [red]x"})

    async def drive():
        app = build_app(ReplaySource(str(path)))
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(40):
                if app.caught_up:
                    break
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            return str(app.query_one("#st-probes").render())
    assert "[/bogus] [red]x" in asyncio.run(drive())


# -- 8. crashes found by fuzzing ------------------------------------------------------------------
def test_interface_without_name(tmp_path):
    ctx = json.loads(TRACE.read_text().splitlines()[0])["context"]
    for i in ctx["interfaces"]:
        i.pop("name", None)
    path = recording_with(tmp_path, head={"context": ctx})
    assert_one_line_error(vethtrace("show", str(path)), r"interface")


@pytest.mark.parametrize("col,value", [("ts", -2 ** 62), ("protocol", 65536), ("len", 2 ** 32)])
def test_out_of_range_numbers(col, value, tmp_path):
    lines = TRACE.read_text().splitlines()
    row = next(i for i, x in enumerate(lines[1:]) if _field(x, "data"))  # an event with packet bytes
    path = recording_with(tmp_path, rows={row: {col: value}})
    assert_one_line_error(vethtrace("export", str(path), "--pcapng", str(tmp_path / "x.pcapng")),
                          rf"line {row + 2}", r"range")
    assert not (tmp_path / "x.pcapng").exists()


# -- 9. memory stays bounded on huge lines ---------------------------------------------------------
def test_huge_line_is_refused_in_bounded_memory(tmp_path):
    """A 200 MB line of [1,1,...] after a good header: one line naming it, under a 1 GiB
    address-space limit (reading it whole took 2.9 GB)."""
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as f:
        f.write(TRACE.read_bytes().splitlines(keepends=True)[0])
        f.write(b"[" + b"1," * (100 << 20) + b"1]\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    r = subprocess.run([sys.executable, "-m", "vethtrace", "show", str(path)], cwd=ROOT, env=_env(),
                       capture_output=True, timeout=120, preexec_fn=limit, stdin=subprocess.DEVNULL)
    assert_one_line_error(r, r"line 2", r"longer than")


# -- 10. children die with vethtrace -----------------------------------------------------------------
def _wait_for_child(pid: int, name: str, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for kid in children(pid):
            try:
                if Path(f"/proc/{kid}/comm").read_text().strip() == name:
                    return kid
            except OSError:
                continue
        time.sleep(0.05)
    raise AssertionError(f"no {name} child of {pid} within {timeout}s")


def _gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.live
@needs_root
@needs_ip
@pytest.mark.parametrize("how", ["ping", "record", "tui"])
def test_sigkill_leaves_no_ping(how, tmp_path):
    """SIGKILL of `vethtrace ping`, `record -- ping` and `tui -- ping` (on a pty): the ping
    they started does not outlive them."""
    ping = ["ping", "-I", "veth0", "192.168.2.1"]
    argv = {"ping": ["ping", "-I", "veth0", "192.168.2.1"],
            "record": ["record", "-o", str(tmp_path / "rec.jsonl"), "--", *ping],
            "tui": ["tui", "--", *ping]}[how]
    with labmod.lab("two-ips-fixed", name=labmod.unique_name()) as built:
        master, slave = pty.openpty()
        proc = subprocess.Popen(built.exec_cmd([sys.executable, "-m", "vethtrace", *argv]), cwd=ROOT, env=_env(),
                                stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        drain = threading.Thread(target=lambda: _drain(master), daemon=True)
        drain.start()
        pinger = None
        try:
            pinger = _wait_for_child(proc.pid, "ping")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            assert _gone(pinger), f"ping {pinger} still runs after SIGKILL of vethtrace {how}"
        finally:
            if pinger is not None and pid_alive(pinger):
                os.kill(pinger, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


# -- 11. stale labs are judged in the owner's PID namespace ---------------------------------------------
@pytest.mark.live
@needs_root
@needs_ip
def test_cleanup_stale_leaves_labs_of_another_pid_namespace():
    """A lab owned by a live process of another PID namespace whose pid is not alive here:
    left alone (the pid check here proves nothing)."""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    target = next(p for p in range(pid_max - 10, 1000, -1) if not pid_alive(p))
    child = (f"echo {target - 1} > /proc/sys/kernel/ns_last_pid; {sys.executable} -c '"
             "import os, sys; from vethtrace.tracer import lab\n"
             "with lab.lab(\"one-ip\", name=f\"vethtrace-t{os.getpid()}-0\") as b:\n"
             "    print(b.name, flush=True); sys.stdin.readline()'")
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "sh", "-c", child], cwd=ROOT, env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        name = proc.stdout.readline().strip()
        assert name == f"vethtrace-t{target}-0", f"the other namespace's process got another pid: {name!r}"
        assert not pid_alive(target)
        removed = labmod.cleanup_stale()
        assert name not in removed and labmod.exists(name), "a live lab of another PID namespace was removed"
    finally:
        proc.communicate("\n", timeout=30)
    assert not labmod.exists(name)


@pytest.mark.live
@needs_root
@needs_ip
def test_cleanup_stale_removes_labs_whose_owner_is_gone():
    """A lab left by a process of this PID namespace that has exited: removed."""
    r = subprocess.run([sys.executable, "-c", "import os; from vethtrace.tracer import lab\n"
                        "print(lab.up('one-ip', name=lab.unique_name()).name)"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, check=True, timeout=30)
    name = r.stdout.strip()
    try:
        assert labmod.exists(name)
        assert name in labmod.cleanup_stale()
        assert not labmod.exists(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def test_owner_marker():
    tag = owner.tag()
    assert not owner.provably_gone(tag)  # this process
    assert not owner.provably_gone("no marker")
    pid, ns, start = re.search(r"owner=(\d+)/(\d+)/(\d+)", tag).groups()
    assert owner.provably_gone(f"owner={pid}/{ns}/{int(start) + 1}")  # the pid reused by another process
    assert not owner.provably_gone(f"owner={pid}/{int(ns) + 1}/{start}")  # another PID namespace


# -- 12. standard output, and no terminal ----------------------------------------------------------
def test_render_and_export_to_stdout(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vethtrace", "render", str(TRACE), "-o", "-"], cwd=tmp_path,
                       env=_env(), capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(b"<?xml"), r.stderr.decode()
    r = subprocess.run([sys.executable, "-m", "vethtrace", "export", str(TRACE), "--pcapng", "-"], cwd=tmp_path,
                       env=_env(), capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout[:4] == bytes.fromhex("0a0d0d0a"), r.stderr.decode()
    assert not (tmp_path / "-").exists()


def test_tui_file_without_terminal():
    assert_one_line_error(vethtrace("tui", str(TRACE), timeout=30), r"terminal")


def test_tui_export_does_not_import_from_cwd(shared_dir, monkeypatch):
    """The TUI's `e` loads the diagram module of this vethtrace, never a `ui/diagram.py`
    planted in the working directory (which `python -m` puts first on sys.path)."""
    import asyncio
    import shutil as _shutil
    from vethtrace.tracer.sources import ReplaySource
    from vethtrace.ui.tui import build_app
    if _shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed")
    plant = ("mkdir -p {d}/ui; : > {d}/ui/__init__.py; printf %s \"$PLANT\" > {d}/ui/diagram.py"
             .format(d=shared_dir))
    prefix, _ = unprivileged()
    subprocess.run([*prefix, "env", f"PLANT={PLANT}", "sh", "-c", plant], check=True, timeout=20)
    monkeypatch.chdir(shared_dir)
    monkeypatch.syspath_prepend(str(shared_dir))
    for name in ("ui", "ui.diagram"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    async def drive():
        app = build_app(ReplaySource(str(TRACE)))
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                if app.caught_up:
                    break
                await pilot.pause(0.05)
            await pilot.press("down", "e")
            await pilot.pause()
            await pilot.press("enter")  # `e` asks where, as `s` does: the default, in the working directory
            for _ in range(200):
                if any("diagram" in n.message for n in app._notifications):
                    break
                await pilot.pause(0.05)
            return [n.message for n in app._notifications]
    notes = asyncio.run(drive())
    assert not (shared_dir / "PWNED").exists(), "the planted ui/diagram.py ran"
    assert any("saved the diagram" in n for n in notes), notes


@pytest.mark.parametrize("option,value,words", [("--svg", "-", [r"standard output"]),
                                                ("--svg", "/nonexistent-dir/x.svg", [r"no such directory"]),
                                                ("--svg", "x.svgz", [r"suffix"]),
                                                ("--record", "/nonexistent-dir/x.jsonl", [r"no such directory"])],
                         ids=["svg-stdout", "svg-missing-dir", "svg-suffix", "record-missing-dir"])
def test_ping_outputs_checked_before_tracing(option, value, words):
    """`ping --svg/--record` names that cannot be written are refused before ping runs (and
    before the probes load), not after the whole ping.  Run unprivileged: whatever the code
    does, it stops before tracing (no root), so no packet is ever sent."""
    if subprocess.run(["which", "ping"], capture_output=True).returncode:
        pytest.skip("ping is not installed")
    prefix, py = unprivileged()
    assert_one_line_error(vethtrace("ping", option, value, "-c", "1", "192.168.2.1", prefix=prefix, python=py),
                          *words)


def test_tui_detail_is_not_markup(tmp_path):
    """A recorded kernel function name that looks like Rich markup (found by the fuzz
    test: '[/bogus]' stopped the detail pane) is drawn as text."""
    from rich.console import Console
    import io
    from vethtrace.tracer.correlate import Correlator
    from vethtrace.tracer.sources import ReplaySource
    from vethtrace.ui.tui import panes, rows
    lines = TRACE.read_text().splitlines()
    xmit = [i for i, x in enumerate(lines[1:]) if _field(x, "kind") == "xmit"]
    path = recording_with(tmp_path, rows={i: {"where": "[/bogus] [red]x"} for i in xmit})
    src = ReplaySource(str(path))
    corr = Correlator(src.context)
    corr.feed(src.poll(0))
    console = Console(width=160, file=io.StringIO(), color_system=None)
    for conv in corr.conversations:
        row = rows.Row(conv)
        row.update(corr, 0)
        console.print(panes.detail_renderable(row, corr))
    assert "[/bogus] [red]x" in console.file.getvalue()


def test_tui_filter_text_is_not_markup():
    """A filter typed with brackets ('[/x]') is shown in the list's title as typed; as
    markup it stopped the app."""
    import asyncio
    from vethtrace.tracer.sources import ReplaySource
    from vethtrace.ui.tui import build_app

    async def drive():
        app = build_app(ReplaySource(str(TRACE)))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("slash", *"[/x]", "enter")
            await pilot.pause(0.3)
            return app.query_one("#list-pane").border_title
    assert "[/x]" in asyncio.run(drive()).replace("\\[", "[")
