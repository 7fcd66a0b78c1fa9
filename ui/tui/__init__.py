"""The Textual TUI (`vethtrace tui`), split by what each module owns:

- app.py: the app (layout, the tick, keys, status bar), build_app and run;
- schedule.py: which conversations become rows and which rows are redone per tick;
- rows.py: what one row of the list says and what the filter matches on;
- query.py: the filter's terms;
- panes.py: the detail and path panes as rich renderables;
- widgets.py: the conversation list, its header and the filter bar;
- screens.py: the help and the "save to" question;
- tui.tcss: the styles.

The reader thread and the command runner are tracer.feed's (no UI in them).
"""
from vethtrace.ui.tui.app import EXPORT_MISSING, VethtraceApp, build_app, run
from vethtrace.ui.tui.query import Filter, FilterError
from vethtrace.ui.tui.screens import HELP_KEYS, HelpScreen, SaveScreen

__all__ = ["EXPORT_MISSING", "HELP_KEYS", "Filter", "FilterError", "HelpScreen", "SaveScreen", "VethtraceApp",
           "build_app", "run"]
