"""The configuration schema as pydantic v2 models; docs/configuration.md and the JSON Schema come from it.

Types and allowed values live here; rules that span keys or need the data (names that must
exist, formulas, cycles, SQL, files and columns) live in ``checks.py`` so each error can name the
exact key it is about. Every model forbids unknown keys.

No ``from __future__ import annotations`` here: pydantic would evaluate every annotation from
its text when the classes are built, which made importing this module a third slower.
"""

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr
from pydantic_core import PydanticCustomError

from reporter.errors import Problem

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Name = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1)]
# The name of a connection the operator defines outside the YAML (reporter.config.connections).
ConnectionName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]

Grain = Literal["month", "quarter", "week"]
Agg = Literal["sum", "count", "count_distinct", "avg", "min", "max", "last"]
Format = Literal["number", "integer", "currency", "percent", "ratio", "days"]
ChangeUnit = Literal["points", "percent"]
Direction = Literal["up", "down", "neutral"]
When = Literal["on_track", "at_risk", "off_track", "always"]

_LABEL_HINT = "a label is text, or a map from language code to text: {fr: Prospects, en: Leads}"


def _language_hint(key: object) -> str:
    """What to write instead of ``key`` in a label map: its language code when one is recognised."""
    from babel import Locale, UnknownLocaleError

    text = str(key).strip()
    try:
        code = Locale.parse(text.replace("-", "_")).language
    except (UnknownLocaleError, ValueError, TypeError):
        names = {name.lower(): code for code, name in Locale("en").languages.items() if "_" not in code}
        code = names.get(text.lower(), "")
    if code and code != text:
        return f"write the language code '{code}' (keys are language codes such as fr, en, de)"
    return "keys are language codes such as fr, en, de: {fr: Prospects, en: Leads}"


def _is_language(key: object) -> bool:
    from babel import Locale, UnknownLocaleError

    if not isinstance(key, str) or not key.isascii() or not key.isalpha() or not key.islower():
        return False
    try:
        return Locale.parse(key).language == key
    except (UnknownLocaleError, ValueError):
        return False


def _label(value: Any, *, empty: bool = False) -> Any:
    """A label as the YAML gives it: text, or a non-empty map {language code: text}. Every
    problem is one error whose ``ctx`` carries the hint (and the offending key), so validation can
    point at the very key."""
    if isinstance(value, str):
        if not value.strip() and not empty:
            raise PydanticCustomError("label", "must not be empty", {"hint": _LABEL_HINT})
        return value
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else f"{type(value).__name__} {value!r}"
        raise PydanticCustomError(
            "label",
            "expected text or a map of language: text, got {kind}",
            {"kind": kind, "hint": _LABEL_HINT},
        )
    if not value:
        raise PydanticCustomError("label", "an empty label map", {"hint": _LABEL_HINT})
    for key, text in value.items():
        if not _is_language(key):
            raise PydanticCustomError(
                "label", "'{key}' is not a language code", {"key": key, "hint": _language_hint(key)}
            )
        if isinstance(text, str) and not text.strip():
            raise PydanticCustomError(
                "label",
                "the '{key}' label is empty",
                {"key": key, "hint": "write its text, or leave that language out"},
            )
        if not isinstance(text, str):
            raise PydanticCustomError(
                "label",
                "the '{key}' label must be text, got {text}",
                {"key": key, "text": repr(text), "hint": f'write it in quotes: {key}: "{text}"'},
            )
    return value


# A name a reader sees: text, or one text per language ({fr: Prospects, en: Leads}); the report
# shows the entry of report.locale's language, else English, else the first (reporter.config.labels).
Label = Annotated[str | dict[str, str], BeforeValidator(_label)]
# The same, where empty text means "none" (a KPI's section).
LabelOrEmpty = Annotated[str | dict[str, str], BeforeValidator(lambda v: _label(v, empty=True))]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Report(_Model):
    id: Slug = Field(
        description=(
            "The report's identifier: lowercase letters, digits, `-` and `_`. Names the output folders, the "
            "PDF file and the ledger's records."
        ),
        examples=["marketing-monthly"],
    )
    title: Label = Field(
        description=(
            "The report's title, on the cover, in the running header and in the email subject (text, or "
            "one text per language)."
        ),
        examples=["Rapport mensuel marketing & ventes", {"fr": "Rapport mensuel", "en": "Monthly report"}],
    )
    company: LabelOrEmpty = Field(
        "",
        description="The company's name, shown on the cover and in the digest (text, or one per language).",
        examples=["Acme SAS"],
    )
    locale: str = Field(
        "en_US",
        description=(
            "A language_COUNTRY code: how numbers, currencies and dates are written, and the language of the"
            " template's own words: de, en, es, fr or it (a language without a catalogue is refused)."
        ),
        examples=["fr_FR"],
    )
    currency: str = Field(
        "EUR", description="An ISO 4217 code for KPIs with format `currency`.", examples=["EUR"]
    )
    timezone: str = Field(
        "UTC",
        description=(
            "An IANA time zone: periods are cut at midnight in this zone, the schedule's cron runs in it, "
            "and dates are shown in it."
        ),
        examples=["Europe/Paris"],
    )
    grain: Grain = Field(
        "month",
        description="The length of a reporting period: a calendar month, a calendar quarter or an ISO week.",
        examples=["month"],
    )
    fiscal_year_start: Annotated[int, Field(ge=1, le=12)] = Field(
        1,
        description=(
            "The month (1–12) the fiscal year starts in; year-to-date values start on the 1st of that month."
        ),
        examples=[4],
    )
    template: str = Field(
        "executive",
        description=(
            "A built-in template's name, or a folder (relative to this file) whose `report.html` / "
            "`report.css` override the built-in ones."
        ),
        examples=["executive", "my-template"],
    )
    output_dir: Path | None = Field(
        None,
        description=(
            "The output folder (relative to this file), unless `--output` is given; default: `./output` "
            "under the working directory."
        ),
        examples=["../output"],
    )
    logo: Path | None = Field(
        None, description="An image file (relative to this file) shown on the cover.", examples=["logo.png"]
    )
    url: str | None = Field(
        None,
        description=(
            "Where the report can be read online (an http:// or https:// address, e.g. an intranet page); "
            "the email digest links to it."
        ),
        examples=["https://intranet.acme.fr/reports/marketing"],
    )


class CsvOptions(_Model):
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = Field(
        ",", description="The one character between fields.", examples=[";"]
    )
    decimal: Literal[".", ","] = Field(
        ".", description="The decimal mark of numbers in the file.", examples=[","]
    )
    encoding: str = Field("utf-8", description="The file's text encoding.", examples=["latin-1"])
    date_format: str | None = Field(
        None,
        description="A strftime pattern for the date column; default: detected (ISO dates always work).",
        examples=["%d/%m/%Y"],
    )
    null_values: list[str] = Field(
        [""], description='Texts that mean "no value" in the file.', examples=[["", "NA", "n/a"]]
    )
    header: bool = Field(True, description="Whether the first line holds the column names.", examples=[True])
    quote: Annotated[str, Field(min_length=1, max_length=1)] = Field(
        '"', description="The character that quotes a field containing the delimiter.", examples=['"']
    )


class Source(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["csv", "parquet", "excel", "json", "sql", "derived"] = Field(
        description=(
            "The kind of source: a file (csv, parquet, excel, json) read with `path`, a database query "
            "(sql) read with `connection` and `query` (or `table`), or a query over other sources of "
            "this file (derived) given by `from` and `sql`."
        ),
        examples=["csv"],
    )
    date_column: Text = Field(
        description="The column holding each row's date or timestamp; it cuts the rows into periods.",
        examples=["date"],
    )
    path: Path | None = Field(
        None,
        description="The file, relative to this file (file sources only).",
        examples=["data/web_traffic.csv"],
    )
    connection: ConnectionName | None = Field(
        None,
        description=(
            "sql sources only: the name of the database connection the operator defines outside the YAML "
            "(the environment variable `REPORTER_CONNECTION_<NAME>` or the `--connections` file), which "
            "holds its URL and password. The database is opened read-only."
        ),
        examples=["warehouse"],
    )
    query: str | None = Field(
        None,
        description="The SELECT whose rows are the source (sql sources only): one statement, read-only.",
        examples=["select * from orders"],
    )
    table: str | None = Field(
        None,
        description=(
            "A table (or view) of the database to read, instead of `query` (sql sources only); "
            "`schema.table` when it is not in the default schema."
        ),
        examples=["orders", "sales.orders"],
    )
    pushdown: bool = Field(
        True,
        description=(
            "sql sources only: true runs the report's aggregates in the database (only the results "
            "cross the network); false reads every row of the query and computes locally. On a derived "
            "source whose `from` are all sql sources of one database, true has that database do the "
            "join too; false joins them in reporter."
        ),
        examples=[False],
    )
    from_: Annotated[list[Name] | None, Field(alias="from")] = Field(
        None,
        description=(
            "derived sources only: the sources (keys of `sources`) its `sql` reads; only these names "
            "may appear as tables."
        ),
        examples=[["leads", "deals"]],
    )
    sql: str | None = Field(
        None,
        description=(
            "derived sources only: one SELECT over the sources in `from` (CTEs, joins, window functions "
            "allowed); no other table, file, table function or statement. See "
            "[Joining sources](joining-sources.md)."
        ),
        examples=["select l.*, d.won_date from leads l left join deals d on d.mql_id = l.mql_id"],
    )
    csv: CsvOptions | None = Field(
        None,
        description="How to read a CSV file (csv sources only).",
        examples=[{"delimiter": ";", "decimal": ",", "encoding": "latin-1"}],
    )
    sheet: str | int | None = Field(
        None,
        description="The sheet to read, by name or 0-based index (excel sources only); default: the first.",
        examples=["Ventes"],
    )
    shared: bool = Field(
        False,
        description=(
            "With per-recipient bursting: true when every recipient sees this source whole (it is not "
            "filtered by the recipients' filter columns)."
        ),
        examples=[True],
    )
    frequency: Literal["daily", "weekly", "monthly"] = Field(
        "daily",
        description=(
            "How often the source gets a row; the completeness gate wants data up to the period's last day "
            "(daily), the Monday of its last week (weekly) or the 1st of its last month (monthly)."
        ),
        examples=["monthly"],
    )
    label: Label | None = Field(
        None,
        description=(
            "The source's name as the report shows it (quality checks, data provenance); default: its key. "
            "Text, or one text per language."
        ),
        examples=["Audience du site", {"fr": "Audience du site", "en": "Website analytics"}],
    )
    description: str = Field(
        "",
        description="Free text about the source, for the people who maintain the file.",
        examples=["Export nightly from the web analytics tool"],
    )


class Metric(_Model):
    source: Name = Field(
        description="The source (a key of `sources`) whose rows are aggregated.", examples=["web"]
    )
    agg: Agg = Field(
        description=(
            "The aggregate over the period's rows: sum, count (rows, or non-null values of `column`), "
            "count_distinct, avg, min, max, or last (the value on the latest date)."
        ),
        examples=["sum"],
    )
    column: str | None = Field(
        None,
        description="The column to aggregate (give `column` or `expr`, not both; count needs neither).",
        examples=["sessions"],
    )
    expr: str | None = Field(
        None,
        description=(
            "An SQL expression over the source's own columns, aggregated instead of a column. A row "
            "whose divisor is zero gives no value (null), so the aggregate leaves it out, in every "
            "engine; `validate` warns when a divisor column holds zeros."
        ),
        examples=["quantity * unit_price"],
    )
    where: str | None = Field(
        None,
        description=(
            "An SQL condition over the source's own columns: only rows matching it count. A division "
            "by zero in it gives null, so the row does not match."
        ),
        examples=["stage = 'won'"],
    )
    label: Label | None = Field(
        None,
        description=(
            "The metric's name in words, used where the appendix shows a formula in words; default: the "
            "label of the KPI of the same name, else its key with spaces. Text, or one text per language."
        ),
        examples=["Sessions", {"fr": "Dépenses marketing", "en": "Marketing spend"}],
    )
    description: str = Field(
        "", description="Free text about what the metric counts.", examples=["Visits to the website"]
    )


class Kpi(_Model):
    formula: Text = Field(
        description=(
            "Arithmetic over metric and KPI names: + - * /, parentheses, numbers, min, max, abs, round, "
            "coalesce. A division by zero gives no value."
        ),
        examples=["leads / sessions"],
    )
    label: Label | None = Field(
        None,
        description=(
            "The KPI's name as the report shows it; default: its key with spaces. Text, or one text per "
            "language ({fr: …, en: …}): the report's language, else English, else the first entry."
        ),
        examples=["Taux de conversion du site", {"fr": "Prospects", "en": "Leads"}],
    )
    format: Format = Field(
        "number",
        description=(
            "How the value is written: number, integer, currency (report.currency), percent (0.125 → 12.5 "
            "%), ratio, days."
        ),
        examples=["percent"],
    )
    direction: Direction = Field(
        "up",
        description="Which way is better: up (higher), down (lower) or neutral (no target possible).",
        examples=["down"],
    )
    change: ChangeUnit | None = Field(
        None,
        description=(
            "How the report writes the KPI's changes against the previous period and the prior year: "
            "points, the difference (a rate from 13.1 % to 18.9 % is +5.8 pts, a score from 50.8 to 50.0 "
            "is −0.8 pts), or percent, the relative change ((value − base) / |base|: +4.7 %). Default: "
            "points for a `percent` KPI, percent otherwise; set points for a score or a rate written as a "
            "number (a Net Promoter Score). Not for currency, integer or days: their changes are relative."
        ),
        examples=["points"],
    )
    section: LabelOrEmpty = Field(
        "",
        description=(
            'The scorecard section the KPI appears in; default: a section named "Indicators". Text, or one '
            "text per language; KPIs whose section reads the same share it."
        ),
        examples=["Marketing", {"fr": "Ventes", "en": "Sales"}],
    )
    owner: LabelOrEmpty = Field(
        "",
        description="Who answers for the KPI: text, or one text per language.",
        examples=["Directrice marketing", {"fr": "Directrice marketing", "en": "Marketing director"}],
    )
    description: LabelOrEmpty = Field(
        "",
        description="What the KPI means, printed in the appendix: text, or one text per language.",
        examples=["Part des visites qui deviennent des prospects."],
    )
    decimals: Annotated[int, Field(ge=0, le=6)] | None = Field(
        None, description="The number of decimals shown (0–6), overriding the format's default.", examples=[1]
    )
    settles_after: Annotated[int, Field(ge=0, le=36)] = Field(
        0,
        description=(
            "How many of the latest periods, up to and including the report's, are not final yet (quotes "
            "still open, late invoices): the report marks the value provisional, shows its changes without "
            "judging them better or worse, claims no record, unusual or seasonal value for it, and paces "
            "its objectives on the periods before."
        ),
        examples=[2],
    )

    @property
    def in_points(self) -> bool:
        """Whether the KPI's changes are written in points (``change``; by default a percent KPI's)."""
        return (self.change or ("points" if self.format == "percent" else "percent")) == "points"


class Target(_Model):
    value: float | None = Field(None, description="A fixed target for every period.", examples=[120000])
    change_vs_prior_year: float | None = Field(
        None,
        description="A growth over the same period last year, as a fraction: 0.15 means prior year × 1.15.",
        examples=[0.15],
    )
    change_vs_previous: float | None = Field(
        None,
        description="A growth over the previous period, as a fraction: 0.05 means previous × 1.05.",
        examples=[0.05],
    )
    by_period: dict[str, float] | None = Field(
        None,
        description=(
            "A target per period label (2026-10, 2026-Q4 or 2026-W43, as the report's grain); a period "
            "without one has no target."
        ),
        examples=[{"2026-10": 118000, "2026-11": 121000}],
    )


class Thresholds(_Model):
    on_track: float = Field(
        1.0, description="The attainment from which the objective is on track.", examples=[1.0]
    )
    at_risk: float = Field(
        0.9,
        description="The attainment from which it is at risk (below: off track); at most on_track.",
        examples=[0.9],
    )


class Action(_Model):
    id: Slug | None = Field(
        None,
        description=(
            "The action's identifier, unique in the objective: an action with an id has a life. "
            "`reporter checkin` marks it done or dropped; open, it carries over to the next "
            "periods with its age, and past its due date it is overdue; it closes by itself once "
            "the objective is back on track for a period no check-in keeps it open in. Without an "
            "id it is shown "
            "only while its `when` matches."
        ),
        examples=["relaunch-quotes"],
    )
    when: When = Field(
        description="The status that calls for this action (or always).", examples=["off_track"]
    )
    do: Label = Field(
        description=(
            "What to do, in words (text, or one text per language); may use {{ report.title }} and "
            "{{ period.label }}."
        ),
        examples=["Relancer les devis de plus de 15 jours"],
    )
    owner: LabelOrEmpty = Field(
        "",
        description="Who does it (text, or one text per language); default: the objective's owner.",
        examples=["Responsable ventes"],
    )
    due_in_days: Annotated[int, Field(ge=0, le=3660)] | None = Field(
        None,
        description="Days after the period's end by which it is due; default: no due date.",
        examples=[15],
    )


class Objective(_Model):
    id: Slug = Field(
        description="The objective's identifier, unique in the report.", examples=["grow-revenue"]
    )
    title: Label = Field(
        description="The objective in words: text, or one text per language.",
        examples=[
            "Chiffre d'affaires +15 % sur N-1",
            {"fr": "NPS d'au moins 45", "en": "NPS of at least 45"},
        ],
    )
    kpi: Name = Field(
        description="The KPI it is measured by (its direction must be up or down).", examples=["revenue"]
    )
    target: Target = Field(
        description="Exactly one of value, change_vs_prior_year, change_vs_previous, by_period.",
        examples=[{"change_vs_prior_year": 0.15}],
    )
    cumulative: bool = Field(
        False,
        description=(
            "True: judge the year-to-date value against the sum of the year's per-period targets so far."
        ),
        examples=[True],
    )
    thresholds: Thresholds = Field(
        Thresholds(),
        description="The attainment levels that make the status on track or at risk.",
        examples=[{"on_track": 1.0, "at_risk": 0.9}],
    )
    owner: Label = Field(
        description="Who answers for the objective: text, or one text per language.",
        examples=["Directeur commercial", {"fr": "Directeur commercial", "en": "Sales director"}],
    )
    due: dt.date = Field(description="The date by which the objective is to be met.", examples=["2026-12-31"])
    description: str = Field(
        "", description="Free text about the objective.", examples=["Porté par les nouveaux comptes."]
    )
    actions: list[Action] = Field(
        [],
        description="The action plan: the actions whose `when` matches the status are shown.",
        examples=[[{"when": "off_track", "do": "Relancer les devis", "due_in_days": 15}]],
    )


class Breakdown(_Model):
    kpi: Name = Field(description="The KPI to cut.", examples=["conversion_rate"])
    by: Text = Field(
        description="The column of the KPI's sources whose values are the rows.", examples=["salesperson"]
    )
    top: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        None, description='Show only the best N rows and one "other" row for the rest.', examples=[10]
    )
    label: Label | None = Field(
        None,
        description=(
            'The name of the `by` column as the report shows it: the heading ("Win rate by salesperson") '
            "and the first column's title; default: the column's name. Text, or one text per language."
        ),
        examples=["Commercial", {"fr": "Origine", "en": "Source"}],
    )
    values: dict[str, Label] = Field(
        {},
        description=(
            "Display labels for the column's values: raw value → label (text, or one text per language); a "
            "value without one is shown as it is."
        ),
        examples=[{"organic_search": {"fr": "Référencement naturel", "en": "Organic search"}}],
    )
    pdf_rows: Annotated[int, Field(ge=1, le=100_000)] = Field(
        200,
        description="Rows the PDF prints (the first, best by the KPI's direction, then one 'Other' row for "
        "the rest); a longer breakdown is attached whole inside the PDF as CSV, and stays whole in "
        "results.json.",
        examples=[50],
    )
    max_keys: Annotated[int, Field(ge=1, le=10_000_000)] = Field(
        100_000,
        description="The most distinct values the `by` column may hold in the period (counted in the "
        "database before any row is fetched; in the largest of the KPI's sources). More stops the run "
        "with an error naming the breakdown and the count: a column such as an order number would "
        "otherwise make a table of millions of rows. With `top`, the best rows are chosen inside the "
        "query, so only they are fetched.",
        examples=[500_000],
    )


class FunnelStage(_Model):
    label: Label = Field(
        description="The stage's name in the report: text, or one text per language.",
        examples=["Visites", {"fr": "Prospects", "en": "Leads"}],
    )
    metric: Name = Field(description="The metric counting the stage.", examples=["sessions"])


class PortfolioRules(_Model):
    keep: float = Field(1.5, description="value / cost from which a row is kept.", examples=[1.5])
    improve: float = Field(
        0.8,
        description="value / cost from which a row is to improve (below: stop); at most keep.",
        examples=[0.8],
    )


class Portfolio(_Model):
    by: Text = Field(
        description="The column whose values are the rows (campaign, channel...).", examples=["campaign"]
    )
    cost: Name = Field(description="The metric of what each row costs.", examples=["marketing_spend"])
    value: Name = Field(description="The metric of what each row brings.", examples=["revenue"])
    label: Label | None = Field(
        None,
        description=(
            "The name of the `by` column as the report shows it (the table's first column); default: the "
            "column's name. Text, or one text per language."
        ),
        examples=["Campagne", {"fr": "Campagne", "en": "Campaign"}],
    )
    values: dict[str, Label] = Field(
        {},
        description=(
            "Display labels for the column's values: raw value → label (text, or one text per language); a "
            "value without one is shown as it is."
        ),
        examples=[{"salon-lyon": {"fr": "Salon de Lyon", "en": "Lyon trade fair"}}],
    )
    rules: PortfolioRules = Field(
        PortfolioRules(),
        description="The value / cost ratios for keep and improve.",
        examples=[{"keep": 1.5, "improve": 0.8}],
    )


class Quality(_Model):
    require_complete_period: bool = Field(
        True,
        description=(
            "Each source's data must reach the period's end (see `frequency`) before anything is sent."
        ),
        examples=[False],
    )
    min_rows: Annotated[int, Field(ge=0)] = Field(
        1, description="Each source needs at least this many rows in the period (0: no check).", examples=[1]
    )


class Insights(_Model):
    """Automatic commentary: unusual changes, records, what drove a breakdown's change,
    concentration, each objective's pace and what moved a ratio whose objective is missed
    (formulas in docs/insights.md)."""

    enabled: bool = Field(
        default=True, description="Compute insights and show them in the report and digest.", examples=[False]
    )
    max_summary: Annotated[int, Field(ge=0, le=20)] = Field(
        default=5, description="How many of the best-scored insights open the report's summary.", examples=[3]
    )
    z: Annotated[float, Field(gt=0, le=100)] = Field(
        default=3.5,
        description="How unusual a value must be (robust z-score, |z|) to be called unusual.",
        examples=[3.0],
    )
    record_min_periods: Annotated[int, Field(ge=2, le=36)] = Field(
        default=12,
        description="How many preceding periods a value must beat to be called a record.",
        examples=[24],
    )
    moves_min_base: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.05,
        description=(
            "Biggest moves leave out a change whose base (previous period or prior year) is under this "
            "share of the KPI's 12-period median (of absolute values): from a near-zero base any change "
            "looks huge. A KPI whose median is 0 (zero in half its periods or more) is left out too. 0 keeps "
            "every change."
        ),
        examples=[0.1],
    )


class Smtp(_Model):
    connection: ConnectionName | None = Field(
        None,
        description=(
            "The name of the SMTP connection the operator defines outside the YAML "
            "(`REPORTER_CONNECTION_<NAME>=smtp://USER:PASSWORD@HOST:587`, or the `--connections` file): "
            "server, port, security and login. Give it, or `host` for a relay that needs no login."
        ),
        examples=["smtp"],
    )
    host: Text | None = Field(
        None,
        description="Without `connection`: the name of an SMTP relay that needs no login.",
        examples=["relay.acme.fr"],
    )
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        587, description="With `host`: the relay's port.", examples=[25]
    )
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls",
        description=(
            "With `host`: starttls (port 587), ssl (implicit TLS, port 465) or none (a relay on a trusted "
            "network)."
        ),
        examples=["none"],
    )
    timeout: Annotated[float, Field(gt=0, le=600)] = Field(
        30.0, description="Seconds to wait for the server at each step.", examples=[30]
    )
    data_timeout: Annotated[float, Field(gt=0, le=3600)] = Field(
        600.0,
        description=(
            "Seconds to wait for the server's reply after the end of the message (RFC 5321: 10 minutes); "
            "no reply in time means the message may have been delivered, so it goes to review, never re-sent."
        ),
        examples=[600],
    )
    ca_file: Path | None = Field(
        None,
        description=(
            "A CA bundle (PEM) to trust instead of the system's, e.g. a company's own CA; relative to this "
            "file."
        ),
        examples=["certs/acme-ca.pem"],
    )


class Recipient(_Model):
    email: Text = Field(description="The recipient's address.", examples=["alice@acme.fr"])
    filter: dict[str, str | int | float | bool] = Field(
        {},
        description="Column: value pairs; this recipient's report is computed on those rows only.",
        examples=[{"salesperson": "Alice"}],
    )


class Email(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: Annotated[Text, Field(alias="from")] = Field(
        description="The sender, an address or 'Name <address>'.", examples=["Reporting <reporting@acme.fr>"]
    )
    to: list[Text] = Field(
        [],
        description="Addresses that each get the whole report, as their own message.",
        examples=[["direction@acme.fr"]],
    )
    cc: list[Text] = Field(
        [], description="Addresses copied on each message.", examples=[["assistant@acme.fr"]]
    )
    subject: Text = Field(
        "{{ report.title }} — {{ period.label }}",
        description="The subject, a template: {{ report.title }}, {{ period.label }} (the period in words).",
        examples=["{{ report.title }} — {{ period.label }}"],
    )
    subject_tally: bool = Field(
        True,
        description=(
            "Add the objectives' tally to the subject: `… — octobre 2026 · 2 en retard, 1 à surveiller` "
            "(the off-track and at-risk counts, or the on-track count when every objective is on track)."
        ),
        examples=[False],
    )
    smtp: Smtp | None = Field(
        None,
        description="The SMTP server; without it messages are written to the outbox folder.",
        examples=[{"connection": "smtp"}, {"host": "relay.acme.fr", "port": 25, "security": "none"}],
    )
    recipients: list[Recipient] = Field(
        [],
        description="Bursting: one report per recipient, computed on their rows only.",
        examples=[[{"email": "alice@acme.fr", "filter": {"salesperson": "Alice"}}]],
    )
    allow_mixed_scripts: list[Text] = Field(
        [],
        description=(
            "Domains whose letters mix scripts on purpose. Any other address whose local part or domain "
            "mixes scripts (a Cyrillic 'е' among Latin letters: a look-alike of another address) is refused; "
            "a domain wholly in one script (пример.рф) needs no entry."
        ),
        examples=[["bücher-αβ.example"]],
    )
    unsubscribe: Text | None = Field(
        None,
        description=(
            "The mailbox that receives unsubscribe requests: every message carries a `List-Unsubscribe` "
            "header whose `mailto:` link writes to it (subject `unsubscribe <report id>`), and "
            "`reporter unsubscribe CONFIG --from-mbox FILE` reads them from a copy of that mailbox; "
            "default: the `from` address. With an https `report.url` the header also holds a one-click "
            "link, and the message a `List-Unsubscribe-Post` header (without it: no one-click)."
        ),
        examples=["reporting+unsubscribe@acme.fr"],
    )
    allowed_domains: list[Text] = Field(
        [],
        description=(
            "When given, the only domains the report may be sent to: an address in `to`, `cc` or "
            "`recipients` whose domain is not one of these (or a subdomain of one) is refused at "
            "validation. `[]` allows every domain."
        ),
        examples=[["acme.fr", "acme.de"]],
    )
    attach: list[Literal["pdf", "xlsx"]] = Field(
        ["pdf"],
        description=(
            "What each message carries: `pdf` (the report) and `xlsx` (a workbook of results.json: KPIs "
            "with their changes and 12-period series, objectives with their actions, each breakdown); "
            "`[]` sends the digest alone."
        ),
        examples=[["pdf", "xlsx"]],
    )


class Retention(_Model):
    keep: Text = Field(
        description=(
            "How long an archived file is kept after it was archived: a number and y (years) or d "
            "(days). `reporter archive purge` removes older files; the manifest keeps each one's "
            "SHA-256 and a line marking it purged, so `reporter verify` still passes."
        ),
        examples=["7y"],
    )


class Archive(_Model):
    dir: Path | None = Field(
        None,
        description=(
            "The archive folder (relative to this file), inside the output folder or a folder the operator "
            "allows (`--allow-dir`); default: `archive` in the output folder. Files there are never "
            "overwritten, and deleted only by `reporter archive purge` (`retention`)."
        ),
        examples=["../output/archive"],
    )
    pdfa: bool = Field(
        True,
        description="Write the PDF as tagged PDF/A-3a and PDF/UA-1 with results.json, the YAML and "
        "provenance.json inside.",
        examples=[True],
    )
    retention: Retention | None = Field(
        None,
        description="How long archived files are kept (`reporter archive purge`); default: for ever.",
        examples=[{"keep": "7y"}],
    )
    legal_hold: list[Text] = Field(
        [],
        description=(
            "Periods under legal hold: `reporter archive purge` never removes the files of a period that "
            "shares a day with one, whatever the retention. Each is a month (2025-03), a quarter (2025-Q1), "
            "an ISO week (2025-W12) or a year (2025), whatever the report's grain. Remove a period once its "
            "hold is lifted."
        ),
        examples=[["2025-03", "2025-Q1"]],
    )


# Each chat service delivery.chat can post to, by the name messages give it.
CHAT_KINDS = {"slack": "Slack", "teams": "Microsoft Teams"}


class Chat(_Model):
    kind: Literal["slack", "teams"] = Field(
        description=(
            "slack (a Slack incoming webhook: Block Kit message) or teams (a Microsoft Teams incoming "
            "webhook or workflow: an Adaptive Card)."
        ),
        examples=["slack"],
    )
    webhook_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        description=(
            "The name of the environment variable holding the webhook's URL (never the URL itself: it is "
            "a secret, masked in every message and never stored)."
        ),
        examples=["SLACK_WEBHOOK_URL"],
    )
    timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        15.0,
        description=(
            "Seconds for the whole request (connecting, sending the card, reading the answer), however "
            "the server spreads its bytes. A card sent without a complete answer in time goes to review "
            "(reporter resolve), never posted again by itself."
        ),
        examples=[15],
    )


class Burst(_Model):
    executor: Literal["local", "dask"] = Field(
        "local",
        description=(
            "Where recipients' reports (delivery.email.recipients) are computed and rendered: local, a "
            "pool of processes on this machine; dask, one task per recipient on a Dask cluster (needs the "
            "dask extra). Either way the PDFs come back to this process, which delivers each exactly once."
        ),
        examples=["dask"],
    )
    connection: ConnectionName | None = Field(
        None,
        description=(
            "With executor dask: the name of the connection the operator defines outside the YAML that "
            "holds the Dask scheduler's address (`tcp://HOST:PORT` or `tls://HOST:PORT`); without it a "
            "cluster of `workers` processes is started on this machine for the run."
        ),
        examples=["dask"],
    )
    workers: Annotated[int, Field(ge=1, le=10000)] | None = Field(
        None,
        description=(
            "local: the number of processes (default: one per core). dask with a connection: wait until "
            "this many workers have joined before starting (default: 1). dask without one: the number of "
            "worker processes to start (default: one per core)."
        ),
        examples=[8],
    )


class Delivery(_Model):
    schedule: str | None = Field(
        None,
        description="A 5-field cron expression in report.timezone for `reporter schedule`.",
        examples=["0 7 2 * *"],
    )
    catch_up: Annotated[int, Field(ge=0, le=120)] = Field(
        1,
        description="After downtime, run at most this many missed periods (the most recent ones).",
        examples=[1],
    )
    retry_every: str = Field(
        "1h",
        description="When the data is not ready, try again after this long (a number and s, m, h, d or w).",
        examples=["30m"],
    )
    give_up_after: str = Field(
        "3d", description="Stop retrying this long after the fire time, and alert alerts_to.", examples=["3d"]
    )
    schedule_timeout: str = Field(
        "30m",
        description=(
            "`reporter schedule` runs each report in its own process and stops it after this long (a number "
            "and s, m, h, d or w; at most 1d): the run is recorded as failed, alerts_to is told, and it is "
            "retried after retry_every. The other reports never wait for it."
        ),
        examples=["30m"],
    )
    alerts_to: list[Text] = Field(
        [], description="Addresses told when a run fails or gives up.", examples=[["ops@acme.fr"]]
    )
    ledger: ConnectionName | None = Field(
        None,
        description=(
            "The name of the connection the operator defines outside the YAML that holds the ledger's "
            "database (SQLite or PostgreSQL), e.g. one ledger shared by several hosts; default: "
            "ledger.sqlite in the output folder."
        ),
        examples=["ledger"],
    )
    ledger_lock_timeout: Annotated[float, Field(gt=0, le=600)] = Field(
        30,
        description=(
            "Seconds a ledger statement may wait for a lock another transaction holds (a PostgreSQL "
            "row or table, a SQLite file being written) before the run fails, saying so; nothing is "
            "sent twice."
        ),
        examples=[30],
    )
    email: Email | None = Field(
        None,
        description="The email digest; without it nothing is emailed.",
        examples=[{"from": "Reporting <reporting@acme.fr>", "to": ["direction@acme.fr"]}],
    )
    archive: Archive = Field(
        Archive(),
        description="The auditor's archive of delivered PDFs.",
        examples=[{"dir": "../output/archive", "pdfa": True}],
    )
    chat: list[Chat] = Field(
        [],
        description=(
            "Chat channels that get a short card (the tally, the off-track objectives with value and "
            "target, the link to the report), once per period, through the ledger like the email."
        ),
        examples=[[{"kind": "slack", "webhook_env": "SLACK_WEBHOOK_URL"}]],
    )
    burst: Burst = Field(
        Burst(),
        description="Where recipients' own reports are rendered: this machine or a Dask cluster.",
        examples=[{"executor": "dask", "connection": "dask", "workers": 4}],
    )


AlertCondition = Literal["off_track", "at_risk", "unusual", "pacing_off"]


class Threshold(_Model):
    above: float | None = Field(
        None, description="Fires while the value to date is above this number.", examples=[1200]
    )
    below: float | None = Field(
        None, description="Fires while the value to date is below this number.", examples=[50]
    )


def _alert_when(value: Any) -> Any:
    """An alert's condition: one of the words, or {above: X} / {below: X}; one clear error else."""
    words = ("off_track", "at_risk", "unusual", "pacing_off")
    hint = "write off_track, at_risk, unusual, pacing_off, {above: X} or {below: X}"
    if isinstance(value, str):
        if value not in words:
            raise PydanticCustomError(
                "alert_when", "'{value}' is not a condition", {"value": value, "hint": hint}
            )
        return value
    if isinstance(value, dict) and len(value) == 1 and set(value) <= {"above", "below"}:
        (number,) = value.values()
        if isinstance(number, int | float) and not isinstance(number, bool):
            return Threshold(**{k: float(v) for k, v in value.items()})
    raise PydanticCustomError(
        "alert_when", "expected a condition, got {value}", {"value": repr(value), "hint": hint}
    )


class AlertRule(_Model):
    id: Slug | None = Field(
        None,
        description=(
            "The rule's name for `reporter alerts snooze` and `status`; default: its objective or KPI "
            "and its condition, e.g. `cut-cac-off_track` or `cac-above`."
        ),
        examples=["cac-over-budget"],
    )
    objective: Slug | None = Field(
        None, description="The objective it watches (or kpi, not both).", examples=["cut-cac"]
    )
    kpi: Name | None = Field(
        None, description="The KPI it watches (or objective, not both).", examples=["cac"]
    )
    when: Annotated[AlertCondition | Threshold, BeforeValidator(_alert_when)] = Field(
        description=(
            "off_track, at_risk (at risk or off track) or pacing_off for an objective; unusual for "
            "either; or {above: X} / {below: X} on the value to date."
        ),
        examples=["off_track", {"above": 1200}],
    )
    to: list[str] = Field(
        [], description="Email addresses that get its messages.", examples=[["cfo@example.com"]]
    )
    chat: list[Literal["slack", "teams"]] = Field(
        [],
        description="Chat channels of delivery.chat (by kind) that get its messages.",
        examples=[["slack"]],
    )

    @property
    def condition(self) -> str:
        if isinstance(self.when, Threshold):
            return "above" if self.when.above is not None else "below"
        return str(self.when)

    @property
    def rule_id(self) -> str:
        return self.id or f"{self.objective or self.kpi}-{self.condition}"


class Alerts(_Model):
    schedule: str = Field(
        "0 8 * * *",
        description=(
            "A 5-field cron expression in report.timezone: when `reporter schedule` evaluates the rules."
        ),
        examples=["0 8 * * *"],
    )
    rules: list[AlertRule] = Field(
        [],
        description=(
            "What to watch between reports: one message when a rule's state changes (and one when it "
            "is resolved), never a repeat while it stays."
        ),
        examples=[[{"objective": "cut-cac", "when": "off_track", "to": ["cfo@example.com"]}]],
    )


class Config(_Model):
    """A whole report: what ``load_config`` returns once every check has passed."""

    report: Report = Field(description="Who the report is for and how it looks.")
    sources: dict[Name, Source] = Field(
        description="The data, by name; each becomes a table cut into periods by its date column."
    )
    metrics: dict[Name, Metric] = Field(
        description="Base measures by name: one aggregate of one source per period."
    )
    kpis: dict[Name, Kpi] = Field(
        description="What the report shows, by name: a formula over metrics and other KPIs."
    )
    objectives: list[Objective] = Field(
        [], description="SMART objectives: a KPI with a target, an owner, a due date and an action plan."
    )
    breakdowns: list[Breakdown] = Field([], description="KPIs cut by a column of their sources.")
    funnel: list[FunnelStage] = Field(
        [], description="Ordered stages, each a metric; the report shows each step's conversion."
    )
    portfolio: Portfolio | None = Field(
        None, description="Keep, improve or stop: value against cost per campaign (or any column)."
    )
    quality: Quality = Field(Quality(), description="The gates checked before anything is sent.")
    delivery: Delivery = Field(Delivery(), description="Schedule, email, ledger and archive.")
    insights: Insights = Field(
        Insights(), description="Automatic commentary: unusual values, records, contributors, pacing."
    )
    alerts: Alerts | None = Field(
        None, description="Rules evaluated between reports on the period to date: a message per state change."
    )

    # Not YAML keys: where the file was, so relative paths and messages can use it.
    file: Path = Field(
        Path("report.yaml"), description="Not a YAML key: the file the configuration was read from."
    )
    base_dir: Path = Field(Path("."), description="Not a YAML key: the folder relative paths start from.")
    kpi_order: list[str] = Field(
        [], description="Not a YAML key: the KPIs in dependency order, found once by validation."
    )
    connections: dict[str, str] = Field(
        {},
        description=(
            "Not a YAML key: the URL of each connection the YAML names, as the operator defined it "
            "(never dumped, never shown)."
        ),
        exclude=True,
        repr=False,
    )

    run_output: Path | None = Field(
        None,
        description=(
            "Not a YAML key: the output folder of the run under way, absolute, when the commands it "
            "prints must name it (--output, or the working directory's output/)."
        ),
        exclude=True,
        repr=False,
    )

    # Not a field: what validation found in the data that is allowed but worth a warning (a
    # divisor column holding zeros); ``validate`` prints them.
    _warnings: list[Problem] = PrivateAttr(default_factory=list)

    # Not a field: the YAML as the loader read it, once (reporter.config.loader.Document: its data
    # and every key's and value's line and column), for messages about a valid configuration.
    _document: Any = PrivateAttr(default=None)

    def position(self, path: tuple[str | int, ...], *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of the value at ``path`` (or of its key) in the YAML file, from the one
        reading of it; (None, None) for a configuration that was not read from a file."""
        if self._document is None:
            return (None, None)
        found: tuple[int | None, int | None] = self._document.where(path, key=key)
        return found

    @property
    def yaml_data(self) -> Any:
        """The YAML file's data as written (before defaults), or None."""
        return None if self._document is None else self._document.data

    @property
    def data_warnings(self) -> list[Problem]:
        """The warnings validation found reading the data (each ``file:line:col: key: warning: …``)."""
        return list(self._warnings)

    checkins_dir: Path | None = Field(
        None,
        description=(
            "Not a YAML key: where the owners' check-ins are read from when not `checkins/` beside the "
            "YAML (`reporter reproduce` reads the copies inside the archived PDF)."
        ),
        exclude=True,
        repr=False,
    )

    def command(self, verb: str, *args: str) -> str:
        """The reporter command a message tells someone to run about this report (pinned in tests
        and docs): the configuration by its absolute path and, when the run's output folder is
        not the report's own ``output_dir``, ``--output`` with it, so that the command works as
        printed from any folder, in an alert read elsewhere."""
        import shlex

        words = ["reporter", verb, shlex.quote(str(self.file.absolute())), *args]
        if self.run_output is not None:
            words += ["--output", shlex.quote(str(self.run_output))]
        return " ".join(words)

    def connection_url(self, name: str) -> str:
        """The URL of the operator's connection ``name`` (validation checked that it exists)."""
        return self.connections[name]

    def ledger_url(self, output: Path) -> str:
        """The ledger's database: the operator's connection ``delivery.ledger``, else
        ledger.sqlite in ``output``."""
        if self.delivery.ledger is not None:
            return self.connections[self.delivery.ledger]
        return f"sqlite:///{(output / 'ledger.sqlite').resolve()}"

    def resolve(self, path: Path) -> Path:
        """A path from the YAML, relative to the config file's folder."""
        return path if path.is_absolute() else (self.base_dir / path)


# Config's fields that are no YAML key: the loader and validation fill them in.
NOT_YAML = ("file", "base_dir", "kpi_order", "connections", "run_output", "checkins_dir")

SECTIONS: dict[str, type[BaseModel] | tuple[str, type[BaseModel]]] = {
    "report": Report,
    "sources": ("dict", Source),
    "metrics": ("dict", Metric),
    "kpis": ("dict", Kpi),
    "objectives": ("list", Objective),
    "breakdowns": ("list", Breakdown),
    "funnel": ("list", FunnelStage),
    "portfolio": Portfolio,
    "quality": Quality,
    "delivery": Delivery,
    "insights": Insights,
    "alerts": Alerts,
}
REQUIRED_SECTIONS = ("report", "sources", "metrics", "kpis")
