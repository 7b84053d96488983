"""A DataTable whose columns fit the screen: sized by content, dropped by priority,
values shortened by each column's rule (:mod:`mpsandbox.tui.fit`).

DataTable sizes a column by its widest value, without bound and without regard for the
screen: one long value pushes every column after it off the right edge. Here each cell is
a ``Fit``, which keeps the whole value (``str()`` and ``get_row`` still give it) and
shortens itself to the width its column gets when drawn; the widths come from
``fit_columns`` each time the content or the size changes. A dropped column is 0 wide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from mpsandbox.tui.fit import Col, Shorten, cut_end, fit_columns

#: Blank cells around each value (DataTable's own cell padding is 0, so that a dropped
#: column takes no room at all).
PAD = 1


class Fit:
    """A cell value that shortens itself, by its column's rule, to the width it is drawn
    at (that width includes the blank cell either side)."""

    __slots__ = ("shorten", "text")

    def __init__(self, value: object, shorten: Shorten) -> None:
        if isinstance(value, Fit):
            value = value.text
        # A str is shown as it is (DataTable would read it as markup).
        self.text = value if isinstance(value, Text) else Text("" if value is None else str(value))
        self.shorten = shorten

    @property
    def width(self) -> int:
        return self.text.cell_len

    def shown(self, width: int) -> Text:
        """The value as a column ``width`` cells wide (padding excluded) shows it."""
        return self.shorten(self.text, width)

    def __str__(self) -> str:
        return self.text.plain

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width + 2 * PAD
        return Measurement(width, width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        inner = options.max_width - 2 * PAD
        if inner <= 0:
            return
        text = self.shown(inner).copy()
        text.no_wrap = True
        text.end = ""
        justify = self.text.justify if self.text.justify in ("right", "center") else "left"
        text.align(justify, inner)
        line = Text(" " * PAD, no_wrap=True, end="")
        line.append_text(text)
        line.append(" " * PAD)
        yield line


class FittedTable(DataTable):
    """A row-cursor DataTable laid out by its column declarations (``Col``)."""

    def __init__(
        self,
        columns: Sequence[Col],
        *,
        id: str | None = None,
        classes: str | None = None,
        zebra_stripes: bool = True,
    ) -> None:
        super().__init__(
            id=id, classes=classes, cursor_type="row", zebra_stripes=zebra_stripes, cell_padding=0
        )
        self.specs: tuple[Col, ...] = tuple(columns)
        self._index = {c.key: i for i, c in enumerate(self.specs)}
        #: The widest value seen in each column since the last clear.
        self._content = [0] * len(self.specs)
        #: The width each column has now (0: dropped), padding excluded.
        self.widths: list[int] = [0] * len(self.specs)
        self._fit_pending = False

    # -- columns and content ----------------------------------------------------------------
    def _ensure_columns(self) -> None:
        if not self.columns:
            for col in self.specs:
                super().add_column(Text(col.title), key=col.key, width=0)

    def on_mount(self) -> None:
        self._ensure_columns()
        self._fit()

    def add_row(
        self,
        *cells: Any,
        height: int | None = 1,
        key: str | None = None,
        label: Any = None,
    ) -> RowKey:
        self._ensure_columns()
        wrapped = [Fit(c, spec.shorten) for c, spec in zip(cells, self.specs, strict=False)]
        for i, cell in enumerate(wrapped):
            if cell.width > self._content[i]:
                self._content[i] = cell.width
        self._schedule_fit()
        return super().add_row(*wrapped, height=height, key=key, label=label)

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: Any,
        *,
        update_width: bool = False,
    ) -> None:
        i = self._index.get(str(getattr(column_key, "value", column_key)))
        spec = self.specs[i] if i is not None else None
        cell = Fit(value, spec.shorten if spec is not None else cut_end)
        if i is not None and cell.width > self._content[i]:
            self._content[i] = cell.width
            self._schedule_fit()
        super().update_cell(row_key, column_key, cell, update_width=False)

    def clear(self, columns: bool = False) -> FittedTable:
        super().clear(columns=columns)
        self._content = [0] * len(self.specs)
        self._schedule_fit()
        return self

    # -- layout -----------------------------------------------------------------------------
    def _schedule_fit(self) -> None:
        if not self._fit_pending and self.is_attached:
            self._fit_pending = True
            self.call_later(self._fit)

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    @property
    def available_width(self) -> int:
        """The cells the columns may take: the table's width, less its vertical scrollbar
        (always counted, so that the columns do not shift when it comes and goes)."""
        return max(0, self.size.width - self.styles.scrollbar_size_vertical)

    def _fit(self) -> None:
        self._fit_pending = False
        if not self.columns or not self.size.width:
            return
        widths = fit_columns(self.specs, self._content, self.available_width, gap=2 * PAD)
        if widths == self.widths:
            return
        self.widths = widths
        for spec, width in zip(self.specs, widths, strict=True):
            column = self.columns[ColumnKey(spec.key)]
            column.auto_width = False
            column.width = width + 2 * PAD if width else 0
            title = spec.heading(width)
            column.label = (
                Text(f"{' ' * PAD}{title}{' ' * PAD}", style="bold") if width else Text("")
            )
        total = sum(c.get_render_width(self) for c in self.columns.values())
        self.virtual_size = Size(total, self.virtual_size.height)
        self.notify_style_update()  # drops the rendered cells and repaints

    # -- reading what is shown ------------------------------------------------------------
    def width_of(self, key: str) -> int:
        """The width column ``key`` has now (0: dropped), padding excluded."""
        return self.widths[self._index[key]]

    def shown_text(self, row_index: int, key: str) -> str:
        """The text column ``key`` shows for row ``row_index`` ('' when dropped)."""
        width = self.width_of(key)
        cell = self.get_row_at(row_index)[self._index[key]]
        if not width or not isinstance(cell, Fit):
            return ""
        return cell.shown(width).plain

    def value(self, row_key: RowKey | str, key: str) -> Text:
        """The whole value of a cell, as given (not shortened)."""
        cell = self.get_cell(row_key, key)
        return cell.text if isinstance(cell, Fit) else Text(str(cell))
