"""Insights in words: one sentence each, from the report's catalogue (plural forms through
gettext), every number formatted by Babel from the insight's own fields and nothing else, so a
sentence can never say a number that results.json does not hold.

The sentences go into each insight's ``text`` before results.json is written; the PDF and the
digest print that text."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

from babel.dates import format_date, format_skeleton

from reporter.config.labels import Labels, breakdown_id
from reporter.config.model import Config
from reporter.formulas import parse
from reporter.periods import Period
from reporter.render.context import DASH, MINUS, Formatter, join_sign, translations
from reporter.results import ObjectiveResult, Results

# The unit of a period, for "the highest in 35 months".
_UNITS: dict[str, tuple[str, str]] = {
    "month": ("%(num)d month", "%(num)d months"),
    "quarter": ("%(num)d quarter", "%(num)d quarters"),
    "week": ("%(num)d week", "%(num)d weeks"),
}


class _Words:
    def __init__(self, results: Results, fmt: Formatter, labels: Labels | None = None):
        self.results = results
        self.fmt = fmt
        self.labels = labels
        catalog = translations(fmt.locale.language)
        self._ = catalog.gettext
        self.n_ = catalog.ngettext

    def kpi(self, name: str) -> str:
        if self.labels is not None:
            return self.labels.kpi(name)
        k = self.results.kpis.get(name)
        return k.label if k and k.label else name.replace("_", " ")

    def value(self, name: str, v: float | None) -> str:
        k = self.results.kpis.get(name)
        return self.fmt.value(v, k.format if k else "number", self.decimals(name))

    def decimals(self, name: str) -> int | None:
        """The decimals of every number a sentence says about KPI ``name``: the KPI's own
        ``decimals``; else, for a format whose decimals follow the size of the number
        (currency, number), those of the KPI's value in P as its scorecard writes it (its
        previous value when P has none), so that the numbers about one KPI read alike and as
        the tables write it: a CAC of 1 810 € is projected at 873 €, not 873,26 €, and a spend of
        59 723 € moved −510 € on LinkedIn, not −509,86 €. None: each number its own."""
        config = self.labels.config if self.labels is not None else None
        own = config.kpis[name].decimals if config is not None and name in config.kpis else None
        k = self.results.kpis.get(name)
        if own is not None or k is None or k.format not in ("currency", "number"):
            return own
        shown = k.value if k.value is not None else k.previous
        return None if shown is None else self.fmt.sized_decimals(shown, k.format)

    def signed(self, name: str, v: float | None) -> str:
        """A difference in the KPI's unit, signed; in points for a KPI whose changes are
        ("+5,8 pts" for a rate, "−0,8 pts" for a score)."""
        if v is None:
            return DASH
        k = self.results.kpis.get(name)
        # a KPI shown in points has its changes in points (a rate's difference always is)
        in_points = k is not None and {k.change_pp_vs_previous, k.change_pp_vs_prior_year} != {None}
        if k is not None and (k.format == "percent" or in_points):
            return self.fmt.points(v, k.format)
        text = self.value(name, abs(v))
        return text if v == 0 else join_sign("+" if v > 0 else MINUS, text)

    def share(self, v: float | None) -> str:
        return self.fmt.attainment(v) if v is not None else DASH

    def key(self, k: Any, breakdown: str = "") -> str:
        """A breakdown's value as shown: its label (``breakdowns[].values``), else as it is."""
        if k is None:
            return self._("(none)")
        return self.labels.breakdown_value(breakdown, k) if self.labels is not None else str(k)

    def noun(self, breakdown: str) -> str | None:
        """What a breakdown's keys are, when the configuration names it (its ``label``), as a
        noun inside a sentence: in lower case ("campaign"; a label like "MQL" kept as it is),
        as written in German, which capitalises nouns. None when the breakdown has no label."""
        if self.labels is None:
            return None
        bd = next((b for b in self.labels.config.breakdowns if breakdown_id(b) == breakdown), None)
        label = self.labels.text(bd.label) if bd is not None else None
        if not label:
            return None
        return self.inline(label)

    def inline(self, label: str) -> str:
        """A label inside a sentence: its first letter lowered ("marketing spend"), except in
        German, which capitalises nouns, and for a label like "MQL"."""
        if self.fmt.locale.language == "de" or label[1:2].isupper():
            return label
        return label[:1].lower() + label[1:]

    def elided(self, template: str, noun: str) -> str:
        """French elides "de" before a vowel or a mute h: "valeurs d'origine", not "de origine"."""
        if self.fmt.locale.language == "fr" and noun[:1].lower() in "aeiouyhàâéèêëîïôûü":
            return template.replace("de %(noun)s", "d'%(noun)s")
        return template

    def periods(self, n: int) -> str:
        one, many = _UNITS[self.results.grain]
        return self.n_(one, many, n) % {"num": n}


def _unusual(w: _Words, i: dict[str, Any]) -> str:
    """What is unusual, against the usual value (the median of the 12 periods before) and,
    when known, the same period last year: a yearly event is judged against its own season
    too, so the reader sees both ("108.8%, above 100.3% in October 2025 and a usual 97.8%")."""
    # the robust z-score stays in results.json: the sentence is for people who read "unusual"
    kpi = i["kpi"]
    words = {"kpi": w.kpi(kpi), "value": w.value(kpi, i["value"]), "median": w.value(kpi, i["median"])}
    last = i.get("prior_year_value")
    if last is None:
        return w._("%(kpi)s is unusual this period: %(value)s, against a usual %(median)s.") % words
    year_ago = Period.parse(w.results.period, w.results.grain).prior_year()  # type: ignore[arg-type]
    words["when"] = w.fmt.period(year_ago.label, year_ago.start.isoformat(), year_ago.grain)
    words["last"] = w.value(kpi, last)
    if i["value"] > last and i["value"] > i["median"]:
        template = w._(
            "%(kpi)s is unusual this period: %(value)s, above %(last)s in %(when)s and a usual %(median)s."
        )
    elif i["value"] < last and i["value"] < i["median"]:
        template = w._(
            "%(kpi)s is unusual this period: %(value)s, below %(last)s in %(when)s and a usual %(median)s."
        )
    else:  # between the two
        template = w._(
            "%(kpi)s is unusual this period: %(value)s, against %(last)s in %(when)s and a usual %(median)s."
        )
    return template % words


def _record(w: _Words, i: dict[str, Any]) -> str:
    words = {"kpi": w.kpi(i["kpi"]), "periods": w.periods(i["periods"])}
    if i["kind"] == "high":
        return w._("%(kpi)s: the highest in %(periods)s.") % words
    return w._("%(kpi)s: the lowest in %(periods)s.") % words


def _contributors(w: _Words, i: dict[str, Any]) -> str:
    kpi = i["kpi"]
    parts = [_item(w, i, item) for item in i["items"]]
    listed = (
        parts[0]
        if len(parts) == 1
        else w._("%(first)s and %(last)s")
        % {
            "first": ", ".join(parts[:-1]),
            "last": parts[-1],
        }
    )
    words = {"kpi": w.kpi(kpi), "change": w.signed(kpi, i["change"]), "parts": listed}
    # the keys listed make the whole change (no other key moved): "from", not "mostly from"
    whole = math.isclose(
        math.fsum(item["part"] for item in i["items"]), i["change"], rel_tol=1e-9, abs_tol=1e-12
    )
    # "mostly from" only when every key listed went the way the whole did; else the keys are
    # the largest contributions, some against the total. Each number is a key's contribution
    # to the KPI's change, never the key's own change: a key's conversion that fell 5.8 points
    # may have pulled the total down by 2.4 (docs/insights.md), so the sentence says so
    along = all(item["part"] * i["change"] > 0 for item in i["items"])
    if i["vs"] == "previous":
        if whole:
            return w._("%(kpi)s %(change)s on the previous period, from %(parts)s.") % words
        if along:
            return w._("%(kpi)s %(change)s on the previous period, mostly from %(parts)s.") % words
        return (
            w._("%(kpi)s %(change)s on the previous period; largest contributions to that change: %(parts)s.")
            % words
        )
    if whole:
        return w._("%(kpi)s %(change)s on last year, from %(parts)s.") % words
    if along:
        return w._("%(kpi)s %(change)s on last year, mostly from %(parts)s.") % words
    return w._("%(kpi)s %(change)s on last year; largest contributions to that change: %(parts)s.") % words


def _item(w: _Words, i: dict[str, Any], item: dict[str, Any]) -> str:
    """One part of a change: a key and its part, or the keys that are new (or gone) together."""
    words = {"part": w.signed(i["kpi"], item["part"]), "num": item.get("count", 0)}
    group = item.get("group")
    if group == "returning":
        return _returning(w, i, item, words)
    if group == "off_season":
        return _off_season(w, item, words, i.get("breakdown", ""))
    noun = w.noun(i.get("breakdown", ""))
    if group is not None and noun is not None:
        return _group_named(w, item, words | {"noun": noun}, i.get("breakdown", ""))
    if group is not None and item["count"] == 1:
        words["key"] = w.key(item["key"], i.get("breakdown", ""))
        if group == "new":
            return w._("%(key)s (new, %(part)s)") % words
        return w._("%(key)s (gone, %(part)s)") % words
    if group == "new":
        return w.n_("%(num)d new entry (%(part)s)", "%(num)d new entries (%(part)s)", words["num"]) % words
    if group == "gone":
        return w.n_("%(num)d entry gone (%(part)s)", "%(num)d entries gone (%(part)s)", words["num"]) % words
    return w._("%(key)s (%(part)s)") % {
        "key": w.key(item["key"], i.get("breakdown", "")),
        "part": words["part"],
    }


def _returning(w: _Words, i: dict[str, Any], item: dict[str, Any], words: dict[str, Any]) -> str:
    """Keys absent the previous period but there one year before P: not new, they recur (a
    trade fair held every October), so the sentence says when they were there and, for a KPI
    that is the metric itself, how much: "Salon Paris Expo (+€34,460; also in October 2025:
    €27,150)". The key's own name says what it is: no noun to make agree."""
    year_ago = Period.parse(w.results.period, w.results.grain).prior_year()  # type: ignore[arg-type]
    words["when"] = w.fmt.period(year_ago.label, year_ago.start.isoformat(), year_ago.grain)
    last = item.get("prior_year")
    if last is not None:
        words["last"] = w.value(i["kpi"], last)
    if item["count"] == 1:
        words["key"] = w.key(item["key"], i.get("breakdown", ""))
        if last is None:
            return w._("%(key)s (%(part)s; also in %(when)s)") % words
        return w._("%(key)s (%(part)s; also in %(when)s: %(last)s)") % words
    if last is None:
        return (
            w.n_(
                "%(num)d entry also in %(when)s (%(part)s)",
                "%(num)d entries also in %(when)s (%(part)s)",
                words["num"],
            )
            % words
        )
    return (
        w.n_(
            "%(num)d entry also in %(when)s (%(part)s; %(last)s then)",
            "%(num)d entries also in %(when)s (%(part)s; %(last)s then)",
            words["num"],
        )
        % words
    )


def _off_season(w: _Words, item: dict[str, Any], words: dict[str, Any], breakdown: str) -> str:
    """Keys there the previous period, not in P, and absent one year before P too, after being
    there the period before that (a trade fair in October, never in November): not gone, they
    left as they do every year, and the sentence says so: "Paris Expo trade fair (−€27,150; off
    season, as in November 2024)"."""
    year_ago = Period.parse(w.results.period, w.results.grain).prior_year()  # type: ignore[arg-type]
    words["when"] = w.fmt.period(year_ago.label, year_ago.start.isoformat(), year_ago.grain)
    if item["count"] == 1:
        words["key"] = w.key(item["key"], breakdown)
        return w._("%(key)s (%(part)s; off season, as in %(when)s)") % words
    return (
        w.n_(
            "%(num)d entry off season, as in %(when)s (%(part)s)",
            "%(num)d entries off season, as in %(when)s (%(part)s)",
            words["num"],
        )
        % words
    )


def _group_named(w: _Words, item: dict[str, Any], words: dict[str, Any], breakdown: str) -> str:
    """The new (or gone) keys of a breakdown whose label names what they are ("Campaign"): the
    label is never inflected (the configuration gives no plural or gender), the catalogue's
    own noun ("value", "valeur", "Wert") carries the number and the agreement: "3 new campaign
    values", "3 nouvelles valeurs de campagne", "Salon Paris Expo (new campaign, +€34,460)"."""
    if item["count"] == 1:
        words["key"] = w.key(item["key"], breakdown)
        if item["group"] == "new":
            template = w._("%(key)s (new %(noun)s, %(part)s)")
        else:
            template = w._("%(key)s (%(noun)s gone, %(part)s)")
    elif item["group"] == "new":
        template = w.n_(
            "%(num)d new %(noun)s value (%(part)s)", "%(num)d new %(noun)s values (%(part)s)", words["num"]
        )
    else:
        template = w.n_(
            "%(num)d %(noun)s value gone (%(part)s)", "%(num)d %(noun)s values gone (%(part)s)", words["num"]
        )
    return w.elided(template, words["noun"]) % words


def _concentration(w: _Words, i: dict[str, Any]) -> str:
    return w._("%(kpi)s: %(share)s from %(key)s alone.") % {
        "key": w.key(i["key"], i.get("breakdown", "")),
        "share": w.share(i["share"]),
        "kpi": w.kpi(i["kpi"]),
    }


def _seasonal(w: _Words, i: dict[str, Any]) -> str:
    kpi = i["kpi"]
    words = {
        "kpi": w.kpi(kpi),
        "value": w.value(kpi, i["value"]),
        "median": w.value(kpi, i["median"]),
        "last": w.value(kpi, i["prior_year_value"]),
    }
    if w.results.grain == "month":
        words["month"] = format_date(
            dt.date.fromisoformat(w.results.period_start), "LLLL", locale=w.fmt.locale
        )
        return (
            w._(
                "%(kpi)s: %(value)s against a usual %(median)s, as every year in %(month)s "
                "(%(last)s last year)."
            )
            % words
        )
    return (
        w._("%(kpi)s: %(value)s against a usual %(median)s, as at this time every year (%(last)s last year).")
        % words
    )


def _pacing(w: _Words, i: dict[str, Any]) -> str:
    kpi = i["kpi"]
    when = _horizon(w, i)
    words = {
        "projected": w.value(kpi, i["projected"]),
        "goal": w.value(kpi, i["goal"]),
        "when": when,
        "needed": w.value(kpi, i["needed_per_period"]),
        "kpi": w.kpi(kpi),  # not the objective's title: a title may hold numbers of its own
        "per": {"month": w._("per month"), "quarter": w._("per quarter"), "week": w._("per week")}[
            w.results.grain
        ],
        "period": _goal_period(w, i),
    }
    if i["needed_per_period"] is not None:
        return (
            w._(
                "%(kpi)s — at the current pace: %(projected)s %(when)s for a goal of %(goal)s; "
                "%(needed)s needed %(per)s from here."
            )
            % words
        )
    # a projection held to the KPI's range (``limit``): the line would run past what the KPI can
    # be (an NPS over 100); the bound is said as a bound, never as a forecast of that value
    limit = i.get("limit")
    if i.get("method") == "seasonal":
        if limit == "ceiling":
            return (
                w._(
                    "%(kpi)s — following last year's season: it would reach its ceiling, %(projected)s, "
                    "in %(period)s, for a goal of %(goal)s."
                )
                % words
            )
        if limit == "floor":
            return (
                w._(
                    "%(kpi)s — following last year's season: it would fall to its floor, %(projected)s, "
                    "in %(period)s, for a goal of %(goal)s."
                )
                % words
            )
        return (
            w._("%(kpi)s — following last year's season: %(projected)s for a goal of %(goal)s in %(period)s.")
            % words
        )
    if limit == "ceiling":
        return (
            w._(
                "%(kpi)s — on the current trend: it would reach its ceiling, %(projected)s, by %(period)s, "
                "for a goal of %(goal)s."
            )
            % words
        )
    if limit == "floor":
        return (
            w._(
                "%(kpi)s — on the current trend: it would fall to its floor, %(projected)s, by %(period)s, "
                "for a goal of %(goal)s."
            )
            % words
        )
    return w._("%(kpi)s — on the current trend: %(projected)s for a goal of %(goal)s in %(period)s.") % words


def _due(w: _Words, i: dict[str, Any]) -> Period:
    """The period holding the objective's due date (D), ``periods_left`` after P."""
    return Period.parse(w.results.period, w.results.grain).shift(i["periods_left"])  # type: ignore[arg-type]


def _month(w: _Words, due: Period) -> str:
    """A month by its name ("December") in P's year, with its year in another ("December 2027",
    "diciembre de 2027": the language's own month-and-year pattern): "December" alone would
    read as this December."""
    if due.start.year == dt.date.fromisoformat(w.results.period_start).year:
        return format_date(due.start, "LLLL", locale=w.fmt.locale)
    return format_skeleton("yMMMM", due.start, locale=w.fmt.locale)


def _goal_period(w: _Words, i: dict[str, Any]) -> str:
    """The period the goal is the target of (the one holding the due date): a month by its
    name ("December", "December 2027"), another period in words ("Q4 2026")."""
    due = _due(w, i)
    if due.grain == "month":
        return _month(w, due)
    return w.fmt.period(due.label, due.start.isoformat(), due.grain)


def _horizon(w: _Words, i: dict[str, Any]) -> str:
    """ "at the end of December" for months (a month's name holds no number; its year when it
    is not P's); else "in 3 weeks"."""
    if w.results.grain == "month":
        return w._("at the end of %(month)s") % {"month": _month(w, _due(w, i))}
    return w._("in %(periods)s") % {"periods": w.periods(i["periods_left"])}


def _shown_as(w: _Words, name: str) -> str | None:
    """The KPI that shows a ratio's part ``name``: the KPI whose formula is that name (a
    metric's own KPI), else the KPI of that name when it is no metric; none when the report
    shows it nowhere."""
    kpis = w.results.kpis
    own = next((k for k, r in kpis.items() if r.formula.strip() == name), None)
    if own is not None:
        return own
    metrics = w.labels.config.metrics if w.labels is not None else {}
    return name if name in kpis and name not in metrics else None


def _ratio_list(w: _Words, i: dict[str, Any], above: Collection[str] = ()) -> str | None:
    """The parts of a ratio that moved, numerator first, each with its change in its own unit
    (the unit of the KPI that shows it; for a metric the report shows nowhere, that of the
    other part when the ratio is a share or a ratio of like things, else a plain number):
    "marketing spend +33 018 €, new customers −4". A part whose KPI a takeaway above already
    told is marked so, its cause is told there: "(see above)". None when no part moved."""
    listed = []
    kpi = w.results.kpis.get(i["kpi"])
    shows = [_shown_as(w, part["name"]) for part in i["parts"]]
    for part, shown, other in zip(i["parts"], shows, reversed(shows), strict=True):
        change = part["change"]
        if change == 0:
            continue  # the other part made the whole change
        name = part["name"]
        if shown is None and kpi is not None and kpi.format in ("percent", "ratio"):
            shown = other  # a share or a ratio of like things: both parts in one unit (spend, budget)
        if w.labels is not None and name in w.labels.config.metrics:
            label = w.labels.metric(name)
        else:
            label = w.kpi(shown or name)
        if shown is not None:
            figure = w.signed(shown, change)
        else:
            figure = join_sign("+" if change > 0 else MINUS, w.fmt.value(abs(change), "number"))
        text = f"{w.inline(label)} {figure}"
        if name in above or (shown is not None and shown in above):
            text = w._("%(part)s (see above)") % {"part": text}
        listed.append(text)
    return ", ".join(listed) or None


def _ratio_parts(w: _Words, i: dict[str, Any], above: Collection[str] = ()) -> str:
    """A ratio's change on the previous period and what moved it: "Customer acquisition cost
    (CAC) +€1,088 on the previous period; marketing spend +€33,018, new customers −4"."""
    kpi = i["kpi"]
    words = {"kpi": w.kpi(kpi), "change": w.signed(kpi, i["change"]), "parts": _ratio_list(w, i, above)}
    return w._("%(kpi)s %(change)s on the previous period; %(parts)s.") % words


_WRITERS: dict[str, Callable[[_Words, dict[str, Any]], str]] = {
    "unusual_change": _unusual,
    "seasonal": _seasonal,
    "record": _record,
    "contributors": _contributors,
    "concentration": _concentration,
    "pacing": _pacing,
    "ratio_parts": _ratio_parts,
}


def write_texts(results: Results, fmt: Formatter, labels: Labels | None = None) -> None:
    """Give every insight its sentence (in place); with ``labels``, KPIs and breakdown values
    are named by the configuration's labels in the formatter's language."""
    words = _Words(results, fmt, labels)
    for insight in results.insights:
        insight["text"] = _WRITERS[insight["type"]](words, insight)


# --- the takeaways: one per event, the why beside the what -------------------------------------

_WHAT = ("unusual_change", "seasonal", "record")


def metrics_of(config: Config, kpi: str) -> set[str]:
    """The metrics a KPI reads, directly or through other KPIs."""
    out: set[str] = set()
    for ref in parse(config.kpis[kpi].formula).names:
        if ref in config.metrics:
            out.add(ref)
        elif ref in config.kpis and ref != kpi:
            out |= metrics_of(config, ref)
    return out


def _why(w: _Words, i: dict[str, Any], named: bool = False) -> str:
    """A contributors insight as the clause that follows what happened: the change and its
    biggest part ("+33 018 € on the previous period, of which Salon Paris Expo (new, +34 460 €)").
    ``named``: the clause is about another KPI than the sentence it follows (the spend behind a
    budget overrun), and names it."""
    kpi = i["kpi"]
    words = {"change": w.signed(kpi, i["change"]), "part": _item(w, i, i["items"][0]), "kpi": w.kpi(kpi)}
    if named:
        if i["vs"] == "previous":
            return w._("%(kpi)s %(change)s on the previous period, of which %(part)s.") % words
        return w._("%(kpi)s %(change)s on last year, of which %(part)s.") % words
    if i["vs"] == "previous":
        return w._("%(change)s on the previous period, of which %(part)s.") % words
    return w._("%(change)s on last year, of which %(part)s.") % words


def over_target(config: Config, results: Results) -> dict[str, ObjectiveResult]:
    """The KPIs over their cap this period: lower is better and the value of an objective on
    the KPI is above its target (marketing spend over its budget, a CAC above its ceiling)."""
    out: dict[str, ObjectiveResult] = {}
    for o in results.objectives:
        kpi = config.kpis.get(o.kpi)
        over = o.value is not None and o.target is not None and o.value > o.target
        if kpi is not None and kpi.direction == "down" and over:
            out.setdefault(o.kpi, o)
    return out


def _overrun(
    config: Config,
    ranked: list[dict[str, Any]],
    over: Mapping[str, ObjectiveResult],
    reads: set[str],
    done: tuple[set[str], set[int]],
) -> int | None:
    """The best-ranked sentence on a KPI over its cap that shares a metric with ``reads``, not
    told yet: what happened this period first (unusual, seasonal, record), else its pace when off
    pace. It is told in that place."""
    taken, used = done
    for kinds in (_WHAT, ("pacing",)):
        for j, x in enumerate(ranked):
            if j in used or x.get("kpi") not in over or x["type"] not in kinds or x.get("on_pace") is True:
                continue
            theirs = metrics_of(config, x["kpi"])
            if theirs & reads and not theirs & taken:
                return j
    return None


def _pair(
    config: Config,
    ranked: list[dict[str, Any]],
    index: int,
    used: set[int],
    over: Mapping[str, ObjectiveResult],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What happened and why, as one takeaway: a KPI's unusual, seasonal or record sentence and
    its best contributors, whichever comes first. A KPI over its cap with no contributors of
    its own takes those of a KPI that reads only its metrics (the spend behind the budget)."""
    insight = ranked[index]
    kpi = insight["kpi"]
    if insight["type"] == "contributors":
        found = next((j for j, x in enumerate(ranked) if x["type"] in _WHAT and x.get("kpi") == kpi), None)
        if found is None:
            return insight, None
        used.add(found)
        return ranked[found], insight
    if insight["type"] not in _WHAT:
        return insight, None
    found = next(
        (j for j, x in enumerate(ranked) if x["type"] == "contributors" and x.get("kpi") == kpi), None
    )
    if found is None and kpi in over:
        reads = metrics_of(config, kpi)
        found = next(
            (
                j
                for j, x in enumerate(ranked)
                if j not in used and x["type"] == "contributors" and metrics_of(config, x["kpi"]) <= reads
            ),
            None,
        )
    if found is None:
        return insight, None
    used.add(found)
    return insight, ranked[found]


# An objective over its cap (lower is better, at risk or off track) is told among the takeaways
# with the score of an off-pace objective plus how far it is over (at most BREACH_MAX over).
BREACH_SCORE, BREACH_MAX = 4.0, 3.0


def _breaches(config: Config, results: Results, over: Mapping[str, ObjectiveResult]) -> list[dict[str, Any]]:
    """A takeaway candidate for each KPI over its cap whose objective is at risk or off track
    (a CAC above its ceiling), scored ``BREACH_SCORE`` + its overshoot ((value − cap) / |cap|,
    at most ``BREACH_MAX``): above a mere record (3) or an objective off pace (4), so the worst
    news of the period is not left out of the first lines."""
    out = []
    for kpi, o in over.items():
        if o.status not in ("off_track", "at_risk") or o.value is None or not o.target:
            continue
        overshoot = min((o.value - o.target) / abs(o.target), BREACH_MAX)
        out.append({"type": "breach", "kpi": kpi, "objective": o.id, "score": BREACH_SCORE + overshoot})
    return out


def _breach_text(w: _Words, o: ObjectiveResult, parts: str | None = None) -> str:
    """A KPI over its cap, in the takeaways' style: its value against its target, and the
    previous period's value (a cumulative objective: the year to date against its target);
    with ``parts`` (a ratio's parts that moved since, ``_ratio_list``), what moved it."""
    kpi = o.kpi
    words = {"kpi": w.kpi(kpi), "value": w.value(kpi, o.value), "target": w.value(kpi, o.target)}
    if o.cumulative:
        return w._("%(kpi)s, year to date: %(value)s, above its target of %(target)s.") % words
    k = w.results.kpis.get(kpi)
    previous = k.previous if k is not None else None
    if previous is None:
        return w._("%(kpi)s: %(value)s, above its target of %(target)s.") % words
    words["previous"] = w.value(kpi, previous)
    if parts is not None:
        return w._(
            "%(kpi)s: %(value)s, above its target of %(target)s (%(previous)s the previous period): "
            "%(parts)s."
        ) % {**words, "parts": parts}
    return (
        w._("%(kpi)s: %(value)s, above its target of %(target)s (%(previous)s the previous period).") % words
    )


def _parts_of(ranked: list[dict[str, Any]], kpi: str) -> dict[str, Any] | None:
    """The ``ratio_parts`` insight of ``kpi``, if any."""
    return next((x for x in ranked if x["type"] == "ratio_parts" and x.get("kpi") == kpi), None)


def _breach_alone(
    config: Config,
    words: _Words,
    ranked: list[dict[str, Any]],
    objective: ObjectiveResult,
    done: tuple[set[str], set[int]],
    above: set[str],
) -> str:
    """The takeaway of a KPI over its cap that no insight tells: its value against its target,
    and why. A ratio whose parts moved (``ratio_parts``): in the same sentence, which of them
    moved and by how much, a part already told above marked so. Else the best unused
    contributors sentence on the previous period of it or of a KPI that reads only its metrics
    (the same comparison as the sentence's). ``above``: the KPIs told so far; the KPI whose
    contributors it tells joins them."""
    taken, used = done
    kpi = objective.kpi
    reads = metrics_of(config, kpi)
    parts = _parts_of(ranked, kpi)
    listed = None if parts is None or objective.cumulative else _ratio_list(words, parts, above)
    text = _breach_text(words, objective, listed)
    if listed is not None:  # (an insight on P and its previous period: the previous value is known)
        return text
    for j, x in enumerate(ranked):
        if j in used or x["type"] != "contributors" or x.get("vs") != "previous":
            continue
        theirs = metrics_of(config, x["kpi"])
        if (x["kpi"] == kpi or theirs <= reads) and not theirs & taken:
            used.add(j)
            above.add(x["kpi"])
            return text + " " + _why(words, x, named=x["kpi"] != kpi)
    return text


def _joined(
    words: _Words,
    what: dict[str, Any],
    why: dict[str, Any] | None,
    over: Mapping[str, ObjectiveResult],
    parts: dict[str, Any] | None = None,
    above: Collection[str] = (),
) -> str:
    """A takeaway: what happened, the cap it is above (a KPI over its cap, unless the sentence
    is its pace or the objective is judged on the year to date), and why: its contributors,
    else, for a ratio over its cap, its ``parts`` (``ratio_parts``)."""
    kpi, text = what["kpi"], str(what["text"])
    capped = kpi in over and what["type"] != "pacing" and not over[kpi].cumulative
    if capped:
        text += " " + words._("Above its target of %(target)s.") % {
            "target": words.value(kpi, over[kpi].target)
        }
    if why is not None:
        text += " " + _why(words, why, named=why["kpi"] != kpi)
    elif capped and parts is not None and _ratio_list(words, parts, above) is not None:
        text += " " + _ratio_parts(words, parts, above)
    return text


def takeaways(
    config: Config,
    results: Results,
    fmt: Formatter,
    labels: Labels | None = None,
    *,
    limit: int | None = None,
    per_type: int = 2,
) -> list[str]:
    """The sentences that open the summary, the digest and the chat card: the insights by score
    (``results.insights`` is ranked), one takeaway per event. An insight whose KPI shares a
    metric with a KPI already taken is skipped (spend, budget use and the budget's pace are one
    event); a KPI taken only for its objective's pacing does not count as taken. At most
    ``per_type`` of a kind, so that one kind (twelve records in a growing year) cannot fill the
    list. What happened (unusual, seasonal, record) and why (the KPI's best contributors
    sentence, its biggest part named) are one takeaway, whichever of the two comes first.

    A KPI over its cap (``over_target``: the budget overspent) is never the one left out: when
    a milder sentence shares a metric with it (the season's spend), the overrun is told in its
    place, with its target and the milder KPI's why, and the per-kind limit does not apply.
    One at risk or off track is told in its own right (``_breaches``), even when another KPI
    over its cap already told its metrics (the CAC beside the budget: the same spend, two
    objectives missed): by what happened to it when an insight says so, else by its value
    against its target and the previous period's."""
    words = _Words(results, fmt, labels)
    limit = config.insights.max_summary if limit is None else limit
    over = over_target(config, results)
    ranked = list(results.insights)
    breaches = _breaches(config, results, over)
    ranked += breaches
    # the insights stay in their order; each breach goes in at its score (ties: the insight first)
    order = sorted(range(len(ranked)), key=lambda j: -float(ranked[j].get("score") or 0.0))
    taken: set[str] = set()  # the metrics of the KPIs taken
    told: set[str] = set()  # the KPIs a takeaway is about
    above: set[str] = set()  # the KPIs whose value or change a takeaway told: "(see above)"
    alone: set[str] = set()  # the KPIs over their cap told by their value alone
    used: set[int] = set()
    seen: dict[str, int] = {}
    chosen: list[str] = []
    for index in order:
        insight = ranked[index]
        if len(chosen) >= limit:
            break
        if index in used or insight.get("kpi") not in config.kpis or insight["type"] == "ratio_parts":
            continue  # (a ratio's parts are a why, told with what happened to it)
        reads = metrics_of(config, insight["kpi"])
        if insight["type"] == "breach":
            kpi = insight["kpi"]
            if kpi in told:
                continue
            what_j = next(
                (
                    j
                    for j, x in enumerate(ranked)
                    if j not in used and x["type"] in _WHAT and x.get("kpi") == kpi
                ),
                None,
            )
            if what_j is None:  # nothing happened to it that an insight tells: its value and cap
                used.add(index)
                chosen.append(_breach_alone(config, words, ranked, over[kpi], (taken, used), above))
                told.add(kpi)  # its metrics stay free: a sentence on its value tells nothing of them
                above.add(kpi)
                alone.add(kpi)
                continue
            index = what_j  # told by what happened to it, with its target (below)
        elif reads & taken or insight["kpi"] in alone:
            continue  # the same event, already told through another KPI (or this one)
        first = index
        if ranked[index]["kpi"] not in over:
            found = _overrun(config, ranked, over, reads, (taken, used))
            first = index if found is None else found
        used.add(first)
        kpi = ranked[first]["kpi"]
        what, why = _pair(config, ranked, first, used, over)
        kind, breach = what["type"], kpi in over
        if seen.get(kind, 0) >= per_type and not breach:
            continue
        seen[kind] = seen.get(kind, 0) + 1
        chosen.append(_joined(words, what, why, over, _parts_of(ranked, kpi), above))
        told.add(kpi)
        above.update([kpi] if why is None else [kpi, why["kpi"]])
        if kind != "pacing" or breach:
            taken |= metrics_of(config, kpi)
    return chosen
