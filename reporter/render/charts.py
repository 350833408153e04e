"""Lean SVG charts drawn from the numbers: few nodes, one palette, readable in black and white.

A sparkline is one polyline; a bullet bar three rects and a line; the trend chart one polyline
for the values and one dashed polyline for the targets. WeasyPrint draws these fast (matplotlib's
SVG costs ~20 ms per sparkline to make and far more to draw), and the same code serves the PDF.
Every function returns markup (safe: only numbers and escaped text go in), with ``alt``, the
chart's alternative text (reporter.render.alt), as its ``<title>``: WeasyPrint writes it as the
/Alt of the chart's Figure in a tagged PDF, and a browser reads it too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from urllib.parse import quote

from markupsafe import Markup

PALETTE = {
    "on_track": "#1f7a3a",
    "at_risk": "#b26a00",
    "off_track": "#b42318",
    "no_data": "#8a8f98",
    "no_target": "#5b6b7f",
    "keep": "#1f7a3a",
    "improve": "#b26a00",
    "stop": "#b42318",
    "review": "#8a8f98",
    "ink": "#1d2433",
    "muted": "#8a8f98",
    "grid": "#d9dde3",
    "accent": "#1f4e8c",
}


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(width: float, height: float, body: str, alt: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="Report Sans" role="img" '
        f'aria-label="{escape(alt)}">'
        f"<title>{escape(alt)}</title>{body}</svg>"
    )


def no_data(width: float, height: float, text: str, alt: str) -> Markup:
    return _svg(
        width,
        height,
        f'<text x="{_f(width / 2)}" y="{_f(height / 2 + 3)}" font-size="7" text-anchor="middle" '
        f'fill="{PALETTE["muted"]}">{escape(text)}</text>',
        alt,
    )


def no_target_mark(width: float = 60, height: float = 10) -> Markup:
    """Where a KPI without a target has no attainment bar: a short grey dash, drawn as the
    background of an empty box, so that a tagged PDF holds it as an artifact (not read aloud:
    the target column already says there is none) and a browser hides it (``aria-hidden``)."""
    dash = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_f(width)}' height='{_f(height)}'>"
        f"<line x1='{_f(width / 2 - 3)}' y1='{_f(height / 2)}' x2='{_f(width / 2 + 3)}' "
        f"y2='{_f(height / 2)}' stroke='{PALETTE['muted']}' stroke-width='0.8'/></svg>"
    )
    return Markup(
        f'<span class="no-target-mark" aria-hidden="true" style="display: inline-block; '
        f"width: {_f(width)}px; height: {_f(height)}px; vertical-align: middle; "
        f'background: url(&quot;data:image/svg+xml,{escape(quote(dash))}&quot;) no-repeat"></span>'
    )


def _scale(values: Sequence[float | None], extra: Sequence[float | None] = ()) -> tuple[float, float]:
    known = [v for v in [*values, *extra] if v is not None]
    lo, hi = min(known), max(known)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    return lo, hi


def nice_ticks(lo: float, hi: float, count: int = 5, min_step: float = 0.0) -> list[float]:
    """Round ticks that cover [lo, hi]: the multiples of one step of 1, 2 or 5 × 10^k, the
    smallest such step at least (hi − lo) / (count − 1), so about ``count`` ticks and never
    more than count + 1 (and at least ``min_step``: 1 for whole numbers). 0 → 1857 gives 0,
    500, 1000, 1500, 2000; 13.1 % → 18.9 % gives 12 %, 14 %, 16 %, 18 %, 20 %."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    exponent = math.floor(math.log10(raw))
    step = 10.0**exponent
    for multiple in (1, 2, 5, 10):
        step = multiple * 10.0**exponent
        if step >= raw * (1 - 1e-9):
            break
    step = max(step, min_step)
    first = math.floor(lo / step * (1 + 1e-12) + 1e-9)
    last = math.ceil(hi / step * (1 - 1e-12) - 1e-9)
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(k * step, digits) + 0.0 for k in range(first, last + 1)]


def tick_decimals(ticks: Sequence[float], scale: float = 1.0) -> int:
    """The decimals that write every tick exactly, the same for all (``scale``: 100 for a
    percent, whose 0.05 is written 5)."""
    if len(ticks) < 2:
        return 0
    step = abs(ticks[1] - ticks[0]) * scale
    return max(0, -math.floor(math.log10(step) + 1e-9))


def sparkline(
    values: Sequence[float | None], no_data_text: str, alt: str, width: float = 76, height: float = 18
) -> Markup:
    """The 12-period trend as one polyline, with a dot on the last value."""
    if all(v is None for v in values):
        return no_data(width, height, no_data_text, alt)
    lo, hi = _scale(values)
    step = width / max(len(values) - 1, 1)
    pad = 2.0
    points = []
    for i, v in enumerate(values):
        if v is not None:
            y = pad + (height - 2 * pad) * (1 - (v - lo) / (hi - lo))
            points.append((i * step, y))
    path = " ".join(f"{_f(x)},{_f(y)}" for x, y in points)
    last_x, last_y = points[-1]
    return _svg(
        width,
        height,
        f'<polyline points="{path}" fill="none" stroke="{PALETTE["accent"]}" stroke-width="1.2"/>'
        f'<circle cx="{_f(last_x)}" cy="{_f(last_y)}" r="1.8" fill="{PALETTE["ink"]}"/>',
        alt,
    )


def bullet(attainment: float | None, status: str, alt: str, width: float = 60, height: float = 10) -> Markup:
    """Attainment as a bar on a 0–150 % scale with a tick at 100 %."""
    if attainment is None:
        return no_data(width, height, "—", alt)
    scale = 1.5
    filled = max(0.0, min(attainment, scale)) / scale * width
    target_x = width / scale
    colour = PALETTE.get(status, PALETTE["accent"])
    return _svg(
        width,
        height,
        f'<rect x="0" y="2" width="{_f(width)}" height="{_f(height - 4)}" fill="{PALETTE["grid"]}"/>'
        f'<rect x="0" y="2" width="{_f(filled)}" height="{_f(height - 4)}" fill="{colour}"/>'
        f'<line x1="{_f(target_x)}" y1="0" x2="{_f(target_x)}" y2="{_f(height)}" '
        f'stroke="{PALETTE["ink"]}" stroke-width="1.2"/>',
        alt,
    )


def trend(
    labels: Sequence[str],
    values: Sequence[float | None],
    targets: Sequence[float | None],
    fmt_value: Callable[[float, int], str],
    texts: dict[str, str],
    width: float = 460,
    height: float = 120,
    *,
    scale: float = 1.0,
    whole: bool = False,
) -> Markup:
    """Values (solid) and targets (dashed) over the series, axis labels under each point;
    ``texts``: ``no_data`` (printed when there is none) and ``alt``. The value axis has round
    ticks (``nice_ticks``), all written by ``fmt_value(tick, decimals)`` with the same decimals
    (``scale``: 100 for a percent; ``whole``: no step under 1, for counts)."""
    if all(v is None for v in values):
        return no_data(width, height, texts["no_data"], texts["alt"])
    left, right, top, bottom = 58.0, 8.0, 8.0, 18.0
    lo, hi = _scale(values, targets)
    lo = min(lo, 0.0) if lo >= 0 and lo < (hi - lo) else lo
    ticks = nice_ticks(lo, hi, 5, 1.0 if whole else 0.0)
    decimals = tick_decimals(ticks, scale)
    lo, hi = ticks[0], ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(values) - 1, 1)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts = []
    for tick in ticks:
        parts.append(
            f'<line x1="{_f(left)}" y1="{_f(y(tick))}" x2="{_f(width - right)}" y2="{_f(y(tick))}" '
            f'stroke="{PALETTE["grid"]}" stroke-width="0.6"/>'
            f'<text x="{_f(left - 4)}" y="{_f(y(tick) + 2.5)}" font-size="7" text-anchor="end" '
            f'fill="{PALETTE["muted"]}">{escape(fmt_value(tick, decimals))}</text>'
        )
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{_f(left + i * step)}" y="{_f(height - 5)}" font-size="7" text-anchor="middle" '
            f'fill="{PALETTE["muted"]}">{escape(label)}</text>'
        )
    known_targets = [(i, t) for i, t in enumerate(targets) if t is not None]
    if known_targets:
        pts = " ".join(f"{_f(left + i * step)},{_f(y(t))}" for i, t in known_targets)
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{PALETTE["ink"]}" stroke-width="1" '
            f'stroke-dasharray="4 3"/>'
        )
    pts = " ".join(f"{_f(left + i * step)},{_f(y(v))}" for i, v in enumerate(values) if v is not None)
    parts.append(f'<polyline points="{pts}" fill="none" stroke="{PALETTE["accent"]}" stroke-width="1.8"/>')
    last = max(i for i, v in enumerate(values) if v is not None)
    parts.append(
        f'<circle cx="{_f(left + last * step)}" cy="{_f(y(values[last]))}" r="2.6" '  # type: ignore[arg-type]
        f'fill="{PALETTE["accent"]}"/>'
    )
    return _svg(width, height, "".join(parts), texts["alt"])


def funnel(
    stages: Sequence[tuple[str, float | None, str]], alt: str, width: float = 460, row: float = 20
) -> Markup:
    """Stages as centred bars; widths on a logarithmic scale so that late stages stay visible."""
    known = [v for _, v, _ in stages if v]
    if not known:
        return no_data(width, row * 2, "—", alt)
    top = math.log10(max(known) + 1)
    parts = []
    for i, (label, value, text) in enumerate(stages):
        share = math.log10((value or 0) + 1) / top if top else 0
        w = max(6.0, share * (width - 170))
        x = 120 + ((width - 170) - w) / 2
        parts.append(
            f'<text x="{_f(width)}" y="{_f(i * row + row * 0.65)}" font-size="9" text-anchor="end" '
            f'fill="{PALETTE["ink"]}">{escape(text)}</text>'
        )
        parts.append(
            f'<text x="0" y="{_f(i * row + row * 0.65)}" font-size="9" fill="{PALETTE["ink"]}">'
            f"{escape(label)}</text>"
            f'<rect x="{_f(x)}" y="{_f(i * row + 2)}" width="{_f(w)}" height="{_f(row - 4)}" '
            f'fill="{PALETTE["accent"]}" fill-opacity="{_f(1 - i * 0.1)}"/>'
        )
    return _svg(width, row * len(stages), "".join(parts), alt)


def ratio_bars(
    rows: Sequence[tuple[str, float | None, str, str]],
    keep: float,
    improve: float,
    alt: str,
    width: float = 460,
    row: float = 16,
) -> Markup:
    """Portfolio: value/cost per key as bars (label, ratio, verdict, ratio as text), with the
    improve and keep thresholds as dashed lines. The scale stops at twice the keep threshold so
    the thresholds stay readable; a longer bar ends in an arrow and shows its value."""
    label_w, text_w = 120.0, 40.0
    known = [r for _, r, _, _ in rows if r is not None]
    top = min(max([*known, keep * 1.2]), keep * 2) or 1.0
    plot = width - label_w - text_w
    parts = []
    for i, (label, ratio, verdict, text) in enumerate(rows):
        yy = i * row
        parts.append(
            f'<text x="0" y="{_f(yy + row * 0.68)}" font-size="9" fill="{PALETTE["ink"]}">'
            f"{escape(label)}</text>"
        )
        if ratio is not None:
            w = max(1.0, min(ratio, top) / top * plot)
            colour = PALETTE.get(verdict, PALETTE["accent"])
            parts.append(
                f'<rect x="{_f(label_w)}" y="{_f(yy + 3)}" width="{_f(w)}" height="{_f(row - 6)}" '
                f'fill="{colour}"/>'
            )
            if ratio > top:
                tip = label_w + w
                parts.append(
                    f'<polygon points="{_f(tip)},{_f(yy + 1)} {_f(tip + 6)},{_f(yy + row / 2)} '
                    f'{_f(tip)},{_f(yy + row - 1)}" fill="{colour}"/>'
                )
            parts.append(
                f'<text x="{_f(label_w + w + 9)}" y="{_f(yy + row * 0.68)}" font-size="9" '
                f'fill="{PALETTE["ink"]}">{escape(text)}</text>'
            )
    height = row * len(rows) + 4
    for threshold in (improve, keep):
        x = label_w + threshold / top * plot
        parts.append(
            f'<line x1="{_f(x)}" y1="0" x2="{_f(x)}" y2="{_f(height)}" stroke="{PALETTE["ink"]}" '
            f'stroke-width="0.8" stroke-dasharray="3 2"/>'
        )
    return _svg(width, height, "".join(parts), alt)
