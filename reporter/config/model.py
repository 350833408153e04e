"""The configuration schema (SPEC section 2) as pydantic v2 models.

Types and allowed values live here; rules that span keys or need the data (names that must
exist, formulas, cycles, SQL, files and columns) live in ``checks.py`` so each error can name the
exact key it is about. Every model forbids unknown keys.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Name = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1)]

Grain = Literal["month", "quarter", "week"]
Agg = Literal["sum", "count", "count_distinct", "avg", "min", "max", "last"]
Format = Literal["number", "integer", "currency", "percent", "ratio", "days"]
Direction = Literal["up", "down", "neutral"]
Status = Literal["on_track", "at_risk", "off_track"]
When = Literal["on_track", "at_risk", "off_track", "always"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Report(_Model):
    id: Slug
    title: Text
    company: str = ""
    locale: str = "en_US"
    currency: str = "EUR"
    timezone: str = "UTC"
    grain: Grain = "month"
    fiscal_year_start: Annotated[int, Field(ge=1, le=12)] = 1
    template: str = "executive"
    output_dir: Path | None = None
    logo: Path | None = None


class CsvOptions(_Model):
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    decimal: Literal[".", ","] = "."
    encoding: str = "utf-8"
    date_format: str | None = None
    null_values: list[str] = [""]
    header: bool = True
    quote: Annotated[str, Field(min_length=1, max_length=1)] = '"'


class Source(_Model):
    type: Literal["csv", "parquet", "excel", "json", "sql"]
    date_column: Text
    path: Path | None = None
    url: str | None = None
    query: str | None = None
    csv: CsvOptions | None = None
    sheet: str | int | None = None
    shared: bool = False
    frequency: Literal["daily", "weekly", "monthly"] = "daily"
    description: str = ""


class Metric(_Model):
    source: Name
    agg: Agg
    column: str | None = None
    expr: str | None = None
    where: str | None = None
    label: str | None = None
    description: str = ""


class Kpi(_Model):
    formula: Text
    label: str | None = None
    format: Format = "number"
    direction: Direction = "up"
    section: str = ""
    owner: str = ""
    description: str = ""
    decimals: Annotated[int, Field(ge=0, le=6)] | None = None


class Target(_Model):
    value: float | None = None
    change_vs_prior_year: float | None = None
    change_vs_previous: float | None = None
    by_period: dict[str, float] | None = None


class Thresholds(_Model):
    on_track: float = 1.0
    at_risk: float = 0.9


class Action(_Model):
    when: When
    do: Text
    owner: str = ""
    due_in_days: Annotated[int, Field(ge=0, le=3660)] | None = None


class Objective(_Model):
    id: Slug
    title: Text
    kpi: Name
    target: Target
    cumulative: bool = False
    thresholds: Thresholds = Thresholds()
    owner: Text
    due: dt.date
    description: str = ""
    actions: list[Action] = []


class Breakdown(_Model):
    kpi: Name
    by: Text
    top: Annotated[int, Field(ge=1, le=1000)] | None = None


class FunnelStage(_Model):
    label: Text
    metric: Name


class PortfolioRules(_Model):
    keep: float = 1.5
    improve: float = 0.8


class Portfolio(_Model):
    by: Text
    cost: Name
    value: Name
    rules: PortfolioRules = PortfolioRules()


class Quality(_Model):
    require_complete_period: bool = True
    min_rows: Annotated[int, Field(ge=0)] = 1


class Smtp(_Model):
    host: Text
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    # seconds to wait for the reply after the message's end (RFC 5321 4.5.3.2.6: 10 minutes)
    data_timeout: Annotated[float, Field(gt=0, le=3600)] = 600.0
    ca_file: Path | None = None  # a CA bundle to trust (a company's own CA), relative to the file


class Recipient(_Model):
    email: Text
    filter: dict[str, str | int | float | bool] = {}


class Email(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: Annotated[Text, Field(alias="from")]
    to: list[Text] = []
    cc: list[Text] = []
    subject: Text = "{{ report.title }} — {{ period.label }}"
    smtp: Smtp | None = None
    recipients: list[Recipient] = []


class Archive(_Model):
    dir: Path = Path("output/archive")
    pdfa: bool = True


class Delivery(_Model):
    schedule: str | None = None
    catch_up: Annotated[int, Field(ge=0, le=120)] = 1
    retry_every: str = "1h"
    give_up_after: str = "3d"
    alerts_to: list[Text] = []
    ledger: str | None = None  # a SQLAlchemy URL; default: SQLite in the output folder
    email: Email | None = None
    archive: Archive = Archive()


class Config(_Model):
    """A whole report: what ``load_config`` returns once every check has passed."""

    report: Report
    sources: dict[Name, Source]
    metrics: dict[Name, Metric]
    kpis: dict[Name, Kpi]
    objectives: list[Objective] = []
    breakdowns: list[Breakdown] = []
    funnel: list[FunnelStage] = []
    portfolio: Portfolio | None = None
    quality: Quality = Quality()
    delivery: Delivery = Delivery()

    # Not YAML keys: where the file was, so relative paths and messages can use it.
    file: Path = Path("report.yaml")
    base_dir: Path = Path(".")

    def kpi_label(self, name: str) -> str:
        return self.kpis[name].label or name.replace("_", " ")

    def resolve(self, path: Path) -> Path:
        """A path from the YAML, relative to the config file's folder."""
        return path if path.is_absolute() else (self.base_dir / path)


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
}
REQUIRED_SECTIONS = ("report", "sources", "metrics", "kpis")
