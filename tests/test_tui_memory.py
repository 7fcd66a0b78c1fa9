"""The TUI's own collector thresholds (ui.tui.app.GC_THRESHOLDS): in force while it runs, the
caller's back once it has stopped.  Root-free: a recorded trace.  (What they are for, RSS
flat under steady traffic, is measured by bench/scale.py's steady row, not asserted.)"""
from __future__ import annotations

import gc

import pytest

from conftest import TRACES
from vethtrace.tracer.sources import ReplaySource
from vethtrace.ui.tui import build_app
from vethtrace.ui.tui.app import GC_THRESHOLDS


@pytest.mark.asyncio
async def test_collector_thresholds_while_the_tui_runs():
    before = (500_000, 1000, 1000)  # vethtrace.cli.GC_THRESHOLDS, as main sets them
    saved = gc.get_threshold()
    gc.set_threshold(*before)
    try:
        app = build_app(ReplaySource(str(TRACES / "exp2.jsonl")))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            assert gc.get_threshold() == GC_THRESHOLDS
            assert GC_THRESHOLDS[0] < before[0] and GC_THRESHOLDS[1] < before[1]
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*saved)
