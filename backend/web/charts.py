"""The clinic's charts: one SVG implementation for the timeline, the alert page, the consult
summary and the cohort page.

Drawn on the server (no script; presentation attributes only, so the strict CSP holds and
printing is exact). A day chart has a date axis, a y axis, lines or bars per series, and per
day a column whose title reads that day's values ("3 dec.: gemiddelde pijn 6, ergste pijn
8") on hover and to a screen reader; after the chart the same values as a table, folded in a
<details>, for the keyboard (one Tab stop, not one per day). Levels
(the baseline, an expected pain level) are labelled lines; an alert's window is a shaded band;
alerts are ▼ markers at the top, as the legend shows them. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from markupsafe import Markup, escape

from backend.platform import formatting

INK = "#1b1f24"
MUTED = "#555d66"
GRID = "#e1e4e8"
MARKER_COLOURS = {"urgent": "#c8372d", "high": "#a35f00", "routine": "#555d66"}
LEVEL_FILL = {0: "#e8f3ea", 1: "#f6e7a8", 2: "#f0a35e", 3: "#c8372d"}
MARKER = "▼"


# What a chart says instead of empty axes when it has nothing to draw in its period.
NO_DATA = "Nog geen gegevens in deze periode."
# The fold under a chart with its values as a table.
TABLE_SUMMARY = "Waarden per dag als tabel"


def num(x: float) -> str:
    """A value as a chart reads it: one decimal, none when it is whole ("2", "6,5"): a count,
    or a pain score whose mean is whole, never reads "1,0"."""
    rounded = formatting.round_half_up(float(x), 1)
    return formatting.number(rounded, 0 if rounded.is_integer() else 1)


def tick(x: float) -> str:
    """An axis value with the decimals it needs: 0, 5, 10 (never 0,0 5,0 10); 1,5 for a half."""
    return formatting.setting(x)


def robust_top(values: Sequence[float], floor: float) -> float:
    """A bar chart's scale that one odd day does not set (a day of 30 rescue doses among days
    of 1-3 would flatten them all): the highest value (at least `floor`), unless that is more
    than a quarter above 1.5 times the 90th percentile of the values; then that is the top,
    and a bar above it is cut there and says its number (`DayChart._bars`)."""
    if not values:
        return floor
    ordered = sorted(values)
    usual = max(floor, float(math.ceil(1.5 * ordered[int(0.9 * (len(ordered) - 1))])))
    return max(floor, ordered[-1]) if ordered[-1] <= 1.25 * usual else usual


@dataclass
class Series:
    """Values by day; `bars` draws bars instead of a line (a gap in the days is a gap)."""

    name: str
    values: Mapping[date, float]
    colour: str = INK
    dash: str = ""
    bars: bool = False
    # How a value reads in the title ("6", "6,5 uur"); default: the number.
    unit: str = ""

    def text(self, v: float) -> str:
        return f"{num(v)}{' ' + self.unit if self.unit else ''}"


@dataclass
class Level:
    """A horizontal line from `start` to `end` (inclusive), with its label."""

    value: float
    label: str
    start: date
    end: date
    colour: str = "#0b5cad"
    dash: str = "6 4"


@dataclass
class Marker:
    day: date
    severity: str
    title: str


@dataclass
class DayChart:
    title: str
    first: date
    last: date
    top: float
    height: int = 160
    width: int = 720
    series: list[Series] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    # Shaded day ranges (an alert's window), with a title.
    bands: list[tuple[date, date, str]] = field(default_factory=list)
    # Extra words per day for the day's title (e.g. "notitie").
    extra: Mapping[date, str] = field(default_factory=dict)
    # Categorical rows instead of a y axis (side effects): (label, values 0-3 by day).
    strips: list[tuple[str, Mapping[date, float], Mapping[int, str]]] = field(default_factory=list)
    left: int = 70
    right: int = 14
    pad_top: int = 16
    bottom: int = 24

    @property
    def n(self) -> int:
        return (self.last - self.first).days + 1

    def x(self, d: date) -> float:
        span = self.width - self.left - self.right
        return self.left + span * ((d - self.first).days + 0.5) / self.n

    def y(self, v: float) -> float:
        inner = self.height - self.pad_top - self.bottom
        return self.pad_top + inner * (1 - min(max(v, 0.0), self.top) / self.top)

    @property
    def day_width(self) -> float:
        return (self.width - self.left - self.right) / self.n

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.n)]

    def has_data(self) -> bool:
        """Whether any series or strip has a value in the chart's days."""
        return any(
            self.first <= d <= self.last
            for values in [*(s.values for s in self.series), *(v for _, v, _ in self.strips)]
            for d in values
        )

    def svg(self) -> Markup:
        if not self.has_data():
            # No empty axes: a sentence says there is nothing yet (the title names the chart).
            return Markup(
                f'<p class="chart-empty" role="note" aria-label="{escape(self.title)}">{escape(NO_DATA)}</p>'
            )
        w, h = self.width, self.height
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
            f'role="group" aria-label="{escape(self.title)}" class="chart">'
        ]
        if self.strips:
            self._strips(out)
        else:
            self._y_axis(out)
        self._date_axis(out)
        for start, end, title in self.bands:
            x0 = self.x(max(start, self.first)) - self.day_width / 2
            x1 = self.x(min(end, self.last)) + self.day_width / 2
            if x1 > x0:
                out.append(
                    f'<rect x="{x0:.1f}" y="{self.pad_top}" width="{x1 - x0:.1f}" '
                    f'height="{h - self.pad_top - self.bottom}" fill="#fbe9c6">'
                    f"<title>{escape(title)}</title></rect>"
                )
        for level in self.levels:
            self._level(out, level)
        for s in self.series:
            (self._bars if s.bars else self._line)(out, s)
        for m in self.markers:
            if self.first <= m.day <= self.last:
                out.append(
                    f'<text x="{self.x(m.day):.1f}" y="{self.pad_top - 3}" font-size="12" '
                    f'text-anchor="middle" fill="{MARKER_COLOURS.get(m.severity, MUTED)}">{MARKER}'
                    f"<title>{escape(m.title)}</title></text>"
                )
        self._day_columns(out)
        out.append("</svg>")
        return Markup("".join(out))

    # -- parts ------------------------------------------------------------------------------
    def _y_axis(self, out: list[str]) -> None:
        ticks = [0.0, self.top / 2, self.top]
        for t in ticks:
            yy = self.y(t)
            out.append(
                f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{yy:.1f}" y2="{yy:.1f}" '
                f'stroke="{GRID}"/><text x="{self.left - 6}" y="{yy + 4:.1f}" font-size="11" '
                f'text-anchor="end" fill="{MUTED}">{tick(t)}</text>'
            )

    def _date_axis(self, out: list[str]) -> None:
        n = self.n
        every = max(1, round(n / 7))
        base = self.height - 6
        for i, d in enumerate(self.days()):
            if (i % every == 0 and n - 1 - i >= every / 2) or i == n - 1:
                xx = self.x(d)
                out.append(
                    f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{self.height - self.bottom}" '
                    f'y2="{self.height - self.bottom + 4}" stroke="{MUTED}"/>'
                    f'<text x="{xx:.1f}" y="{base}" font-size="11" text-anchor="middle" '
                    f'fill="{MUTED}">{escape(formatting.day(d, year=False))}</text>'
                )

    def _level(self, out: list[str], level: Level) -> None:
        start, end = max(level.start, self.first), min(level.end, self.last)
        if end < start:
            return
        yy = self.y(level.value)
        x0 = self.x(start) - self.day_width / 2
        x1 = self.x(end) + self.day_width / 2
        out.append(
            f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{level.colour}" '
            f'stroke-width="1.5" stroke-dasharray="{level.dash}"><title>{escape(level.label)}</title></line>'
            f'<text x="{x1:.1f}" y="{yy - 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="{level.colour}">{escape(level.label)}</text>'
        )

    def _line(self, out: list[str], s: Series) -> None:
        path: list[str] = []
        prev: date | None = None
        for d, v in sorted(s.values.items()):
            if not self.first <= d <= self.last:
                continue
            joined = prev is not None and (d - prev).days == 1
            path.append(("L" if joined else "M") + f"{self.x(d):.1f},{self.y(v):.1f}")
            prev = d
        if path:
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>')
        for d, v in s.values.items():
            if self.first <= d <= self.last:
                out.append(f'<circle cx="{self.x(d):.1f}" cy="{self.y(v):.1f}" r="2.5" fill="{s.colour}"/>')

    def _bars(self, out: list[str], s: Series) -> None:
        bw = self.day_width * 0.7
        for d, v in s.values.items():
            if self.first <= d <= self.last and v > 0:
                xx = self.x(d)
                out.append(
                    f'<rect x="{xx - bw / 2:.1f}" y="{self.y(v):.1f}" width="{bw:.1f}" '
                    f'height="{self.y(0) - self.y(v):.1f}" fill="{s.colour}"/>'
                )
                if v > self.top:  # cut at the top: a break across the bar, its number above it
                    yy = self.y(self.top) + 6
                    out.append(
                        f'<path class="cut" d="M{xx - bw / 2 - 1:.1f},{yy + 2:.1f}L{xx + bw / 2 + 1:.1f},'
                        f'{yy - 2:.1f}" stroke="#fff" stroke-width="3"/>'
                        f'<text class="cut" aria-hidden="true" x="{xx:.1f}" y="{self.pad_top - 3}" '
                        f'font-size="11" text-anchor="middle" fill="{INK}">{num(v)}</text>'
                    )

    def _strips(self, out: list[str]) -> None:
        row = (self.height - self.pad_top - self.bottom) / max(len(self.strips), 1)
        for r, (label, values, _words) in enumerate(self.strips):
            top = self.pad_top + r * row
            out.append(
                f'<text x="{self.left - 6}" y="{top + row / 2 + 4:.1f}" font-size="11" text-anchor="end" '
                f'fill="{MUTED}">{escape(label)}</text>'
            )
            for d, v in values.items():
                if self.first <= d <= self.last:
                    out.append(
                        f'<rect x="{self.x(d) - self.day_width / 2:.1f}" y="{top + 1:.1f}" '
                        f'width="{self.day_width:.1f}" height="{row - 2:.1f}" '
                        f'fill="{LEVEL_FILL.get(int(v), "#999")}"/>'
                    )

    def html(self) -> Markup:
        """The chart as a page shows it: the SVG, then its values as a table (folded away)."""
        return self.svg() + self.table()

    def table(self) -> Markup:
        """The chart's values per day as a table in a <details> (one Tab stop: a keyboard or
        screen-reader user reads the days there instead of stepping through every column)."""
        days = [d for d in self.days() if self._day_title(d) is not None]
        if not days:
            return Markup("")
        heads = [s.name for s in self.series] + [label for label, _, _ in self.strips]
        if any(d in self.extra for d in days):
            heads.append("Opmerking")
        head = "".join(f'<th scope="col">{escape(h)}</th>' for h in heads)
        out = [
            f'<details class="chart-table"><summary>{escape(TABLE_SUMMARY)}</summary>'
            f"<table><caption>{escape(self.title)}</caption>"
            f'<thead><tr><th scope="col">Dag</th>{head}</tr></thead><tbody>'
        ]
        for d in days:
            cells = [s.text(s.values[d]) if d in s.values else "–" for s in self.series]
            cells += [
                words.get(int(v), num(v)) if (v := vals.get(d)) is not None else "–"
                for _, vals, words in self.strips
            ]
            if len(cells) < len(heads):
                cells.append(self.extra.get(d, ""))
            row = "".join(f"<td>{escape(c)}</td>" for c in cells)
            out.append(f'<tr><th scope="row">{escape(formatting.day(d))}</th>{row}</tr>')
        out.append("</tbody></table></details>")
        return Markup("".join(out))

    def _day_title(self, d: date) -> str | None:
        parts = [f"{s.name} {s.text(s.values[d])}" for s in self.series if d in s.values]
        parts += [
            f"{label} {words.get(int(v), num(v))}"
            for label, vals, words in self.strips
            if (v := vals.get(d)) is not None
        ]
        if d in self.extra:
            parts.append(self.extra[d])
        if not parts:
            return None
        return f"{formatting.day(d, year=False)}: {', '.join(parts)}"

    def _day_columns(self, out: list[str]) -> None:
        # One column per day with values: its title is what hover and a screen reader give; the
        # text after it (hidden until the pointer is on its column, by timeline.css) shows the
        # values on the chart itself. Drawn last so they are on top. Not a Tab stop each (90 per
        # chart): the keyboard reads the values in the table after the chart (`table`).
        top, height = self.pad_top, self.height - self.pad_top - self.bottom
        for d in self.days():
            title = self._day_title(d)
            if title is None:
                continue
            xx = self.x(d)
            anchor = "start" if xx < self.width / 2 else "end"
            out.append(
                f'<rect class="day" role="img" aria-label="{escape(title)}" '
                f'x="{xx - self.day_width / 2:.1f}" y="{top}" width="{self.day_width:.1f}" '
                f'height="{height}" fill="transparent"><title>{escape(title)}</title></rect>'
                f'<text class="day-value" aria-hidden="true" x="{xx:.1f}" y="{top + 11}" font-size="12" '
                f'text-anchor="{anchor}" fill="{INK}" stroke="#fff" stroke-width="3" '
                f'paint-order="stroke" pointer-events="none">{escape(title)}</text>'
            )


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float | None]],
    *,
    top: float = 10,
    width: int = 560,
    height: int = 200,
) -> Markup:
    """Bars by category (the cohort's median pain per time point); "–" where no value."""
    left, right, pad_top, bottom = 34, 10, 14, 30
    plot_w, plot_h = width - left - right, height - pad_top - bottom
    slot = plot_w / max(len(bars), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>'
    ]
    for v in (0, top / 2, top):
        yy = pad_top + plot_h * (1 - v / top)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="{MUTED}">{tick(v)}</text>'
        )
    for i, (label, value) in enumerate(bars):
        cx = left + slot * (i + 0.5)
        out.append(
            f'<text x="{cx:.1f}" y="{height - 10}" font-size="11" text-anchor="middle" '
            f'fill="{MUTED}">{escape(label)}</text>'
        )
        if value is None:
            out.append(
                f'<text x="{cx:.1f}" y="{pad_top + plot_h - 4}" font-size="11" text-anchor="middle" '
                f'fill="{MUTED}">–</text>'
            )
            continue
        bh = plot_h * min(value, top) / top
        out.append(
            f'<rect x="{cx - slot * 0.3:.1f}" y="{pad_top + plot_h - bh:.1f}" width="{slot * 0.6:.1f}" '
            f'height="{bh:.1f}" fill="#0b5cad"/><text x="{cx:.1f}" y="{pad_top + plot_h - bh - 4:.1f}" '
            f'font-size="11" text-anchor="middle" fill="{INK}">{num(value)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))
