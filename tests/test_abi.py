"""The kernel/user contract (tracer/abi.py): the compiled probes' BTF is compared with the
Python mirror at load.  A copy of the header with one kind renumbered, compiled for real,
must be reported, by the check and by the command line, before any record is read."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, needs_root
from vethtrace.tracer import abi, loader

PROBES = ROOT / "probes"


def build_copy(tmp_path: Path, edit) -> Path:
    """Compile probes/vethtrace.bpf.c with an edited copy of vethtrace.h, as probes/Makefile does."""
    clang = shutil.which("clang")
    vmlinux = PROBES / "build" / "vmlinux.h"
    if clang is None or not vmlinux.exists():
        pytest.fail("clang and probes/build/vmlinux.h are needed: scripts/setup provides both")
    src = tmp_path / "probes"
    src.mkdir()
    shutil.copy(PROBES / "vethtrace.bpf.c", src)
    header = (PROBES / "vethtrace.h").read_text()
    edited = edit(header)
    assert edited != header, "the edit did not apply: the header changed, update this test"
    (src / "vethtrace.h").write_text(edited)
    obj = tmp_path / "vethtrace.bpf.o"
    subprocess.run([clang, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{vmlinux.parent}", f"-I{src}",
                    "-c", str(src / "vethtrace.bpf.c"), "-o", str(obj)], check=True, capture_output=True)
    return obj


def renumber_xmit(header: str) -> str:
    return re.sub(r"VTR_EV_XMIT = 1,", "VTR_EV_XMIT = 12,", header)


def test_shipped_probes_agree_with_the_tracer():
    assert abi.differences(loader.object_path()) == []


def test_a_renumbered_kind_is_reported(tmp_path):
    obj = build_copy(tmp_path, renumber_xmit)
    diff = abi.differences(obj)
    assert diff == ["VTR_EV_XMIT is 12 in the probes, 1 in the tracer"]
    with pytest.raises(abi.ABIMismatch, match="VTR_EV_XMIT is 12 in the probes"):
        abi.check(obj)


def test_a_moved_field_is_reported(tmp_path):
    def swap(header: str) -> str:  # ifindex before netns: same size, other offsets
        return header.replace("\t__u32 netns;     /* network namespace inode */\n\t__u32 ifindex;\n",
                              "\t__u32 ifindex;\n\t__u32 netns;     /* network namespace inode */\n")
    diff = abi.differences(build_copy(tmp_path, swap))
    assert "vtr_event.netns is at 36 in the probes, 32 in the tracer" in diff
    assert "vtr_event.ifindex is at 32 in the probes, 36 in the tracer" in diff


def test_a_changed_record_version_is_reported(tmp_path):
    diff = abi.differences(build_copy(tmp_path, lambda h: h.replace("VTR_RECORD_VERSION = 1", "VTR_RECORD_VERSION = 2")))
    assert diff == ["VTR_RECORD_VERSION is 2 in the probes, 1 in the tracer"]


@pytest.mark.live
@needs_root
def test_the_command_line_refuses_mismatched_probes(tmp_path):
    obj = build_copy(tmp_path, renumber_xmit)
    out = tmp_path / "never.jsonl"
    r = subprocess.run([sys.executable, "-m", "vethtrace", "record", "-o", str(out), "-d", "0.1"],
                       env=dict(os.environ, VETHTRACE_BPF_OBJ=str(obj)), capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "VTR_EV_XMIT is 12 in the probes, 1 in the tracer" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
