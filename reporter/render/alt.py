"""Alternative text for the charts, written from the numbers they draw, in the report's language.

A screen reader reads it in place of the chart (the PDF's /Alt of each Figure; ``<title>`` and
``aria-label`` in a browser), e.g. "Visites du site sur 12 mois : de 48 210 en novembre 2025 à
51 695 en octobre 2026, plus haut en octobre 2026". Numbers are formatted as the report prints
them; the words come from the template catalogs (templates/locale/*.po).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reporter.periods import Period
from reporter.render.context import Formatter

UNITS = {"month": "months", "quarter": "quarters", "week": "weeks"}


class AltText:
    """The alternative texts of one report: ``formatter`` for numbers, dates and words."""

    def __init__(self, formatter: Formatter, grain: str) -> None:
        self.formatter = formatter
        self.grain = grain
        self._ = formatter._

    def period(self, label: str) -> str:
        """A series point's period in words: "octobre 2026", "T4 2026", "semaine 43 de 2026"."""
        start = Period.parse(label, self.grain).start.isoformat()  # type: ignore[arg-type]
        return self.formatter.period(label, start, self.grain)

    def series(
        self, label: str, points: Sequence[tuple[str, float | None]], fmt: Callable[[float | None], str]
    ) -> str:
        """A KPI over its periods: first and last known values and where it peaked."""
        known = [(p, v) for p, v in points if v is not None]
        if not known:
            return self._("%(label)s: no data") % {"label": label}
        if len(known) == 1:
            ((period, value),) = known
            return self._("%(label)s: %(value)s in %(period)s") % {
                "label": label,
                "value": fmt(value),
                "period": self.period(period),
            }
        (first_period, first), (last_period, last) = known[0], known[-1]
        high_period = max(known, key=lambda point: point[1])[0]
        text = self._(
            "%(label)s over %(count)s %(unit)s: from %(first)s in %(first_period)s to %(last)s in "
            "%(last_period)s, highest in %(high_period)s"
        )
        return text % {
            "label": label,
            "count": len(points),
            "unit": self._(UNITS.get(self.grain, "months")),
            "first": fmt(first),
            "first_period": self.period(first_period),
            "last": fmt(last),
            "last_period": self.period(last_period),
            "high_period": self.period(high_period),
        }

    def trend(
        self,
        label: str,
        points: Sequence[tuple[str, float | None]],
        targets: Sequence[float | None],
        fmt: Callable[[float | None], str],
    ) -> str:
        """An objective's chart: its KPI over the periods, and the target of the last period."""
        text = self.series(label, points, fmt)
        if points and targets and targets[-1] is not None:
            text += self._("; target %(target)s in %(period)s") % {
                "target": fmt(targets[-1]),
                "period": self.period(points[-1][0]),
            }
        return text

    def bullet(self, label: str, attainment: float | None, status: str) -> str:
        """A KPI's attainment of its target (``status`` says why there is none)."""
        if attainment is None:
            if status == "no_target":
                return self._("%(label)s: no target") % {"label": label}
            if status == "no_data":
                return self._("%(label)s: no data") % {"label": label}
            return self._("%(label)s: attainment not known") % {"label": label}
        return self._("%(label)s: %(attainment)s of target") % {
            "label": label,
            "attainment": self.formatter.attainment(attainment),
        }

    def funnel(self, stages: Sequence[tuple[str, float | None]]) -> str:
        listed = ", ".join(f"{label} {self.formatter.value(value, 'integer')}" for label, value in stages)
        return self._("Funnel: %(stages)s") % {"stages": listed}

    def portfolio(self, by: str, rows: Sequence[tuple[str, float | None, str]]) -> str:
        value = self.formatter.value
        listed = ", ".join(f"{key} {value(ratio, 'ratio')} ({self._(v).lower()})" for key, ratio, v in rows)
        return self._("Value ÷ cost by %(by)s: %(rows)s") % {"by": by, "rows": listed}
