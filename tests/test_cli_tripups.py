"""Command-line trip-ups a new user hit (issue 13): each is a usage that must work, or fail
with one line naming the subcommand, exit 2.  The live ones run in the article's lab."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, TRACES, needs_root
from vethtrace.cli.ping import split_argv
from vethtrace.tracer import lab as labmod


def vt(*args, cwd=None, timeout=60, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "vethtrace", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout)


def one_line_usage_error(r, sub: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vethtrace {sub}: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize("args,sub,needle", [
    (["record", "-o", "x.jsonl", "-d", "-1"], "record", "more than 0"),
    (["record", "-o", "x.jsonl", "-d", "soon"], "record", "not a number"),
    (["trace", "-c", "0"], "trace", "more than 0"),
    (["trace", "--buffer-mb", "-4"], "trace", "more than 0"),
    (["record", "-o", "x.jsonl", "--bogus"], "record", "unrecognized arguments: --bogus"),
    (["show"], "show", "required: file"),
    (["render", str(TRACES / "exp2.jsonl")], "render", "-o/--output"),
])
def test_usage_errors_are_one_line_naming_the_subcommand(args, sub, needle, tmp_path):
    line = one_line_usage_error(vt(*args, cwd=tmp_path), sub)
    assert needle in line and f"vethtrace {sub} --help" in line
    assert not (tmp_path / "x.jsonl").exists()


def test_version():
    r = vt("--version")
    assert r.returncode == 0 and r.stdout.startswith("vethtrace ") and r.stdout.split()[1][0].isdigit()


def test_export_takes_o_like_every_other_output(tmp_path):
    for flag in ("-o", "--pcapng"):  # --pcapng: the old spelling still works
        out = tmp_path / f"x{flag}.pcapng"
        r = vt("export", str(TRACES / "exp2.jsonl"), flag, str(out))
        assert r.returncode == 0, r.stderr
        assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header block


def test_tui_usage_shows_the_command_form():
    r = vt("tui", "--help")
    assert "usage: vethtrace tui" in r.stdout and "-- COMMAND" in r.stdout.splitlines()[0]


def test_ping_options_after_pings_own_arguments_are_vethtraces():
    assert split_argv(["ping", "-c", "1", "-I", "veth0", "192.168.2.1", "--record", "x.jsonl"]) == \
        ["ping", "--record", "x.jsonl", "--", "-c", "1", "-I", "veth0", "192.168.2.1"]
    # after an explicit `--`, everything is ping's
    assert split_argv(["ping", "--svg", "a.svg", "--", "-c", "1", "--record"]) == \
        ["ping", "--svg", "a.svg", "--", "-c", "1", "--record"]


@pytest.mark.live
@needs_root
def test_lab_down_of_a_lab_that_is_not_up_is_an_error_like_up_twice():
    name = labmod.ns_name("one-ip")
    assert not os.path.exists(f"/run/netns/{name}"), f"{name} exists: remove it first"
    one_line_usage = vt("lab", "down", "one-ip")
    assert one_line_usage.returncode == 2 and "no lab" in one_line_usage.stderr
    assert len(one_line_usage.stderr.strip().splitlines()) == 1


@pytest.mark.live
@needs_root
def test_demo_exit_status_is_pings():
    r = vt("demo", "one-ip", timeout=120)  # experiment 1: nobody owns the address, ping fails
    assert r.returncode == 1, r.stdout[-1500:] + r.stderr
    assert "100% packet loss" in r.stdout


@pytest.mark.live
@needs_root
def test_ping_record_after_pings_arguments_is_taken_by_vethtrace(tmp_path):
    out = tmp_path / "p.jsonl"
    with labmod.lab("two-ips-fixed", name=f"{labmod.PREFIX}t{os.getpid()}-tripup") as built:
        r = subprocess.run(built.exec_cmd([sys.executable, "-m", "vethtrace", "ping", "-c", "1", "-I", "veth0",
                                           "192.168.2.1", "--record", str(out)]),
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.exists() and "recording saved to" in r.stdout


@pytest.mark.live
@needs_root
def test_trace_count_stops_after_count_conversations():
    with labmod.lab("two-ips-fixed", name=f"{labmod.PREFIX}t{os.getpid()}-count") as built:
        tracer = subprocess.Popen(built.exec_cmd([sys.executable, "-m", "vethtrace", "trace", "-c", "2", "-d", "30"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            deadline = time.monotonic() + 20
            line = tracer.stderr.readline()  # "vethtrace: tracing ...": the probes are attached
            assert "tracing" in line, line
            ping = subprocess.Popen(built.exec_cmd(["ping", "-i", "0.3", "-c", "20", "-I", "veth0", "192.168.2.1"]),
                                    stdout=subprocess.DEVNULL)
            try:
                rc = tracer.wait(timeout=max(1.0, deadline - time.monotonic()))
            finally:
                still_pinging = ping.poll() is None
                ping.kill()
                ping.wait()
        finally:
            if tracer.poll() is None:
                tracer.kill()
                tracer.wait()
    assert rc == 0
    assert still_pinging, "trace -c 2 should stop long before 20 pings (6 s) are done"
    out = tracer.stdout.read()
    assert "ARP" in out and "ICMP echo" in out


def _json_validator():
    import json as _json

    import jsonschema
    schema = _json.loads(vt("schema").stdout)
    return jsonschema.Draft202012Validator({**schema, "oneOf": [{"$ref": "#/$defs/json_event"}]})


def test_show_json_objects_have_stable_keys_and_follow_the_schema():
    import json as _json
    r = vt("show", "--json", str(TRACES / "exp2.jsonl"))
    objs = [_json.loads(line) for line in r.stdout.splitlines()]
    assert objs and len({tuple(o) for o in objs}) == 1  # the same keys, in the same order, on every line
    v = _json_validator()
    for o in objs:
        errors = list(v.iter_errors(o))
        assert not errors, errors[0].message
    assert all(o["wall_ns"] > 1_600_000_000 * 10**9 for o in objs)  # Unix time, not monotonic


@pytest.mark.live
@needs_root
def test_trace_json_prints_the_objects_show_json_prints():
    import json as _json
    with labmod.lab("two-ips-fixed", name=f"{labmod.PREFIX}t{os.getpid()}-json") as built:
        tracer = subprocess.Popen(built.exec_cmd([sys.executable, "-m", "vethtrace", "trace", "--json", "-d", "4"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            assert "tracing" in tracer.stderr.readline()
            subprocess.run(built.exec_cmd(["ping", "-c", "2", "-i", "0.2", "-I", "veth0", "192.168.2.1"]),
                           stdout=subprocess.DEVNULL, check=True, timeout=20)
            out, _ = tracer.communicate(timeout=30)
        finally:
            if tracer.poll() is None:
                tracer.kill()
                tracer.wait()
    objs = [_json.loads(line) for line in out.splitlines()]
    v = _json_validator()
    for o in objs:
        assert not list(v.iter_errors(o)), o
    echo = [o for o in objs if o["summary"].startswith("ICMP echo")]
    assert len({o["conversation"] for o in echo}) == 2 and None not in {o["journey"] for o in echo}
    keys = {tuple(o) for o in objs}
    show_keys = {tuple(_json.loads(vt("show", "--json", str(TRACES / "exp2.jsonl")).stdout.splitlines()[0]))}
    assert keys == show_keys


def test_host_takes_ipv6_as_the_expression_host_addr():
    from vethtrace.tracer.live import build_filters
    from vethtrace.tracer.kernel import SetupError
    cfg = build_filters(host="fd00::1")
    assert cfg.pcap is not None and not any(cfg.host)
    both = build_filters(host="fd00::1", expression=["icmp6"])
    assert both.pcap is not None
    v4 = build_filters(host="192.168.2.1")
    assert v4.pcap is None and v4.host == bytes([192, 168, 2, 1])
    with pytest.raises(SetupError, match="IPv4 or IPv6"):
        build_filters(host="fd00::zz")


@pytest.mark.live
@needs_root
def test_trace_prints_the_arp_exchange_before_the_echo_request_it_released():
    with labmod.lab("two-ips-fixed", name=f"{labmod.PREFIX}t{os.getpid()}-order") as built:
        tracer = subprocess.Popen(built.exec_cmd([sys.executable, "-m", "vethtrace", "trace", "-d", "3"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                  env=dict(os.environ, NO_COLOR="1"))
        try:
            assert "tracing" in tracer.stderr.readline()
            subprocess.run(built.exec_cmd(["ping", "-c", "1", "-I", "veth0", "192.168.2.1"]),
                           stdout=subprocess.DEVNULL, check=True, timeout=20)
            out, _ = tracer.communicate(timeout=30)
        finally:
            if tracer.poll() is None:
                tracer.kill()
                tracer.wait()
    arp = out.find("ARP who-has 192.168.2.1")
    echo = out.find("ICMP echo request")
    assert arp >= 0 and echo >= 0, out
    assert arp < echo, out
