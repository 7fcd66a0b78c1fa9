"""vethtrace installed as a user installs it: a wheel built from this checkout, installed
into a fresh venv outside it, used from another directory.  It must trace the article's
experiment 2 in a lab (probes shipped in the wheel: no compiler, no make, no checkout),
open the TUI on a recording (headless, the stylesheet found as package data) and render an
SVG, and it must not install top-level `tracer` or `ui` packages."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, TRACES, needs_root

TUI_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from vethtrace.tracer.sources import ReplaySource
    from vethtrace.ui import tui

    async def main():
        app = tui.build_app(ReplaySource(sys.argv[1]))
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(200):
                if app.caught_up:
                    break
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            print("caught up" if app.caught_up else "not caught up")
            print(app.exit_summary())
    asyncio.run(main())
""")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, a working directory outside the checkout) with the wheel installed."""
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    # No build isolation: the checkout's venv already has setuptools; the build runs probes/Makefile.
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheels = glob.glob(str(dist / "vethtrace-*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=120)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", wheels[0]],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return venv, elsewhere


def _site(venv: Path) -> Path:
    found = glob.glob(str(venv / "lib" / "python3*" / "site-packages"))
    assert len(found) == 1, found
    return Path(found[0])


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VETHTRACE_", "PYTHON"))}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"  # the installed venv is not on it: absolute paths only
    return env


def test_wheel_installs_one_package_with_its_probes_and_stylesheet(installed):
    venv, _ = installed
    site = _site(venv)
    assert not (site / "tracer").exists() and not (site / "ui").exists()
    assert (site / "vethtrace" / "probes" / "vethtrace.bpf.o").is_file()
    assert (site / "vethtrace" / "probes" / "vethtrace.h").is_file()
    assert list((site / "vethtrace" / "ui").rglob("*.tcss"))
    tops = {p.name.split("-")[0].split(".")[0] for p in site.iterdir()
            if not p.name.startswith(("_", "pip", "setuptools", "pkg_resources")) and p.suffix != ".pth"}
    assert "tracer" not in tops and "ui" not in tops


def test_installed_version_and_help_run_outside_the_checkout(installed):
    venv, elsewhere = installed
    exe = str(venv / "bin" / "vethtrace")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, cwd=elsewhere, env=_env(), timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("vethtrace "), r.stderr
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, cwd=elsewhere, env=_env(), timeout=60)
    # the commands it prints name this very vethtrace, so they run as printed
    assert f"ip netns exec vethtrace-two-ips-fixed {exe} ping" in r.stdout, r.stdout


def test_installed_renders_an_svg(installed):
    venv, elsewhere = installed
    out = elsewhere / "flow.svg"
    r = subprocess.run([str(venv / "bin" / "vethtrace"), "render", str(TRACES / "exp2.jsonl"), "-o", str(out),
                        "--conversation", "2"], capture_output=True, text=True, cwd=elsewhere, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_text().lstrip().startswith(("<?xml", "<svg")) and "veth0" in out.read_text()


def test_installed_tui_replays_a_recording_headless(installed):
    venv, elsewhere = installed
    r = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", TUI_SCRIPT, str(TRACES / "exp2.jsonl")],
                       capture_output=True, text=True, cwd=elsewhere, env=_env(), timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("caught up"), r.stdout
    assert " conversations, " in r.stdout


@pytest.mark.live
@needs_root
def test_installed_traces_experiment_2_in_a_lab(installed):
    venv, elsewhere = installed
    r = subprocess.run([str(venv / "bin" / "vethtrace"), "demo", "two-ips-fixed"], capture_output=True, text=True,
                       cwd=elsewhere, env=_env(), timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    out = r.stdout
    assert "64 bytes from 192.168.2.1" in out
    assert "veth0 (veth_xmit) > veth1" in out and "ARP who-has 192.168.2.1" in out
    assert "delivered to ping" in out
