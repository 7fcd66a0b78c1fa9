"""Text output for people (issue 13, "Text output for people" and its trip-ups): counts in
words that agree with the number, lines wrapped to the terminal keeping their block's indent,
one `fix:` per group of packets, an ARP reply said to be processed (not answered), details
only under -v.  Root-free: recordings from tests/traces replayed through `vethtrace show` in
a subprocess (the witness for counts is the correlator's own journeys, counted here)."""
from __future__ import annotations

import os
from datetime import datetime, timezone
import re
import subprocess
import sys

import pytest

from conftest import ROOT, TRACES
from vethtrace.cli.ping import split_argv
from vethtrace.tracer.correlate import Correlator
from vethtrace.tracer.sources import replay
from vethtrace.tracer.verdict import verdict
from vethtrace.ui.ping import PingView
from vethtrace.ui.text import Style, summary_lines

WIDTH = 100
ALL = sorted(TRACES.glob("*.jsonl"))


def show(*args, columns: int | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    env["NO_COLOR"] = "1"
    if columns:
        env["COLUMNS"] = str(columns)
    r = subprocess.run([sys.executable, "-m", "vethtrace", "show", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return r.stdout


def correlated(name: str) -> Correlator:
    return replay(str(TRACES / name))[1]  # what `show` builds from the recording


def test_one_packet_is_singular_and_many_are_plural():
    corr = correlated("exp2.jsonl")
    plain = Style(colour=False)
    one = summary_lines(corr, plain, 0, journeys=corr.journeys[:1])[0]
    assert one == f"--- vethtrace: 1 packet, 1 distinct path, {corr.events} events, 0 lost ---"
    text = show(TRACES / "exp2.jsonl")
    assert f"--- vethtrace: {len(corr.journeys)} packets, 4 distinct paths, {corr.events} events, 0 lost ---" in text
    assert not re.search(r"\b1 (packets|paths|events)\b", text)


def test_nothing_traced_is_one_line_not_an_empty_block():
    # A filter matching none of the recording's packets: what `ping` sees when it fails before sending.
    text = show(TRACES / "exp2.jsonl", "tcp", "port", "9")
    assert "0 packets" not in text and "---" not in text
    assert text.splitlines()[-1] == "vethtrace: no packets were traced (0 events, 0 lost)"


def _unwrapped_lines_rebuilt(wrapped: list[str], whole: list[str]) -> None:
    """Each whole line is the wrapped line that starts it plus continuation lines, which all
    start at one indentation (the block's) and rejoin to the whole line at word boundaries."""
    k = 0
    for line in whole:
        head = wrapped[k]
        k += 1
        assert line.startswith(head.rstrip()), (head, line)
        pieces = [head]
        while " ".join(" ".join(pieces).split()) != " ".join(line.split()):
            cont = wrapped[k]
            k += 1
            indent = len(cont) - len(cont.lstrip(" "))
            lead = len(head) - len(head.lstrip(" "))
            assert indent >= 4 and (lead < 14 or indent == lead), (head, cont)  # journey rows keep theirs
            if len(pieces) > 1:
                assert indent == len(pieces[-1]) - len(pieces[-1].lstrip(" ")), (pieces, cont)
            pieces.append(cont)
            assert len(pieces) < 20, line
    assert k == len(wrapped)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_lines_are_wrapped_to_columns_keeping_the_block_indent(path):
    wrapped = show(path, columns=WIDTH).splitlines()
    whole = show(path).splitlines()
    assert all(len(line) <= WIDTH for line in wrapped), max(wrapped, key=len)
    _unwrapped_lines_rebuilt(wrapped, whole)


def test_long_lines_are_really_wrapped():
    whole = show(TRACES / "exp1.jsonl").splitlines()
    wrapped = show(TRACES / "exp1.jsonl", columns=WIDTH).splitlines()
    assert max(map(len, whole)) > 150 and len(wrapped) > len(whole)  # without COLUMNS a pipe gets whole lines


def test_a_fix_is_printed_once_for_the_packets_it_applies_to():
    corr = correlated("exp1.jsonl")
    advices = [verdict(j, corr).advice for j in corr.journeys if verdict(j, corr).advice]
    assert len(advices) == 5 and len(set(advices)) == 1  # 3 unanswered ARP requests, 2 echo requests dropped
    text = show(TRACES / "exp1.jsonl")
    fixes = [line for line in text.splitlines() if "fix" in line]
    assert len(fixes) == 2, fixes
    assert fixes[0].strip() == f"fix: {advices[0]}"  # under the first packet it applies to
    assert fixes[1] == f"fix (applies to 5 packets above): {advices[0]}"  # in the summary


def test_a_fix_met_once_is_not_repeated_in_the_summary():
    text = show(TRACES / "proto-udp-closed.jsonl")
    assert sum("fix" in line for line in text.splitlines()) == 1


def test_an_arp_reply_is_processed_not_answered():
    rows = [line for line in show(TRACES / "exp2.jsonl").splitlines() if re.match(r" +\d+x  ARP", line)]
    (reply,) = [r for r in rows if "ARP reply" in r]
    (request,) = [r for r in rows if "ARP request" in r]
    assert reply.endswith("✓ processed by arp_process") and "answered" not in reply
    assert request.endswith("✓ answered at arp_process")  # a request is answered (veth1 replied)


def test_jargon_only_under_verbose():
    plain = show(TRACES / "exp2.jsonl")
    verbose = show(TRACES / "exp2.jsonl", "-v")
    assert "NO_SOCKET" not in plain and "probes tp_btf" not in plain
    assert "delivered to ping (pid 31009), 84 bytes through its raw socket\n" in plain
    assert "(the original was freed at ping_rcv, NO_SOCKET: no ICMP datagram socket wanted it; normal)" in verbose
    assert "probes tp_btf" in verbose.splitlines()[0]
    # What users need stays: the verdicts and the fix.
    assert "fix: nobody can answer" in show(TRACES / "exp1.jsonl")


@pytest.mark.parametrize("sub", ["ping", "run", "show", "trace"])
def test_verbose_and_timestamps_are_options_of_each_text_subcommand(sub):
    r = subprocess.run([sys.executable, "-m", "vethtrace", sub, "--help"], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert r.returncode == 0 and "--verbose" in r.stdout and "--timestamps" in r.stdout


def test_ping_verbose_is_vethtraces_and_v_stays_pings():
    assert split_argv(["ping", "--verbose", "-v", "-c", "1", "10.0.0.1"]) == \
        ["ping", "--verbose", "--", "-v", "-c", "1", "10.0.0.1"]


def test_timestamps_give_each_packets_time_and_each_hops_latency():
    """-t: the witness is the recording itself (its wall-clock offset and each hop's probe
    timestamp), read here without the renderer."""
    rec, corr = replay(str(TRACES / "exp2.jsonl"))
    env_tz = dict(os.environ, TZ="UTC", NO_COLOR="1")
    env_tz.pop("COLUMNS", None)
    text = subprocess.run([sys.executable, "-m", "vethtrace", "show", "-t", str(TRACES / "exp2.jsonl")],
                          capture_output=True, text=True, cwd=ROOT, env=env_tz, timeout=60, check=True).stdout
    offset = rec.header["wall_offset_ns"]
    request = next(j for j in corr.journeys if j.role == "request")
    wall = datetime.fromtimestamp((request.start + offset) / 1e9, tz=timezone.utc)
    stamp = f"{wall:%H:%M:%S}.{(request.start + offset) % 10**9 // 1000:06d}"
    assert f"    request   {stamp} {request.summary}\n" in text
    h = request.hops
    us = [(b.ts - a.ts) / 1000 for a, b in zip(h, h[1:])]
    assert len(us) == 2 and all(0 <= u < 10 for u in us)  # veth0 > veth1 > icmp_rcv: µs apart
    assert f"              {h[0].name} > {h[1].name} +{us[0]:.1f}µs > {h[2].name} +{us[1]:.1f}µs\n" in text
    # Without -t no time at all; whole (--events) and streamed show print the same.
    assert stamp not in show(TRACES / "exp2.jsonl") and "µs" not in show(TRACES / "exp2.jsonl")
    whole = subprocess.run([sys.executable, "-m", "vethtrace", "show", "-t", "--events", str(TRACES / "exp2.jsonl")],
                           capture_output=True, text=True, cwd=ROOT, env=env_tz, timeout=60, check=True).stdout
    assert whole.startswith(text.rstrip("\n"))


def test_ping_timestamps_is_vethtraces_and_t_stays_pings():
    assert split_argv(["ping", "--timestamps", "-t", "3", "10.0.0.1"]) == \
        ["ping", "--timestamps", "--", "-t", "3", "10.0.0.1"]


def test_pings_view_wraps_too(capsys):
    """What `vethtrace ping` prints under ping's lines (ui.ping.PingView), from a replay."""
    _, corr = replay(str(TRACES / "exp1.jsonl"))
    view = PingView(corr, Style(colour=False, width=60, verbose=False, group_fixes=True))
    view.rest(limit=1)  # the failures, then one line counting the others
    out = capsys.readouterr().out.splitlines()
    assert out and all(len(line) <= 60 for line in out), max(out, key=len)
    assert sum(line.strip().startswith("fix:") for line in out) == 1
    assert any("more conversations" in line for line in out) and "NO_SOCKET" not in "\n".join(out)
