"""Diagram timings: one conversation rendered to SVG, and an aggregate of many journeys
(the exp2 trace replayed, shifted in time, until there are N journeys).

    .venv/bin/python bench/diagrams.py [--journeys 100000]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vethtrace.tracer import recording  # noqa: E402
from vethtrace.tracer.correlate import Correlator  # noqa: E402
from vethtrace.tracer.events import Event  # noqa: E402
from vethtrace.ui import diagram  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--journeys", type=int, default=100_000)
    args = ap.parse_args()
    rec = recording.read(str(ROOT / "tests/traces/exp2.jsonl"))
    out = Path(tempfile.mkdtemp())

    corr = Correlator(rec.context)
    corr.feed(rec.events)
    conv = next(c for c in corr.conversations if c.kind == "echo")
    t = time.perf_counter()
    diagram.render_conversation(conv, corr, str(out / "conv.svg"))
    one = time.perf_counter() - t
    print(f"one conversation -> SVG: {one * 1000:.0f} ms ({(out / 'conv.svg').stat().st_size} bytes)")

    rows = [e.to_json() for e in rec.events]
    span = max(r["ts"] for r in rows) - min(r["ts"] for r in rows) + 1
    big = Correlator(rec.context)
    t = time.perf_counter()
    k = 0
    while len(big.journeys) < args.journeys:
        for r in rows:
            d = dict(r)
            d["ts"] = r["ts"] + span * k
            big.add(Event.from_json(d))
        k += 1
    build_events = time.perf_counter() - t
    print(f"replayed {big.events} events into {len(big.journeys)} journeys in {build_events:.1f} s")
    t = time.perf_counter()
    dot = diagram.build(big.journeys, big, title="aggregate", aggregate=True)
    graph_s = time.perf_counter() - t
    t = time.perf_counter()
    diagram.write(dot, str(out / "all.svg"))
    render_s = time.perf_counter() - t
    print(f"aggregate of {len(big.journeys)} journeys: graph+DOT {graph_s:.2f} s, dot->SVG {render_s:.2f} s, "
          f"DOT {len(dot.source)} bytes, SVG {(out / 'all.svg').stat().st_size} bytes")


if __name__ == "__main__":
    main()
