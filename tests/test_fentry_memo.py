"""The per-boot memory of a refused fentry load (tracer/loader.py), without root: what is
remembered, what is not believed, and that a broken memo never stops vethtrace."""
from __future__ import annotations

import errno

import pytest

from vethtrace.tracer import loader


@pytest.fixture
def memo(tmp_path, monkeypatch):
    boot = tmp_path / "boot_id"
    boot.write_text("1111-2222\n")
    obj = tmp_path / "probes.o"
    obj.write_bytes(b"object one")
    monkeypatch.setattr(loader, "BOOT_ID", boot)
    monkeypatch.setattr(loader, "FENTRY_MEMO", tmp_path / "run" / "fentry-refused")
    return boot, obj


def refused(code=errno.EPERM):
    return OSError(code, f"loading probes: {errno.errorcode.get(code, code)}")


def test_a_refusal_is_remembered_for_this_boot_and_object(memo):
    boot, obj = memo
    assert loader.fentry_refused_this_boot(obj) is None
    loader.remember_fentry_refusal(obj, refused())
    assert loader.fentry_refused_this_boot(obj) == "loading probes: EPERM"
    other = obj.with_name("other.o")
    other.write_bytes(b"object two")  # another build of the probes tries again
    assert loader.fentry_refused_this_boot(other) is None
    boot.write_text("3333-4444\n")  # after a reboot, tried again
    assert loader.fentry_refused_this_boot(obj) is None


def test_a_successful_fentry_load_forgets(memo):
    _, obj = memo
    loader.remember_fentry_refusal(obj, refused())
    loader.forget_fentry_refusal()
    assert loader.fentry_refused_this_boot(obj) is None
    loader.forget_fentry_refusal()  # nothing to forget: fine


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EACCES, errno.E2BIG])
def test_other_load_errors_are_not_remembered(memo, code):
    _, obj = memo
    loader.remember_fentry_refusal(obj, refused(code))
    assert not loader.FENTRY_MEMO.exists()


def test_a_broken_memo_or_missing_boot_id_is_ignored(memo, tmp_path, monkeypatch):
    boot, obj = memo
    loader.FENTRY_MEMO.parent.mkdir()
    loader.FENTRY_MEMO.write_bytes(b"\xff\xfe\x00garbage")
    assert loader.fentry_refused_this_boot(obj) is None
    monkeypatch.setattr(loader, "BOOT_ID", tmp_path / "no-such-file")
    loader.remember_fentry_refusal(obj, refused())
    assert loader.FENTRY_MEMO.read_bytes() == b"\xff\xfe\x00garbage"  # nothing written without a boot id
    assert loader.fentry_refused_this_boot(obj) is None


def test_an_unwritable_memo_place_is_not_an_error(memo, tmp_path, monkeypatch):
    _, obj = memo
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(loader, "FENTRY_MEMO", blocker / "sub" / "fentry-refused")
    loader.remember_fentry_refusal(obj, refused())  # must not raise
    assert loader.fentry_refused_this_boot(obj) is None
