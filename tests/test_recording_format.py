"""Recording formats: format 2 (events as rows) is what vethtrace writes; format 1 (events
as objects) is what the frozen fixtures in tests/compat/format1 were recorded in and must
still replay the same.  Damage in a format 2 file is reported with its line number, also past the first
chunk the reader parses in one go.  No root needed."""
from __future__ import annotations

import json

import pytest

from conftest import COMPAT1, TRACES
from vethtrace.tracer import events, packet, recording
from vethtrace.tracer.correlate import Correlator
from vethtrace.tracer.events import FIELDS, FIB_TYPES, Event, _valid, _valid_fib, from_rows
from vethtrace.ui.text import Style, conversation_lines, summary_lines

TRACE_NAMES = sorted(p.stem for p in COMPAT1.glob("*.jsonl"))


def shown(rec) -> list[str]:
    """What `vethtrace show` prints for a recording, without colour."""
    corr = Correlator(rec.context)
    corr.feed(rec.events)
    style = Style(colour=False)
    out = []
    for conv in corr.conversations:
        out.append(f"[{conv.id}] {conv.title}")
        out += conversation_lines(conv, corr, style)
    return out + summary_lines(corr, style, rec.lost)


def rewrite(rec, path) -> None:
    recording.write_file(str(path), recording.header(rec.context, rec.header["mechanism"], rec.header["command"]),
                         rec.events, rec.lost or 0)


@pytest.mark.parametrize("name", TRACE_NAMES)
def test_format1_trace_rewritten_as_format2_replays_the_same(name, tmp_path):
    old = recording.read(str(COMPAT1 / f"{name}.jsonl"))
    assert old.header["version"] == 1
    path = tmp_path / "v2.jsonl"
    rewrite(old, path)
    events.clear_caches()  # the second read must not lean on packets parsed by the first
    new = recording.read(str(path))
    assert new.header["version"] == recording.VERSION == 2
    assert new.header["fields"] == list(FIELDS)
    assert [e.to_json() for e in new.events] == [e.to_json() for e in old.events]
    assert new.lost == old.lost
    assert shown(new) == shown(old)
    lines = path.read_bytes().splitlines()
    rows = [json.loads(line) for line in lines[1:-1]]
    assert rows and all(isinstance(r, list) and len(r) == len(FIELDS) for r in rows)
    assert json.loads(lines[-1]) == {"footer": True, "events": len(rows), "lost": old.lost or 0}


def test_row_columns_are_named_by_the_header():
    rec = recording.read(str(TRACES / "exp2.jsonl"))
    e = next(e for e in rec.events if e.kind == "xmit")
    row = dict(zip(FIELDS, e.to_row()))
    assert row["kind"] == "xmit" and row["dev"] == "veth0" and row["skb"] == f"{e.skb:x}"
    assert row["summary"] == e.pkt.summary() and bytes.fromhex(row["data"]) == e.data
    back = from_rows([e.to_row()])[0]
    assert back.to_json() == e.to_json()


def test_from_json_and_from_rows_agree_on_every_recorded_event():
    for name in TRACE_NAMES:
        for e in recording.read(str(TRACES / f"{name}.jsonl")).events:
            a, b = Event.from_json(json.loads(json.dumps(e.to_json()))), from_rows([json.loads(json.dumps(e.to_row()))])[0]
            assert a.to_json() == b.to_json() == e.to_json()


def _big(tmp_path, n: int):
    """A format 2 recording of n events: exp2's events repeated, shifted in time."""
    rec = recording.read(str(TRACES / "exp2.jsonl"))
    rows, span = [], rec.events[-1].ts - rec.events[0].ts + 1
    while len(rows) < n:
        shift = span * (len(rows) // len(rec.events))
        for e in rec.events[: n - len(rows)]:
            row = e.to_row()
            row[0] += shift
            rows.append(row)
    head = recording.header(rec.context, "tp_btf")
    return head, rows


def _write(path, head, rows, footer=True, extra=()):
    lines = [json.dumps(head)] + [json.dumps(r) for r in rows] + list(extra)
    if footer:
        lines.append(json.dumps({"footer": True, "events": len(rows), "lost": 3}))
    path.write_text("\n".join(lines) + "\n")


def test_many_chunks_read_whole(tmp_path):
    n = recording.CHUNK * 2 + 17
    head, rows = _big(tmp_path, n)
    path = tmp_path / "big.jsonl"
    _write(path, head, rows)
    rec = recording.read(str(path))
    assert len(rec.events) == n and rec.lost == 3
    assert [e.ts for e in rec.events] == [r[0] for r in rows]
    _write(path, head, rows, footer=False)  # killed recorder: no footer
    assert recording.read(str(path)).lost is None


@pytest.mark.parametrize("damage, column, value", [
    ("wrong type", 0, "soon"),
    ("unknown kind", 1, "teleport"),
    ("bad hex", 16, "zz"),
    ("fib not an object", 19, [1]),
    ("neigh missing fields", 20, {"addr": "192.168.2.1"}),
    ("too short", None, None),
])
def test_damaged_row_past_the_first_chunk_names_its_line(tmp_path, damage, column, value):
    head, rows = _big(tmp_path, recording.CHUNK + 100)
    bad = recording.CHUNK + 42  # 0-based row index; line number = index + 2 (header is line 1)
    if column is None:
        rows[bad] = rows[bad][:5]
    else:
        if column in (19, 20):  # give the damage to a row of the right kind
            kind = "fib" if column == 19 else "neigh_update"
            bad = next(i for i in range(bad, len(rows)) if rows[i][1].startswith(kind[:5]))
        rows[bad][column] = value
    path = tmp_path / "damaged.jsonl"
    _write(path, head, rows)
    with pytest.raises(recording.RecordingError, match=rf"line {bad + 2} is not a valid event"):
        recording.read(str(path))


def test_blank_lines_and_an_object_event_in_a_format2_file(tmp_path):
    head, rows = _big(tmp_path, 50)
    path = tmp_path / "blank.jsonl"
    lines = [json.dumps(head)] + [json.dumps(r) for r in rows[:10]] + [""] + [json.dumps(r) for r in rows[10:]]
    path.write_text("\n".join(lines) + "\n")
    assert len(recording.read(str(path)).events) == 50  # blank lines are skipped
    obj = Event.from_json(json.loads(json.dumps(from_rows([rows[3]])[0].to_json()))).to_json()
    _write(path, head, rows, extra=[json.dumps(obj)])
    with pytest.raises(recording.RecordingError, match=r"line 52 .*not a JSON array"):
        recording.read(str(path))


def test_format2_header_must_name_its_columns(tmp_path):
    head, rows = _big(tmp_path, 5)
    head["fields"] = list(reversed(FIELDS))
    path = tmp_path / "fields.jsonl"
    _write(path, head, rows)
    with pytest.raises(recording.RecordingError, match=r"damaged header \(fields"):
        recording.read(str(path))


def test_l2_and_l3_copies_of_a_packet_share_one_parse():
    """The probes copy a packet from its Ethernet header at the devices and from its IP
    header at the frees; both copies must become the same Packet."""
    rec = recording.read(str(TRACES / "exp2.jsonl"))
    req = next(e for e in rec.events if e.kind == "xmit" and e.pkt.l3 == "IPv4")
    later = [e for e in rec.events if e.data and not e.l2 and e.pkt.identity == req.pkt.identity]
    assert later, "exp2 has no L3 copy of its first echo request"
    packet.clear_caches()
    a = packet.cached(req.data, req.protocol, True)
    b = packet.cached(later[0].data, later[0].protocol, False)
    assert a is b and a.summary() == req.pkt.summary()
    # parse looks at no more than L3_PARSED bytes of the network header
    assert packet.parse(req.data + b"x" * 200, req.protocol, True).summary() == a.summary()


def test_fast_fib_check_agrees_with_the_general_one():
    good = {"src": "0.0.0.0", "dst": "192.168.2.1", "iif": 1, "oif": 3, "proto": 1}
    cases = [good, {**good, "iif": "1"}, {k: v for k, v in good.items() if k != "proto"}, {}, [], None,
             {**good, "extra": 1}, {"dst": "1.2.3.4", **{k: v for k, v in good.items() if k != "dst"}}]
    for d in cases:
        assert _valid_fib(d) == _valid(d, FIB_TYPES), d


def test_show_json_names_every_event_with_its_journey_and_conversation(tmp_path):
    """`vethtrace show FILE --json`: the rows as objects, for jq, placed like `show` places them."""
    import subprocess
    import sys

    from conftest import ROOT
    old = recording.read(str(TRACES / "exp2.jsonl"))
    path = tmp_path / "v2.jsonl"
    rewrite(old, path)
    res = subprocess.run([sys.executable, "-m", "vethtrace", "show", "--json", str(path)], capture_output=True,
                         cwd=ROOT, check=True)
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [Event.from_json(o).to_json() for o in objs] == [e.to_json() for e in old.events]
    corr = Correlator(old.context)
    corr.feed(old.events)
    by_journey = {}
    for o in objs:
        if o["journey"] is not None:
            by_journey.setdefault(o["journey"], []).append(o["ts"])
    assert by_journey == {j.id: [e.ts for e in j.events] for j in corr.journeys}
    conv_of = {j.id: j.conversation.id for j in corr.journeys}
    assert all(o["conversation"] == conv_of[o["journey"]] for o in objs if o["journey"] is not None)
    assert {o["kind"] for o in objs if o["journey"] is None} <= {"fib", "neigh_create", "neigh_update"}


@pytest.mark.parametrize("where", ["last line of a chunk", "first line of the next"])
def test_damage_at_a_chunk_boundary_names_its_line(tmp_path, where):
    """The reader sets aside a chunk's last line when it starts with "{" (the footer, most
    likely): an object or a truncated row there is still reported with its own line."""
    head, rows = _big(tmp_path, recording.CHUNK + 50)
    lines = [json.dumps(head)] + [json.dumps(r) for r in rows]
    bad = recording.CHUNK if where == "last line of a chunk" else recording.CHUNK + 1  # line numbers
    lines[bad - 1] = '{"ts": 1, "kind": "xmit"}' if where == "last line of a chunk" else lines[bad - 1][:30]
    path = tmp_path / "boundary.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(recording.RecordingError, match=rf"line {bad} is not a valid event"):
        recording.read(str(path))


@pytest.mark.parametrize("footer, words", [('{"footer": true, "lost": "many"}', r"footer's lost"),
                                           ('{"footer": true, "lo', r"damaged")])
def test_damaged_footer_names_its_line(tmp_path, footer, words):
    head, rows = _big(tmp_path, recording.CHUNK - 1)  # the footer is the chunk's last line
    path = tmp_path / "footer.jsonl"
    path.write_text("\n".join([json.dumps(head)] + [json.dumps(r) for r in rows] + [footer]) + "\n")
    with pytest.raises(recording.RecordingError, match=rf"line {len(rows) + 2} .*{words}"):
        recording.read(str(path))


@pytest.mark.parametrize("kind, column", [("fib", 19), ("neigh_update", 20)])
def test_route_or_neighbour_row_without_its_object_is_damage(tmp_path, kind, column):
    """null is the usual value of the fib and neigh columns, except on their own kinds."""
    head, rows = _big(tmp_path, 200)
    bad = next(i for i, r in enumerate(rows) if r[1] == kind)
    rows[bad][column] = None
    path = tmp_path / "null.jsonl"
    _write(path, head, rows)
    with pytest.raises(recording.RecordingError, match=rf"line {bad + 2} is not a valid event"):
        recording.read(str(path))


# -- the reader's two stages in two processes (recording.Reader, _forked) -------------------
def _no_children() -> bool:
    import os
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_forked_and_inline_readers_give_the_same_events(tmp_path, monkeypatch):
    head, rows = _big(tmp_path, recording.CHUNK * 3 + 5)
    path = tmp_path / "big.jsonl"
    _write(path, head, rows)
    assert path.stat().st_size >= recording.FORK_MIN_BYTES
    reader = recording.Reader(str(path))
    assert recording._fork_worthwhile(reader._f, reader.version)  # this test is about the fork
    reader.close()
    forked = recording.read(str(path))
    assert _no_children()
    monkeypatch.setenv("VETHTRACE_READER", "inline")
    inline = recording.read(str(path))
    assert len(forked.events) == len(inline.events) == len(rows)
    assert [e.to_json() for e in forked.events] == [e.to_json() for e in inline.events]
    assert forked.lost == inline.lost == 3
    # packets are shared the same way: one Packet per packet, however many copies
    assert len({id(e.pkt) for e in forked.events}) == len({id(e.pkt) for e in inline.events})


def test_forked_reader_reports_damage_and_leaves_no_process(tmp_path):
    head, rows = _big(tmp_path, recording.CHUNK * 2 + 5)
    rows[recording.CHUNK + 7][0] = "soon"
    path = tmp_path / "damaged-big.jsonl"
    _write(path, head, rows)
    with pytest.raises(recording.RecordingError, match=rf"line {recording.CHUNK + 9} is not a valid event"):
        recording.read(str(path))
    assert _no_children()


def test_stopping_early_stops_the_reading_process(tmp_path):
    head, rows = _big(tmp_path, recording.CHUNK * 4)
    path = tmp_path / "big.jsonl"
    _write(path, head, rows)
    reader = recording.Reader(str(path))
    chunks = reader.chunks()
    assert len(next(chunks)) > 0
    chunks.close()  # what an exception or Ctrl-C in the consumer does
    assert _no_children() and reader._f.closed


def test_show_reads_a_big_recording_from_a_pipe_like_from_the_file(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT
    head, rows = _big(tmp_path, recording.CHUNK + 5)
    path = tmp_path / "big.jsonl"
    _write(path, head, rows)
    cmd = [sys.executable, "-m", "vethtrace", "show"]
    from_file = subprocess.run([*cmd, str(path)], capture_output=True, cwd=ROOT, check=True).stdout
    piped = subprocess.run([*cmd, "-"], input=path.read_bytes(), capture_output=True, cwd=ROOT, check=True).stdout
    assert piped == from_file and b"--- vethtrace:" in piped


def test_ctrl_c_while_a_child_reads_leaves_no_process(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT
    head, rows = _big(tmp_path, recording.CHUNK * 12)
    path = tmp_path / "ctrl-c-big.jsonl"
    _write(path, head, rows)
    proc = subprocess.Popen([sys.executable, "-m", "vethtrace", "show", str(path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    children = []
    while not children and time.monotonic() < deadline and proc.poll() is None:
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        children = [int(x) for x in out.split()]
    assert children, "the reader never forked (is a second CPU available?)"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and b"Traceback" not in err, err
    time.sleep(0.1)
    left = subprocess.run(["pgrep", "-f", str(path)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes still reading {path}: {left}"


def test_an_ignored_sigchld_does_not_break_a_forked_read(tmp_path):
    """A supervisor may start vethtrace with SIGCHLD ignored: the kernel then reaps the
    child itself, and the reader must not trip over it."""
    import signal
    head, rows = _big(tmp_path, recording.CHUNK + 5)
    path = tmp_path / "big.jsonl"
    _write(path, head, rows)
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert len(recording.read(str(path)).events) == len(rows)
    finally:
        signal.signal(signal.SIGCHLD, old)


def test_no_process_to_spare_means_reading_in_this_one(tmp_path, monkeypatch):
    import errno
    import os

    def no_fork():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    head, rows = _big(tmp_path, recording.CHUNK + 5)
    path = tmp_path / "big.jsonl"
    _write(path, head, rows)
    fds = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", no_fork)
    assert len(recording.read(str(path)).events) == len(rows)
    assert len(os.listdir("/proc/self/fd")) == fds  # the pipe was closed again


# -- one column table (events.COLUMNS) drives writing, reading, checking and the schema --------
def _good_row():
    rec = recording.read(str(TRACES / "exp2.jsonl"))
    return next(e for e in rec.events if e.kind == "xmit").to_row()


@pytest.mark.parametrize("col", [c for c in events.COLUMNS if c.form == "int"], ids=lambda c: c.name)
def test_every_integer_column_is_range_checked(col):
    i = FIELDS.index(col.name)
    for bad in (col.lo - 1, col.hi + 1, str(col.lo)):
        row = _good_row()
        row[i] = bad
        with pytest.raises(TypeError):
            events.RowDecoder().prepare([row])
    row = _good_row()
    row[i] = col.hi
    events.RowDecoder().prepare([row])  # the bounds themselves are fine


def test_schema_columns_are_the_table():
    from vethtrace.tracer.schema import SCHEMA
    cols = SCHEMA["$defs"]["event_row"]["prefixItems"]
    assert [c["title"] for c in cols] == list(FIELDS) == [c.name for c in events.COLUMNS]
    ts = SCHEMA["$defs"]["event"]["properties"]["ts"]
    assert ts["minimum"] == 0 and ts["maximum"] == 2**63 - 1
    assert SCHEMA["$defs"]["event"]["properties"]["protocol"]["maximum"] == 65535


def test_rows_written_are_rows_read():
    row = _good_row()
    e = from_rows([row])[0]
    assert e.to_row() == row and len(row) == len(events.COLUMNS)
