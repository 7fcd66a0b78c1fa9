"""Builds the probes' CO-RE object (probes/Makefile) before the package is assembled, so a
wheel carries it and an installed vethtrace needs no compiler.  Configuration is in
pyproject.toml; this file only adds that build step."""
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithProbes(build_py):
    def run(self):
        subprocess.run(["make", "-s", "-C", str(HERE / "probes")], check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithProbes})
