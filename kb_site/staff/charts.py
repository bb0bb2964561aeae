"""Charts drawn on the server as SVG: no script, no CDN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

LABELS = 7  # at most this many labels under the bars; more would run into each other on a phone


def bar_chart(rows: list[dict[str, Any]], x: str, y: str, *, title: str, label: Callable[[Any], str] = str,
              tip: Callable[[Any], str] | None = None, width: int = 720, height: int = 220) -> Markup:
    """Return an accessible SVG bar chart of ``rows[y]`` by ``rows[x]``: one bar a row, a zero bar for 0.

    ``label`` names a row's ``x`` under its bar (the last bar always has one); ``tip`` in its tooltip.
    """
    tip = tip or label
    top = max((int(r[y]) for r in rows), default=0) or 1
    left, bottom, pad = 44, 30, 8  # room for the labels, which a phone's stylesheet draws larger
    plot_w, plot_h = width - left - pad, height - bottom - pad
    step = plot_w / max(len(rows), 1)
    bars = []
    for i, row in enumerate(rows):
        value = int(row[y])
        h = plot_h * value / top
        bars.append(
            f'<rect x="{left + i * step + 1:.1f}" y="{pad + plot_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="#1f5f4a"><title>{escape(tip(row[x]))}: {value}</title></rect>')
    labels = []
    every = -(-len(rows) // LABELS)  # rounded up
    for i in range(len(rows) - 1, -1, -every):  # counted back from the last bar (today), which is always named
        # Under the middle of its bar; the last one, under a narrow bar, ends at the bar's edge (not past the chart's).
        end = i == len(rows) - 1 and step < 80
        labels.append(f'<text class="day" x="{left + (i + (1 if end else .5)) * step:.1f}" y="{height - 6}" '
                      f'font-size="11" text-anchor="{"end" if end else "middle"}" fill="#55605a">'
                      f'{escape(label(rows[i][x]))}</text>')
    axis = (f'<text class="axis" x="{left - 6}" y="{pad + 10}" font-size="11" text-anchor="end" fill="#55605a">'
            f'{top}</text><text class="axis" x="{left - 6}" y="{pad + plot_h}" font-size="11" text-anchor="end" '
            f'fill="#55605a">0</text>'
            f'<line x1="{left}" y1="{pad + plot_h}" x2="{width - pad}" y2="{pad + plot_h}" stroke="#d5dbd7"/>')
    total = sum(int(r[y]) for r in rows)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMid meet" role="img" '
        f'aria-label="{escape(title)}: {total} in total, at most {top} a day" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(title)}</title>{axis}{"".join(bars)}{"".join(reversed(labels))}</svg>')
