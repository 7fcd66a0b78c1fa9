"""vethtrace: see where a packet went inside the Linux kernel and why it stopped there.

Layers: `vethtrace.probes` (eBPF, shipped compiled) -> `vethtrace.tracer` (loading,
decoding, correlating, recording) -> `vethtrace.ui` (text, TUI, diagrams); the command
line, `vethtrace.cli`, is the only place that uses both tracer and ui.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("vethtrace")
except PackageNotFoundError:  # run from a checkout without installing
    __version__ = "0+unknown"
