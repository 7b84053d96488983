"""Fitting table columns to the terminal: widths from the content, priorities for what
goes first when space runs out, and shortening from the end that carries least.

A table declares its columns once (``Col``); ``fit_columns`` turns the widest value seen
in each column and the width on screen into the width each column gets (0: dropped). Every
table of the TUI (the DataTables and the virtual event table) is laid out by this one
function, so they all follow the same rules:

1. a column is as wide as its widest value, up to its ``cap``; numbers are never cut
   (``min=None``: the column needs its whole content);
2. when the columns do not fit, each shrinks toward its ``min``, the least important
   (lowest ``priority``) first; when even the minimums do not fit, the least important
   columns are dropped whole, so no table is ever wider than the screen;
3. room left over goes to the columns whose values are longer than their cap, those that
   need least first.

Values are shortened by the column's ``shorten`` rule, each keeping the part that tells
values apart: the end of a message is cut, a path keeps its head and its last segments
(``analytics/…/web/base 1.2.2``, then ``…/web/base 1.2.2``), an identifier keeps both
ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

ELLIPSIS = "…"

Shorten = Callable[[Text, int], Text]

#: Fewest cells of a path's first segment worth keeping before an ellipsis.
MIN_HEAD = 6


def _head(text: Text, cells: int) -> Text:
    """The longest start of ``text`` that fits in ``cells``."""
    if cells <= 0:
        return Text("")
    used = 0
    for i, ch in enumerate(text.plain):
        used += cell_len(ch)
        if used > cells:
            return text[:i]
    return text.copy()


def _tail(text: Text, cells: int) -> Text:
    """The longest end of ``text`` that fits in ``cells``."""
    if cells <= 0:
        return Text("")
    plain = text.plain
    used = 0
    for i in range(len(plain) - 1, -1, -1):
        used += cell_len(plain[i])
        if used > cells:
            return text[i + 1 :]
    return text.copy()


def _join(*parts: Text | str) -> Text:
    out = Text(no_wrap=True, end="")
    for part in parts:
        if isinstance(part, str):
            out.append(part, style="dim")
        else:
            out.append_text(part)
    return out


def cut_end(text: Text, width: int) -> Text:
    """``a long message…``: for prose, whose start says what it is about."""
    if text.cell_len <= width:
        return text
    if width <= 1:
        return _head(text, width)
    return _join(_head(text, width - 1), ELLIPSIS)


def cut_start(text: Text, width: int) -> Text:
    """``…of the value``: for values whose end tells them apart."""
    if text.cell_len <= width:
        return text
    if width <= 1:
        return _tail(text, width)
    return _join(ELLIPSIS, _tail(text, width - 1))


def cut_middle(text: Text, width: int) -> Text:
    """``abcdef…uvwxyz``: for identifiers, where both ends count."""
    if text.cell_len <= width:
        return text
    if width <= 2:
        return _head(text, width)
    keep = width - 1
    head = (keep + 1) // 2
    return _join(_head(text, head), ELLIPSIS, _tail(text, keep - head))


def cut_path(separators: str = "/") -> Shorten:
    """Shorten a path (``a/b/c/d``, ``a.b.c``) by whole segments. The last segments tell
    paths apart most, so the longest tail that fits wins; before it goes, in this order,
    the first segment (``mediawiki.….web_base``), or the start of it when it is all that
    was cut (``product_me….web_base``), or nothing (``…/web/base 1.2.2``). A last segment
    too long on its own keeps both its ends."""

    def shorten(text: Text, width: int) -> Text:
        if text.cell_len <= width:
            return text
        plain = text.plain
        cuts = [i for i, ch in enumerate(plain) if ch in separators]
        if not cuts:
            return cut_middle(text, width)
        first = cuts[0]
        for start in cuts:
            tail = text[start:]
            if start > first:
                head = text[: first + 1]
                if head.cell_len + 1 + tail.cell_len <= width:
                    return _join(head, ELLIPSIS, tail)
            else:
                room = width - 1 - tail.cell_len
                if room >= MIN_HEAD and start > MIN_HEAD:
                    return _join(_head(text, room), ELLIPSIS, tail)
            for rest in (tail, text[start + 1 :]):
                if 1 + rest.cell_len <= width:
                    return _join(ELLIPSIS, rest)
        last = text[cuts[-1] + 1 :]
        if last.cell_len <= width:  # fits, but only without the mark that it was cut
            return _join(ELLIPSIS, _tail(last, width - 1))
        return cut_middle(last, width)

    return shorten


@dataclass(frozen=True, slots=True)
class Col:
    """One column of a table.

    ``priority``: higher stays longer when space runs out. ``min``: the narrowest width
    at which the column still tells its values apart (None: its whole content, for
    numbers, times and badges). ``cap``: the widest it gets before the others have what
    they need. ``shorten``: how a value is cut to the width the column gets.
    """

    key: str
    title: str
    priority: int = 50
    min: int | None = None
    cap: int = 40
    shorten: Shorten = cut_end
    #: The title when the column is narrower than ``title`` (``num`` for ``numerator``).
    short: str | None = None

    def natural(self, content: int) -> int:
        """The width this column wants for content ``content`` cells wide at most."""
        return max(content, cell_len(self.title), 1)

    def least(self, content: int) -> int:
        """The narrowest this column can be and still be worth showing."""
        if self.min is None:
            return max(content, cell_len(self.short or self.title), 1)
        return min(self.min, self.natural(content))

    def heading(self, width: int) -> str:
        """The title as a column ``width`` cells wide shows it."""
        if cell_len(self.title) <= width:
            return self.title
        if self.short is not None and cell_len(self.short) <= width:
            return self.short
        return cut_end(Text(self.title), width).plain


def fit_columns(cols: Sequence[Col], content: Sequence[int], width: int, gap: int) -> list[int]:
    """The width of each column (0: dropped) for ``width`` cells, ``gap`` cells between
    (or around) columns; ``content`` is the widest value seen in each column."""
    natural = [c.natural(w) for c, w in zip(cols, content, strict=True)]
    least = [c.least(w) for c, w in zip(cols, content, strict=True)]
    wanted = [max(lo, min(n, c.cap)) for c, n, lo in zip(cols, natural, least, strict=True)]
    shown = list(range(len(cols)))

    def needed(widths: Sequence[int]) -> int:
        return sum(widths[i] for i in shown) + gap * len(shown)

    # Drop the least important columns until the rest fit at their minimum.
    by_priority = sorted(shown, key=lambda i: (cols[i].priority, -i))
    while shown and needed(least) > width:
        shown.remove(by_priority.pop(0))
    widths = [least[i] if i in shown else 0 for i in range(len(cols))]
    spare = width - needed(widths)
    # Grow toward what each wants (its content, up to its cap), most important first;
    # then past the cap for the columns whose values are longer still, the ones that need
    # least first (so that one very long column does not take the room of all the others).
    important_first = sorted(shown, key=lambda i: (-cols[i].priority, i))
    least_need_first = sorted(shown, key=lambda i: (natural[i] - wanted[i], i))
    for target, order in ((wanted, important_first), (natural, least_need_first)):
        for i in order:
            grow = min(spare, target[i] - widths[i])
            if grow > 0:
                widths[i] += grow
                spare -= grow
    return widths
