"""Charts as inline SVG drawn on the server: no script, no outside library.
Each is a picture (role="img" with a label) with its figures in <title>
tooltips; the page prints the same figures beside it as text and a table.

``columns`` draws a series over time (positive, or signed like NPS);
``rows`` draws labelled horizontal bars; ``grid`` shades a table of shares
(cohort retention)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
INK = "currentColor"


def _svg(label: str, height: int, body: str, *, width: int = WIDTH, natural: bool = False) -> Markup:
    """``natural``: drawn at its own size (a grid keeps legible cells and
    scrolls on a phone) instead of filling the width."""
    size = f'width="{width}" height="{height}"' if natural else 'width="100%"'
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" {size} role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" font-size="15">{body}</svg>'
    )


def _number(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f") if float(value).is_integer() else f"{value:,.2f}"


def columns(label: str, points: Sequence[tuple[str, float | None]], *, signed: bool = False) -> Markup:
    """Bars for a series (``(label, value)``, None for no value), with the
    axis' top, zero and (signed) bottom written at the left."""
    height, left, bottom, top = 220, 48, 28, 12
    values = [v for _l, v in points if v is not None]
    high = max([*values, 0]) or 1
    low = min([*values, 0]) if signed else 0
    if signed and low == 0 and high == 1:
        high, low = 100, -100
    span = (high - low) or 1
    plot_h = height - top - bottom
    plot_w = WIDTH - left - 8

    def y(value: float) -> float:
        return top + (high - value) / span * plot_h

    step = plot_w / max(len(points), 1)
    bar = max(step * 0.78, 1)
    parts = [f'<line x1="{left}" x2="{WIDTH - 8}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{INK}" '
             f'stroke-opacity=".4"/>']
    marks = {high, 0.0, low} if signed else {high, 0.0}
    for mark in sorted(marks):
        parts.append(f'<text x="{left - 6}" y="{y(mark) + 4:.1f}" text-anchor="end" fill="{INK}">'
                     f'{_number(mark)}</text>')
    every = max(1, round(len(points) / 6))
    for index, (name, value) in enumerate(points):
        x = left + index * step + (step - bar) / 2
        if value is not None:
            y0, y1 = sorted((y(0), y(value)))
            kind = "bar bar-negative" if value < 0 else "bar"
            parts.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{bar:.1f}" height="{max(y1 - y0, 0.5):.1f}" '
                         f'class="{kind}"><title>{escape(name)}: {_number(value)}</title></rect>')
        if index % every == 0 or index == len(points) - 1 and len(points) <= 12:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="middle" fill="{INK}">'
                         f'{escape(name)}</text>')
    return _svg(label, height, "".join(parts))


def rows(label: str, items: Sequence[tuple[str, float, str]]) -> Markup:
    """One horizontal bar per ``(name, value, value as written)``."""
    line, name_w, text_w = 32, 190, 130
    height = max(len(items), 1) * line + 8
    high = max([v for _n, v, _t in items] + [0]) or 1
    plot_w = WIDTH - name_w - text_w
    parts = []
    for index, (name, value, written) in enumerate(items):
        y = 4 + index * line
        width = max(value, 0) / high * plot_w
        parts.append(f'<text x="{name_w - 8}" y="{y + 19}" text-anchor="end" fill="{INK}">{escape(name)}</text>'
                     f'<rect x="{name_w}" y="{y + 5}" width="{max(width, 1):.1f}" height="{line - 10}" rx="3" '
                     f'class="bar"><title>{escape(name)}: {escape(written)}</title></rect>'
                     f'<text x="{name_w + width + 6:.1f}" y="{y + 19}" fill="{INK}">{escape(written)}</text>')
    return _svg(label, height, "".join(parts))


def grid(label: str, row_names: Sequence[str], column_names: Sequence[str],
         cells: Sequence[Sequence[float | None]], written: Sequence[Sequence[str]]) -> Markup:
    """A table of shares (0 to 1) shaded by value; None leaves a cell empty."""
    name_w, head, cell_h, cell_w = 80, 26, 30, 54
    width = name_w + cell_w * max(len(column_names), 1) + 4
    height = head + cell_h * max(len(row_names), 1) + 4
    parts = [f'<text x="{name_w + i * cell_w + cell_w / 2:.1f}" y="17" text-anchor="middle" fill="{INK}">'
             f'{escape(column)}</text>' for i, column in enumerate(column_names)]
    for r, name in enumerate(row_names):
        y = head + r * cell_h
        parts.append(f'<text x="{name_w - 8}" y="{y + 18}" text-anchor="end" fill="{INK}">{escape(name)}</text>')
        for c, value in enumerate(cells[r]):
            if value is None:
                continue
            x = name_w + c * cell_w
            parts.append(f'<rect x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2:.1f}" height="{cell_h - 2}" '
                         f'class="bar" fill-opacity="{0.08 + 0.92 * value:.2f}"><title>{escape(name)}, '
                         f'{escape(column_names[c])}: {escape(written[r][c])}</title></rect>'
                         f'<text x="{x + cell_w / 2:.1f}" y="{y + 18}" text-anchor="middle" '
                         f'fill="{"#fff" if value > 0.5 else INK}">{escape(written[r][c])}</text>')
    return _svg(label, height, "".join(parts), width=width, natural=True)
