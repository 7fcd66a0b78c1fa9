"""vethtrace: see where a packet went inside the Linux kernel and why it stopped there.

Layers: `vethtrace.probes` (eBPF, shipped compiled) -> `vethtrace.tracer` (loading,
decoding, correlating, recording) -> `vethtrace.ui` (text, TUI, diagrams); the command
line, `vethtrace.cli`, is the only place that uses both tracer and ui.
"""


def __getattr__(name: str):
    """`__version__`, looked up when first asked: importlib.metadata costs tens of ms at
    every start of every command (a `show` of a small file is mostly start-up)."""
    if name != "__version__":
        raise AttributeError(f"module 'vethtrace' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version
    try:
        value = version("vethtrace")
    except PackageNotFoundError:  # run from a checkout without installing
        value = "0+unknown"
    globals()["__version__"] = value
    return value
