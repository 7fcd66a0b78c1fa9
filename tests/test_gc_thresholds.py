"""The collector thresholds the command line sets: rare collections for batch work (show,
render), more frequent ones for live commands, which forget journeys as they go (their
peak RSS under a flood: bench/scale.py)."""
from __future__ import annotations

import gc

from vethtrace import cli


def test_live_commands_collect_more_often_than_batch_ones(tmp_path, capsys):
    saved = gc.get_threshold()
    try:
        # refused before any probe loads (its directory does not exist): exit 2, one line
        assert cli.main(["record", "-o", str(tmp_path / "no-such-dir" / "x.jsonl"), "--", "true"]) == 2
        assert gc.get_threshold() == cli.LIVE_GC_THRESHOLDS
        assert cli.main(["show", str(tmp_path / "missing.jsonl")]) == 2
        assert gc.get_threshold() == cli.GC_THRESHOLDS
        assert cli.LIVE_GC_THRESHOLDS[0] < cli.GC_THRESHOLDS[0] and cli.LIVE_GC_THRESHOLDS[1] < cli.GC_THRESHOLDS[1]
    finally:
        gc.set_threshold(*saved)
    err = capsys.readouterr().err
    assert err.count("vethtrace:") == 2 and "Traceback" not in err
