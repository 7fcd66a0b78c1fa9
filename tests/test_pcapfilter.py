"""pcap-filter expressions without root: compiling (libpcap's errors as one line, exit 2),
the command lines that take them, and recordings filtered by them (`show|render|export|tui
FILE EXPR`), with libpcap's own verdict on each recorded packet copy as the witness."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, TRACES
from vethtrace.cli import parser, ping, tui
from vethtrace.cli.common import split_command
from vethtrace.tracer import pcapfilter, recording
from vethtrace.tracer.events import PACKET_KINDS
from vethtrace.tracer.sources import ReplaySource, replay

ENV = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")


def vethtrace(*args, **kw):
    return subprocess.run([sys.executable, "-m", "vethtrace", *args], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, timeout=60, **kw)


# -- compiling -------------------------------------------------------------------------
def test_words_are_joined_as_tcpdump_joins_them():
    one = pcapfilter.compile_filter("icmp and host 10.0.0.2")
    words = pcapfilter.compile_filter(["icmp", "and", "host", "10.0.0.2"])
    assert one.l2.insns == words.l2.insns and one.l3.insns == words.l3.insns
    assert pcapfilter.compile_filter([]) is None and pcapfilter.compile_filter("  ") is None


def test_link_layer_expressions_judge_l3_copies_behind_a_virtual_header():
    flt = pcapfilter.compile_filter("arp")
    assert flt.l3 is None  # DLT_RAW has no ARP
    arp = next(e for e in recording.read(str(TRACES / "exp2.jsonl")).events
               if e.pkt is not None and e.pkt.l3 == "ARP" and not e.l2)
    assert flt.matches_event(arp)
    assert not pcapfilter.compile_filter("icmp").matches_event(arp)


@pytest.mark.parametrize("args", [
    ["trace", "icmp", "and", "("], ["record", "-o", "{out}", "no such thing", "--", "true"],
    ["ping", "bad", "expr", "--", "-c", "1", "192.168.2.1"], ["ping", "--filter", "port 99999", "192.168.2.1"],
    ["show", str(TRACES / "exp2.jsonl"), "icmp", "or"], ["render", str(TRACES / "exp2.jsonl"), "tcp[", "-o", "{out}"],
    ["export", str(TRACES / "exp2.jsonl"), "hots", "1.2.3.4", "--pcapng", "{out}"],
    ["tui", str(TRACES / "exp2.jsonl"), "ip", "proto", "nosuch"],
], ids=["trace", "record", "ping", "ping-filter", "show", "render", "export", "tui"])
def test_an_invalid_expression_exits_2_with_one_line(args, tmp_path):
    out = tmp_path / "out"
    r = vethtrace(*[a.replace("{out}", str(out)) for a in args])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vethtrace: bad filter expression"), r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


# -- command lines -----------------------------------------------------------------------
def test_a_command_without_dashes_is_pointed_to_them(tmp_path):
    r = vethtrace("record", "-o", str(tmp_path / "x.jsonl"), "sleep", "1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "put it after --: vethtrace record -o" in r.stderr and "-- sleep 1" in r.stderr


def test_trace_takes_trailing_words():
    args = parser().parse_args(["trace", "-d", "1", "icmp", "and", "host", "10.0.0.2"])
    assert args.expression == ["icmp", "and", "host", "10.0.0.2"] and args.duration == 1


def test_record_takes_the_expression_before_the_command():
    argv, command = split_command(["record", "-o", "x", "tcp", "port", "81", "--", "ping", "-c", "1", "h"])
    args = parser().parse_args(argv)
    assert args.expression == ["tcp", "port", "81"] and command == ["ping", "-c", "1", "h"]
    argv, command = split_command(["record", "-o", "x", "--", "sleep", "1"])
    assert parser().parse_args(argv).expression == [] and command == ["sleep", "1"]


def test_ping_arguments_stay_ping_arguments():
    assert ping.split_argv(["ping", "-c", "1", "-I", "veth0", "192.168.2.1"]) == \
        ["ping", "--", "-c", "1", "-I", "veth0", "192.168.2.1"]
    assert ping.split_argv(["ping", "-c", "1", "--", "192.168.2.1"]) == ["ping", "--", "-c", "1", "192.168.2.1"]
    assert ping.split_argv(["ping", "--events", "icmp", "and", "host", "x", "--", "-c", "1", "x"]) == \
        ["ping", "--events", "--filter", "icmp and host x", "--", "-c", "1", "x"]
    args = parser().parse_args(ping.split_argv(["ping", "--filter", "icmp", "-c", "1", "x"]))
    assert args.filter == "icmp" and args.ping_args[-3:] == ["-c", "1", "x"]


def test_tui_first_word_is_a_recording_when_it_names_a_file():
    path = str(TRACES / "exp2.jsonl")
    assert tui.file_and_expression([path, "icmp"]) == (path, ["icmp"])
    assert tui.file_and_expression(["icmp", "and", "arp"]) == (None, ["icmp", "and", "arp"])


# -- recordings ----------------------------------------------------------------------------
def _conversations(path, expression):
    flt = pcapfilter.compile_filter(expression)
    _, all_corr = replay(path)
    _, corr = replay(path, flt)
    return flt, all_corr, corr


def _judged(flt, journeys) -> bool:
    """libpcap's verdict: does any packet copy of these journeys match?"""
    def one(e):
        if e.l2:
            return flt.l2.matches(e.data)
        if flt.l3 is not None and e.protocol in (0x0800, 0x86DD):
            return flt.l3.matches(e.data)
        return flt.l2.matches(pcapfilter.fake_ethernet(e.protocol) + e.data)
    return any(one(e) for j in journeys for e in j.events if e.data)


@pytest.mark.parametrize("name,expression", [("exp2", "icmp"), ("exp2", "arp"), ("exp1", "arp"),
                                             ("exp2-default", "icmp[icmptype] == icmp-echo"),
                                             ("exp3", "host 192.168.2.2"), ("exp2", "tcp")])
def test_show_keeps_the_conversations_with_a_matching_packet(name, expression):
    path = str(TRACES / f"{name}.jsonl")
    flt, all_corr, corr = _conversations(path, expression)
    kept = {c.title for c in corr.conversations}
    want = {c.title for c in all_corr.conversations if _judged(flt, c.journeys)}
    assert kept == want
    # whole conversations: as many packets as the unfiltered replay had in them
    sizes = {c.title: len(c.journeys) for c in all_corr.conversations}
    assert all(len(c.journeys) == sizes[c.title] for c in corr.conversations)


def test_show_expression_on_the_command_line():
    path = str(TRACES / "exp2.jsonl")
    r = vethtrace("show", path, "icmp")
    assert r.returncode == 0, r.stderr
    assert "ARP" not in r.stdout.split("---")[0] and "[1] ping" in r.stdout and "[2] ping" in r.stdout
    assert "4 packets" in r.stdout
    r = vethtrace("show", path, "arp", "and", "host", "192.168.2.1")
    assert "[1] ARP" in r.stdout and "ping" not in r.stdout.split("---")[0].replace("recording: ping", "")


def test_an_icmp_error_is_kept_with_the_packet_it_reports():
    """Only the echo requests match; the host-unreachable errors about them are kept."""
    path = str(TRACES / "exp2-default.jsonl")
    flt = pcapfilter.compile_filter("icmp[icmptype] == icmp-echo")
    _, corr = replay(path, flt)
    errors = [j for j in corr.journeys if j.pkt is not None and j.pkt.icmp_type == 3]
    assert len(errors) == 2
    assert not any(flt.matches_event(e) for j in errors for e in j.events)  # kept only as answers


def test_a_filter_matching_nothing_keeps_nothing():
    rec, corr = replay(str(TRACES / "exp2.jsonl"), pcapfilter.compile_filter("udp port 53"))
    assert rec.events == [] and corr.conversations == []


def test_render_and_export_take_the_expression(tmp_path):
    path = str(TRACES / "exp2.jsonl")
    r = vethtrace("render", path, "arp", "-o", str(tmp_path / "arp.dot"))
    assert r.returncode == 0, r.stderr
    dot = (tmp_path / "arp.dot").read_text()
    assert "arp_rcv" in dot and "icmp_rcv" not in dot
    full = vethtrace("export", path, "--pcapng", str(tmp_path / "all.pcapng"))
    part = vethtrace("export", path, "icmp", "--pcapng", str(tmp_path / "icmp.pcapng"))
    assert full.returncode == part.returncode == 0
    n_all, n_icmp = (int(r.stderr.split()[1]) for r in (full, part))
    assert 0 < n_icmp < n_all


def test_tui_replay_source_is_filtered():
    path = str(TRACES / "exp2.jsonl")
    src = ReplaySource(path, pcap=pcapfilter.compile_filter("arp"))
    pkts = [e for e in src.poll() if e.kind in PACKET_KINDS]
    assert pkts and all(e.pkt.l3 == "ARP" for e in pkts)
