"""The screens over the main one: the help (keys, verdict marks, filter terms, status
bar) and the question where to save a file."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

HELP_KEYS = [
    ("p  space", "pause / resume the live list (tracing and counting go on); a replay is listed whole"),
    ("/", "filter: type terms, Enter applies, an empty filter shows everything"),
    ("escape", "clear the filter"),
    ("f", "follow: keep the newest conversation selected (on/off)"),
    ("d  D", "jump to the next / previous drop or unanswered request"),
    ("↑ ↓  j k", "select a conversation; PgUp PgDn Home End also work"),
    ("tab", "move between the list, the detail and the path (to scroll them)"),
    ("s", "save the recording (the last events kept) as a file `vethtrace show` reads"),
    ("e", "export the selected conversation as a diagram (asks where; .svg .png .pdf .dot)"),
    ("?", "this help"),
    ("q  ctrl+c", "quit (the probes are detached)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def on_mount(self) -> None:
        body = self.query_one("#help-body")
        body.border_title = "help"
        body.border_subtitle = "↑ ↓ scroll · escape closes"
        body.focus()

    def compose(self) -> ComposeResult:
        keys = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for k, what in HELP_KEYS:
            keys.add_row(k, what)
        marks = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        marks.add_column(no_wrap=True)
        marks.add_column()
        marks.add_row(Text("✓ delivered / answered", "green"), "the packet reached a socket, or the stack answered it")
        marks.add_row(Text("■ consumed / no reply", "yellow"), "the stack took it without an error, but nothing came back")
        marks.add_row(Text("✗ dropped: REASON", "bold red"), "freed by the kernel with a drop reason (see the detail for advice)")
        marks.add_row(Text("… in flight", "cyan"), "no end seen yet")
        marks.add_row(Text("? incomplete", "bold magenta"), "no end seen, and the kernel lost events: the trace has gaps")
        with VerticalScroll(id="help-body"):
            yield Static(Text("vethtrace tui — keys", "bold"), classes="help-title")
            yield Static(keys)
            yield Static(Text("\nEach row is a conversation: an echo request with its reply or error, or an ARP "
                              "exchange. The path lists where each packet went (device, stack handler, socket); "
                              "⇒ separates the request's path from the reply's. Select a row to see every hop "
                              "(device, kernel function, namespace, time since the previous hop) and why it ended."))
            yield Static(Text("\nVerdicts", "bold"))
            yield Static(marks)
            yield Static(Text("\nFilter terms", "bold"))
            yield Static(Text("icmp arp tcp udp · 192.168.2.1 · veth1 · dropped failed delivered lost · any text · "
                              "key:value (proto: host: dev: verdict: text:; text:a:b finds a:b) · !term to "
                              "exclude. Every term must match, e.g. `icmp dropped` or `arp !192.168.2.2`; a term "
                              "that cannot match (an unknown key, verdict or protocol) is refused with the reason."))
            yield Static(Text("\nStatus bar", "bold"))
            yield Static(Text("LIVE or PAUSED or REPLAY · events per second and total · events the kernel lost "
                              "(red when not zero) · probe mechanism · filter · follow · conversations shown of "
                              "those seen (in a flood the list shows failures first and counts the rest)."))
            yield Static(Text("\nescape or ? closes this help", "dim"))


class SaveScreen(ModalScreen[str | None]):
    """Asks where to write a file (the recording, a diagram); dismissed with the path, or
    None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str, note: str, what: str = "the recording"):
        super().__init__()
        self.default, self.note, self.what = default, note, what

    def compose(self) -> ComposeResult:
        with Vertical(id="save-box"):
            yield Label(f"Save {self.what} to (Enter saves, Escape cancels):")
            yield Input(value=self.default, id="save-path")
            yield Label(self.note, id="save-note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
