"""Test split: root-free tests replay recorded traces; `live` tests load real probes and
build real namespaces.  With VETHTRACE_REQUIRE_LIVE=1 (CI) a skipped live test fails the run."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TRACES = ROOT / "tests" / "traces"  # re-recorded by the live tests (VETHTRACE_UPDATE_TRACES=1)
COMPAT1 = ROOT / "tests" / "compat" / "format1"  # frozen format-1 recordings, never re-recorded

_live_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and "live" in report.keywords:
        _live_skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("VETHTRACE_REQUIRE_LIVE") and _live_skipped:
        print(f"\nVETHTRACE_REQUIRE_LIVE: {len(_live_skipped)} live tests were skipped, "
              f"e.g. {_live_skipped[0]}", file=sys.stderr)
        session.exitstatus = 1


def is_root() -> bool:
    return os.geteuid() == 0


needs_root = pytest.mark.skipif(not is_root(), reason="live test: needs root (CI runs it as root)")
