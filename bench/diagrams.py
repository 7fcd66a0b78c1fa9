"""Diagram timings: one conversation rendered to SVG; the step-by-step figure of as many
journeys as it draws (STEP_LIMIT) in one recording of several namespaces (the bridge lab,
replayed until there are that many); and an aggregate of many journeys (the exp2 trace
replayed, shifted in time, until there are N journeys).

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


def replayed(rec, journeys: int) -> Correlator:
    """The recording's events again and again, shifted in time, until there are `journeys`."""
    rows = [e.to_json() for e in rec.events]
    span = max(r["ts"] for r in rows) - min(r["ts"] for r in rows) + 1
    corr = Correlator(rec.context, namespaces=rec.namespaces)
    k = 0
    while len(corr.journeys) < journeys:
        for r in rows:
            d = dict(r)
            d["ts"] = r["ts"] + span * k
            corr.add(Event.from_json(d))
        k += 1
    return corr


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

    bridge = recording.read(str(ROOT / "tests/traces/netns-bridge.jsonl"))
    steps = replayed(bridge, diagram.STEP_LIMIT)
    t = time.perf_counter()
    dot = diagram.build(steps.journeys, steps, title="steps", aggregate=False)
    graph_s = time.perf_counter() - t
    t = time.perf_counter()
    diagram.write(dot, str(out / "steps.svg"))
    render_s = time.perf_counter() - t
    print(f"steps of {len(steps.journeys)} journeys ({len(steps.conversations)} conversations, bridge lab): "
          f"graph+DOT {graph_s * 1000:.0f} ms, dot->SVG {render_s * 1000:.0f} ms, DOT {len(dot.source)} bytes, "
          f"{dot.source.count(' -> ')} edges")

    t = time.perf_counter()
    big = replayed(rec, args.journeys)
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
