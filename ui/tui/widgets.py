"""The widgets of the main screen: the conversation list (a virtual list of Rows, only
the visible lines rendered), the column header over it, the filter bar, and the panes
that hold the selected conversation's detail and path."""
from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style as RichStyle
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input

from vethtrace.ui.tui.rows import Row

PATH_WANTED = 16  # the path column gives way to the packet down to this width
MIN_PATH = 12     # a path column narrower than this is left out


@dataclass
class Columns:
    """Column widths: time, packet, verdict, then the path, which takes the rest and is
    the one cut short (…) on narrow terminals.  Where the whole packet and a useful path
    do not both fit, the packet is given briefly (destination, id and seq, or ports:
    `short`), and the path is left out (path == 0) rather than shown as a few letters:
    the path pane shows it."""

    time: int = 6
    summary: int = 46
    verdict: int = 25
    path: int = 30
    gap: int = 2
    short: bool = False

    @classmethod
    def fit(cls, width: int, time: int = 6, summary: int = 46, verdict: int = 25,
            brief: int | None = None) -> "Columns":
        gap = 2
        verdict = max(7, min(verdict, 32))
        rest = max(20, width - time - verdict - 3 * gap)
        if brief is not None and summary + PATH_WANTED > rest:
            if rest - brief < MIN_PATH:
                return cls(time, max(6, rest + gap), verdict, 0, gap, True)
            return cls(time, brief, verdict, rest - brief, gap, True)
        # The packet (with its seq) is cut last; the path gives way first, down to 16.
        summary = max(6, min(summary, rest - PATH_WANTED))
        return cls(time, summary, verdict, max(4, rest - summary), gap)

    @classmethod
    def for_rows(cls, width: int, rows: list[Row]) -> "Columns":
        if not rows:
            return cls.fit(width)
        return cls.fit(width, time=max(6, len(f"{max(r.time for r in rows):.3f}")),
                       summary=max(len(r.summary) for r in rows), verdict=max(len(r.label) for r in rows),
                       brief=max(len(r.brief) for r in rows))

    def cells(self, time: str, summary: str, verdict: str, path: str) -> list[tuple[str, int]]:
        out = [(time, self.time), (summary, self.summary), (verdict, self.verdict)]
        return out + [(path, self.path)] if self.path else out


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text.ljust(width)
    return text[:max(0, width - 1)] + "…"


def header_text(cols: Columns) -> Text:
    t = Text(no_wrap=True)
    for i, (text, w) in enumerate(cols.cells("secs".rjust(cols.time), "packet", "verdict",
                                              "path (request ⇒ reply)")):
        if i:
            t.append(" " * cols.gap)
        t.append(_fit(text, w))
    return t


class ListHeader(Widget):
    """Column titles over the list (the list tells it the widths)."""

    columns: Columns = Columns()

    def render(self) -> Text:
        return header_text(self.columns)


class ConversationList(ScrollView, can_focus=True):
    """A virtual list of Rows (only visible lines are rendered), so thousands of rows and
    a row set replaced ten times a second stay cheap."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]
    COMPONENT_CLASSES = {
        "conversation-list--cursor", "conversation-list--time", "conversation-list--path",
        "conversation-list--delivered", "conversation-list--answered", "conversation-list--consumed",
        "conversation-list--dropped", "conversation-list--in-flight", "conversation-list--incomplete",
    }

    class Highlighted(Message):
        """The row under the cursor changed (user: moved by a key or click)."""

        def __init__(self, row: Row | None, user: bool) -> None:
            super().__init__()
            self.row, self.user = row, user

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[Row] = []
        self.cursor = -1
        self.columns = Columns()
        self.header: ListHeader | None = None  # kept in step with the widths
        self._sent: tuple | None = None

    # -- content --------------------------------------------------------------------------
    @property
    def current(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def set_rows(self, rows: list[Row], *, follow: bool = False) -> None:
        """Replace the rows; the cursor stays on the same conversation when it is still
        there, goes to the newest row when following, else to the nearest older one."""
        keep = self.current
        self.rows = rows
        if follow and rows:
            self.cursor = len(rows) - 1
        elif keep is not None:
            self.cursor = self._index_near(keep)
        elif rows and self.cursor < 0:
            self.cursor = 0
        self.cursor = min(self.cursor, len(rows) - 1)
        self.virtual_size = Size(0, len(rows))
        self._fit_columns()
        if follow:
            self.scroll_end(animate=False, immediate=True)
        self._show_cursor()
        self.refresh()
        self._announce(user=False)

    def _index_near(self, row: Row) -> int:
        for i in range(len(self.rows) - 1, -1, -1):
            if self.rows[i] is row:
                return i
        cid = row.conv.id
        older = [i for i, r in enumerate(self.rows) if r.conv.id <= cid]
        return older[-1] if older else (0 if self.rows else -1)

    def _fit_columns(self) -> None:
        cols = Columns.for_rows(max(40, self.scrollable_content_region.width), self.rows)
        if cols != self.columns:
            self.columns = cols
            self.refresh()
            if self.header is not None:
                self.header.columns = cols
                self.header.refresh()

    def on_resize(self) -> None:
        self._fit_columns()

    def refresh_row(self, row: Row) -> None:
        self.refresh()
        if row is self.current:
            self._announce(user=False, force=True)

    def move_to(self, index: int, user: bool = True) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(index, len(self.rows) - 1))
        self._show_cursor()
        self.refresh()
        self._announce(user=user)

    def _show_cursor(self) -> None:
        if self.cursor >= 0:
            self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, immediate=True, x_axis=False)

    def _announce(self, user: bool, force: bool = False) -> None:
        row = self.current
        key = (id(row), row.version if row is not None else None)
        if force or user or key != self._sent:
            self._sent = key
            self.post_message(self.Highlighted(row, user))

    # -- keys and mouse --------------------------------------------------------------------
    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, step: int) -> None:
        self.move_to(self.cursor + step * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.rows) - 1)

    def on_click(self, event) -> None:
        y = event.y + int(self.scroll_offset.y)
        if 0 <= y < len(self.rows):
            self.move_to(y)

    # -- drawing ----------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = y + int(self.scroll_offset.y)
        if index >= len(self.rows) or width <= 0:
            return Strip.blank(width, base)
        row = self.rows[index]
        cols = self.columns
        outcome_class = "conversation-list--" + row.outcome.replace(" ", "-")
        styles = [self.get_component_rich_style("conversation-list--time", partial=True), RichStyle(),
                  self.get_component_rich_style(outcome_class, partial=True),
                  self.get_component_rich_style("conversation-list--path", partial=True)]
        text = Text(no_wrap=True, style=base)
        cells = cols.cells(f"{row.time:{cols.time}.3f}", row.brief if cols.short else row.summary, row.label,
                           row.path)
        for i, ((value, w), style) in enumerate(zip(cells, styles)):
            if i:
                text.append(" " * cols.gap)
            text.append(_fit(value, w), style)
        if index == self.cursor:
            text.stylize(self.get_component_rich_style("conversation-list--cursor", partial=True))
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(0, width, base)


class FilterBar(Input):
    """The filter line above the list: Enter applies, Escape closes it unchanged."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def action_cancel(self) -> None:
        self.app.close_filter_bar()


class Pane(VerticalScroll):
    """A scrolling pane whose content is drawn for its width: it tells the app when that
    width changes (the app's own Resize comes before the panes are laid out anew)."""

    class Resized(Message):
        pass

    _width = -1

    def on_resize(self, event) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.post_message(self.Resized())
