"""The raw record layout in tracer/record.py must match probes/vethtrace.h: compiled here
with the host compiler, sizes and offsets compared; and the decoder's guards."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest

from conftest import ROOT
from vethtrace.tracer import record
from vethtrace.tracer.record import (CONFIG_FIELDS, END_KEY_FIELDS, EVENT_FIELDS, FIB_FIELDS, NEIGH_FIELDS,
                                     PATH_KEY_FIELDS, Decoder, RecordError, offsets)

STRUCTS = {"vtr_event": EVENT_FIELDS, "vtr_fib": FIB_FIELDS, "vtr_neigh": NEIGH_FIELDS, "vtr_config": CONFIG_FIELDS,
           "vtr_end_key": END_KEY_FIELDS, "vtr_path_key": PATH_KEY_FIELDS}


def c_layout(tmp_path) -> dict:
    cc = shutil.which("clang") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler: scripts/setup installs clang")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "vethtrace.h"', "int main(void) {",
             'printf("{");']
    for i, (struct, fields) in enumerate(STRUCTS.items()):
        sep = "," if i else ""
        lines.append(f'printf("{sep}\\"{struct}\\": {{\\"size\\": %zu", sizeof(struct {struct}));')
        for name, _ in fields:
            if name.startswith("pad") and struct != "vtr_event":
                continue
            lines.append(f'printf(", \\"{name}\\": %zu", offsetof(struct {struct}, {name}));')
        lines.append('printf("}");')
    lines += ['printf("}\\n");', "return 0; }"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", str(ROOT / "probes"), str(src), "-o", str(exe)], check=True)
    return json.loads(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)


def test_python_layout_matches_c_header(tmp_path):
    layout = c_layout(tmp_path)
    for struct, fields in STRUCTS.items():
        c = layout[struct]
        py = offsets(fields)
        size = sum(__import__("struct").calcsize("=" + code) for _, code in fields)
        assert c["size"] == size, struct
        for name, off in c.items():
            if name != "size":
                assert py[name] == off, f"{struct}.{name}: C {off}, Python {py[name]}"


class NoSymbols:
    def resolve(self, addr):
        return f"fn{addr:x}"


def test_decoder_rejects_wrong_size():
    dec = Decoder({}, NoSymbols())
    with pytest.raises(RecordError, match="expected 192"):
        dec.decode(b"\0" * 191)
    with pytest.raises(RecordError):
        dec.decode(b"\0" * 200)


def test_decoder_names_reason_and_parses_packet():
    arp = bytes.fromhex("ffffffffffff aabbccddeeff 0806 0001080006040001aabbccddeeffc0a8020b000000000000c0a80201".replace(" ", ""))
    raw = record.EVENT.pack(5, 0xA0, 0xB0, 0x1234, 7, 2, 42, 62, 0, 9, 0x0806, 4, record.DATA_L2, 1,
                            len(arp), 0, b"veth1", b"ping", arp.ljust(record.DATA_MAX, b"\0"))
    e = Decoder({62: "SKB_DROP_REASON_NEIGH_FAILED"}, NoSymbols()).decode(raw)
    assert (e.kind, e.dev, e.reason, e.where, e.skb) == ("kfree", "veth1", "NEIGH_FAILED", "fn1234", 0xA0)
    assert e.pkt.summary() == "ARP who-has 192.168.2.1 tell 192.168.2.11"
    with pytest.raises(RecordError, match="unknown event kind"):
        Decoder({}, NoSymbols()).decode(raw[:58] + b"\x63" + raw[59:])


def test_event_json_round_trip():
    fib = record.FIB.pack(socket.inet_aton("192.168.2.11"), socket.inet_aton("192.168.2.1"), 2, 0, 1, b"\0\0\0")
    raw = record.EVENT.pack(5, 0, 0, 0, 7, 3, 0, 0, 254, 9, 0, 6, record.DATA_FIB, 0, len(fib), 0,
                            b"veth1", b"", fib.ljust(record.DATA_MAX, b"\0"))
    e = Decoder({}, NoSymbols()).decode(raw)
    back = type(e).from_json(json.loads(json.dumps(e.to_json())))
    assert back.to_json() == e.to_json()
    assert back.fib == {"src": "192.168.2.11", "dst": "192.168.2.1", "iif": 2, "oif": 0, "proto": 1}
