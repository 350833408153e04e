"""Results → HTML through Jinja2 (autoescape, StrictUndefined, gettext, user overrides).

Loader: the user's template folder first (when ``report.template`` is a folder), then the
built-in template of that name; ``default:`` always names the built-in ``executive`` template,
so a user's ``report.html`` can ``{% extends "default:report.html" %}`` and replace one block.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
from markupsafe import Markup

from reporter import __version__
from reporter.assets import DEFAULT, TEMPLATES, builtin_templates, resolve_template
from reporter.config.labels import Labels, breakdown_id
from reporter.config.model import Config
from reporter.errors import ConfigError, Problem, RunError
from reporter.render import charts
from reporter.render.alt import AltText
from reporter.render.attached import csv_name
from reporter.render.context import Formatter, lcfirst, translations
from reporter.render.insights import takeaways, write_texts
from reporter.render.sandbox import BoundedEnvironment, ConfinedLoader, render
from reporter.render.texts import action_context, text_environment
from reporter.render.view import ReportContext, as_mapping, typed
from reporter.results import Results

STATUSES = ("on_track", "at_risk", "off_track", "no_data", "no_target")
# at_risk is no triangle: ▲ and ▼ only ever say that a number went up or down
SYMBOLS = {"on_track": "✔", "at_risk": "◆", "off_track": "✖", "no_data": "–", "no_target": "○"}


def template_dirs(config: Config) -> list[Path]:
    """Where the report's templates are looked up, in order."""
    found = resolve_template(config.report.template, config.base_dir)
    if isinstance(found, str):
        hint = f"built-in templates: {', '.join(builtin_templates())}, or a folder path"
        raise ConfigError([Problem(str(config.file), None, None, "report.template", found, hint)])
    return found


def environment(config: Config, formatter: Formatter) -> jinja2.Environment:
    dirs = template_dirs(config)
    loader = jinja2.ChoiceLoader(
        [
            jinja2.PrefixLoader({"default": ConfinedLoader([TEMPLATES / DEFAULT])}, delimiter=":"),
            ConfinedLoader(dirs),
        ]
    )
    # Templates are code: sandboxed, bounded, confined to their folders (render/sandbox.py).
    env = BoundedEnvironment(
        loader=loader,
        bytecode_cache=COMPILED,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(formatter.locale.language), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(formatter.filters(), css_string=css_string)
    return env


class CompiledTemplates(jinja2.BytecodeCache):
    """The templates compiled once per process, in memory, for every later render's environment:
    a burst or Dask worker renders the same report and email templates for each recipient.
    Jinja checks each entry against the template's source, so a changed file is compiled again;
    the key holds the file and the environment's settings (class, delimiters, whitespace
    options, extensions, filter and test names), so only an environment configured alike reuses
    the code. Nothing is written to disk."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}
        self.compiled = 0  # templates compiled in this process (the tests count them)

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> jinja2.bccache.Bucket:
        key = self.get_cache_key(f"{_settings(environment)}\0{name}", filename)
        bucket = jinja2.bccache.Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self.code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.compiled += 1
        self.code[bucket.key] = bucket.bytecode_to_string()


def _settings(env: jinja2.Environment) -> str:
    """What the compiled code of a template depends on, besides its source."""
    kind = type(env)
    return repr(
        (
            f"{kind.__module__}.{kind.__qualname__}",
            env.block_start_string,
            env.block_end_string,
            env.variable_start_string,
            env.variable_end_string,
            env.comment_start_string,
            env.comment_end_string,
            env.line_statement_prefix,
            env.line_comment_prefix,
            env.trim_blocks,
            env.lstrip_blocks,
            env.newline_sequence,
            env.keep_trailing_newline,
            env.optimized,
            env.is_async,
            env.autoescape if isinstance(env.autoescape, bool) else id(env.autoescape),
            env.finalize is not None,
            sorted(env.extensions),
            sorted(env.filters),
            sorted(env.tests),
        )
    )


COMPILED = CompiledTemplates()


def css_string(text: object) -> Markup:
    """``text`` as a quoted CSS string for a stylesheet in the page: anything but letters,
    digits and spaces becomes a hex escape, so a title cannot end the string or the style."""
    out = "".join(c if c.isalnum() or c == " " else f"\\{ord(c):x} " for c in str(text))
    return Markup(f'"{out}"')


def render_text(template: str, context: Mapping[str, Any], where: str) -> str:
    """Render a string from the YAML (a subject, an action) in a sandbox; a template error or a
    refused attribute is a RunError naming ``where``."""
    if "{" not in template:
        return template
    try:
        compiled = text_environment().from_string(template)
    except jinja2.TemplateError as exc:
        raise RunError(f"{where}: cannot render {template!r}: {exc}") from None
    return render(compiled, context, where, template)


def formula_in_words(config: Config, formula: str, labels: Labels | None = None) -> str:
    """``leads / sessions`` → ``Prospects ÷ Sessions``: names as labels (a metric's, else the KPI's
    of that name), operators as signs."""
    labels = labels or Labels(config)

    def name(match: re.Match[str]) -> str:
        word = match.group(0)
        if word in config.metrics:
            return labels.metric(word)
        if word in config.kpis:
            return labels.kpi(word)
        return word

    text = re.sub(r"[A-Za-z_][A-Za-z0-9_]*", name, formula)
    return text.replace("*", "×").replace("/", "÷").replace(" - ", " − ")


def _data_uri(path: Path) -> str:
    from reporter.security import check_named_file, image_kind

    reason = check_named_file(path)
    mime = None if reason else image_kind(path)
    if reason or mime is None:  # validation refuses these; the file may have changed since
        raise RunError(f"report.logo: {reason or f'{path} is not an image (PNG, JPEG, GIF, WebP or SVG)'}")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def in_sentence(label: str, language: str) -> str:
    """A column's label inside a heading ("Taux de succès par commercial"): its first letter
    lowered, unless the language capitalises nouns (German) or the label starts with an acronym."""
    if language == "de" or label[1:2].isupper():
        return label
    return lcfirst(label)


def _breakdowns(
    config: Config,
    results: Results,
    data: dict[str, Any],
    fmt: Callable[[str, float | None], str],
    formatter: Formatter,
    labels: Labels,
) -> list[dict[str, Any]]:
    """Each breakdown's table as the template places it: the PDF's rows with bar widths, the
    column and its values by their labels."""
    _ = formatter._
    breakdowns = []
    for bd in config.breakdowns:
        key = breakdown_id(bd)
        rows = data["breakdowns"].get(key, [])
        if key in results.pdf_other:  # longer than pdf_rows: the first rows and "other" (all in a CSV)
            rows = [*rows[: bd.pdf_rows], dataclasses.asdict(results.pdf_other[key])]
        top = max((abs(r["value"]) for r in rows if r["value"] is not None), default=0) or 1
        for r in rows:
            r["value_text"] = fmt(bd.kpi, r["value"])
            r["width"] = 0 if r["value"] is None else round(abs(r["value"]) / top * 100)
            r["label"] = (
                _("Other")
                if r["other"]
                else (_("(none)") if r["key"] is None else labels.breakdown_value(bd, r["key"]))
            )
        breakdowns.append(
            {
                "id": key,
                "kpi": labels.kpi(bd.kpi),
                "by": labels.breakdown(bd),
                "by_words": in_sentence(labels.breakdown(bd), labels.language),
                "rows": rows,
                "total": len(data["breakdowns"].get(key, [])),
                "shown": bd.pdf_rows,
                # the whole table inside the PDF (PDF/A only: a plain PDF carries no file)
                "attachment": csv_name(key) if config.delivery.archive.pdfa else None,
                # what moved it, and how concentrated it is (insights)
                "insights": [
                    i["text"]
                    for i in data["insights"]
                    if i.get("breakdown") == key and i["type"] in ("contributors", "concentration")
                ],
            }
        )
    return breakdowns


def _name_objectives(config: Config, objectives: list[dict[str, Any]], names: Labels) -> None:
    """Each objective's title and owner, and its actions' words, in the language of this render."""
    for obj in objectives:
        found = next((o for o in config.objectives if o.id == obj["id"]), None)
        if found is None:
            continue
        obj["title"], obj["owner"] = names.objective(obj["id"]), names.text(found.owner) or ""
        # the actions compute chose: those of the status, and those for always, in YAML order
        chosen = [a for a in found.actions if a.when in (obj["status"], "always")]
        if len(chosen) == len(obj["actions"]):
            for action, source in zip(obj["actions"], chosen, strict=True):
                action["do"] = names.text(source.do) or ""
                action["owner"] = names.text(source.owner) or obj["owner"]


def _name(config: Config, data: dict[str, Any], names: Labels) -> None:
    """Give KPIs, objectives and their actions, moves, sources, quality checks and funnel stages
    their words in the language of this render (results.json holds the compute's, and a source's
    absolute location)."""
    for name, k in data["kpis"].items():
        if name in config.kpis:
            kpi = config.kpis[name]
            k["label"], k["section"] = names.kpi(name), names.section(name)
            k["owner"], k["description"] = names.text(kpi.owner) or "", names.text(kpi.description) or ""
    _name_objectives(config, data["objectives"], names)
    for moves in data["moves"].values():
        for m in (*moves["favourable"], *moves["unfavourable"]):
            m["label"] = names.kpi(m["kpi"])
    for source in data["sources"]:
        source["label"] = names.source(source["name"])
        source["file"] = names.source_file(source["name"]) or source["location"]
    for check in data["quality"]["checks"]:
        check["source_label"] = names.source(check["source"])
    # a burst report's filter: its columns and values by their labels
    data["filter"] = {names.column(k): names.column_value(k, v) for k, v in data["filter"].items()}
    for i, stage in enumerate(data["funnel"]):
        if i < len(config.funnel) and config.funnel[i].metric == stage["metric"]:
            stage["label"] = names.funnel(i)


def _judged_cumulatively(objectives: list[dict[str, Any]]) -> dict[str, bool]:
    """Per KPI, whether its first objective (whose target it shows) is cumulative."""
    out: dict[str, bool] = {}
    for obj in objectives:
        out.setdefault(obj["kpi"], obj["cumulative"])
    return out


def build_context(config: Config, results: Results, formatter: Formatter) -> dict[str, Any]:
    """Everything the template places: the results, labels, and charts drawn from them."""
    _ = formatter._
    alt = AltText(formatter, results.grain)
    names = Labels(config, str(formatter.locale))
    if any("text" not in i for i in results.insights):  # Results straight from compute
        write_texts(results, formatter, names)
    data = results.to_dict()
    _name(config, data, names)
    no_data_text = _("no data")
    kpis = data["kpis"]
    decimals = {n: k.decimals for n, k in config.kpis.items()}

    def fmt(name: str, value: float | None) -> str:
        return formatter.value(value, kpis[name]["format"], decimals.get(name))

    def formats(name: str) -> Callable[[float | None], str]:
        """How KPI ``name``'s values are printed (for the charts' alternative text)."""
        return lambda value: fmt(name, value)

    cumulative = _judged_cumulatively(data["objectives"])
    for name, k in kpis.items():
        k["name"] = name
        points = [(p["period"], p["value"]) for p in k["series"]]
        k["sparkline"] = charts.sparkline(
            [p["value"] for p in k["series"]],
            no_data_text,
            alt.series(k["label"], points, formats(name)),
        )
        bullet_alt = alt.bullet(k["label"], k["attainment"], k["status"])
        k["bullet"] = charts.bullet(k["attainment"], k["status"], bullet_alt)
        k["value_text"] = fmt(name, k["value"])
        # a KPI judged by a cumulative objective: its target is the year to date's, shown by it
        k["cumulative"] = cumulative.get(name, False)
        k["ytd_text"] = fmt(name, k["ytd"])
        k["target_text"] = fmt(name, k["target"])
        k["words"] = formula_in_words(config, k["formula"], names)
        k["unusual"] = next(
            (i["text"] for i in data["insights"] if i["type"] == "unusual_change" and i["kpi"] == name), None
        )

    sections: dict[str, list[dict[str, Any]]] = {}
    for k in kpis.values():
        sections.setdefault(k["section"] or _("Indicators"), []).append(k)

    objectives = []
    for obj in data["objectives"]:
        k = kpis[obj["kpi"]]
        obj["kpi_label"] = k["label"]
        obj["provisional"] = k["provisional"]
        obj["pacing"] = next(
            (i["text"] for i in data["insights"] if i["type"] == "pacing" and i["objective"] == obj["id"]),
            None,
        )
        obj["value_text"] = fmt(obj["kpi"], obj["value"])
        obj["target_text"] = fmt(obj["kpi"], obj["target"])
        labels = [formatter.short_period(p["period"], results.grain) for p in obj["trend"]]
        obj["chart"] = charts.trend(
            labels,
            [p["value"] for p in obj["trend"]],
            [p["target"] for p in obj["trend"]],
            functools.partial(_axis_label, formatter, k["format"]),  # one format for the whole axis
            {
                "no_data": no_data_text,
                "alt": alt.trend(
                    k["label"],
                    [(p["period"], p["value"]) for p in obj["trend"]],
                    [p["target"] for p in obj["trend"]],
                    formats(obj["kpi"]),
                ),
            },
            scale=100.0 if k["format"] == "percent" else 1.0,
            whole=k["format"] == "integer",
        )
        for i, action in enumerate(obj["actions"]):
            action["do"] = render_text(
                action["do"],
                action_context(names, results.period),
                f"objective '{obj['id']}' action {i + 1}",
            )
        objectives.append(obj)

    breakdowns = _breakdowns(config, results, data, fmt, formatter, names)
    funnel = data["funnel"]
    funnel_chart = None
    if funnel:
        funnel_chart = charts.funnel(
            [(s["label"], s["value"], formatter.value(s["value"], "integer")) for s in funnel],
            alt.funnel([(s["label"], s["value"]) for s in funnel]),
        )
    portfolio = data["portfolio"]
    portfolio_chart = None
    if config.portfolio is not None and portfolio:
        none = _("(none)")
        for r in portfolio:
            r["label"] = none if r["key"] is None else names.portfolio_value(r["key"])
        bars = [(r["label"], r["ratio"], r["verdict"]) for r in portfolio]
        portfolio_chart = charts.ratio_bars(
            [(key, ratio, verdict, formatter.value(ratio, "ratio")) for key, ratio, verdict in bars],
            config.portfolio.rules.keep,
            config.portfolio.rules.improve,
            alt.portfolio(in_sentence(names.portfolio(), names.language), bars),
        )
    logo = None
    if config.report.logo is not None:
        logo = _data_uri(config.resolve(config.report.logo))
    return {
        "r": data,
        "report": {
            "id": config.report.id,
            "title": names.title(),
            "company": names.company(),
            "locale": str(formatter.locale),
            "lang": formatter.locale.language,
            "logo": logo,
            "url": config.report.url,
        },
        "period": {
            "label": results.period,
            "words": formatter.period(results.period, results.period_start, results.grain),
        },
        "generated": formatter.timestamp(results.generated_at),
        "version": __version__,
        "kpis": kpis,
        "sections": list(sections.items()),
        "objectives": objectives,
        "breakdowns": breakdowns,
        "funnel": funnel,
        "funnel_chart": funnel_chart,
        "portfolio": portfolio,
        "portfolio_chart": portfolio_chart,
        "portfolio_key": names.portfolio(),
        "portfolio_rules": config.portfolio.rules.model_dump() if config.portfolio else None,
        "symbols": SYMBOLS,
        "tally": [
            (status, count)
            for status in STATUSES
            if (count := sum(1 for o in objectives if o["status"] == status))
        ],
        "colours": charts.PALETTE,
        "fmt_kpi": fmt,
        "delta_legend": formatter.delta_legend(),
        "takeaways": takeaways(config, results, formatter, names),
        "incomplete": incomplete_notes(formatter, names, results),
    }


def incomplete_notes(formatter: Formatter, names: Labels, results: Results) -> list[str]:
    """A warning for each source whose data stops before the period's end (the summary, the
    digest and the chat card say it first)."""
    part = formatter._(
        "Incomplete data: %(source)s has data up to %(date)s, and the period ends on %(end)s; "
        "its figures cover part of the period."
    )
    none = formatter._("No data: %(source)s has no data in this period; its data ends on %(date)s.")
    return [
        (none if (s.last_date or "") < results.period_start else part)
        % {
            "source": names.source(s.name),
            "date": formatter.date(s.last_date),
            "end": formatter.date(results.period_end),
        }
        for s in results.sources
        if s.complete is False
    ]


def _axis_label(formatter: Formatter, fmt: str, value: float, decimals: int) -> str:
    """A tick of a chart's value axis: the KPI's format, with the axis's decimals."""
    return formatter.value(value, fmt, decimals)


def stylesheet_dir(config: Config) -> Path:
    """The template folder whose ``report.css`` the report uses (relative URLs start there)."""
    for folder in template_dirs(config):
        if (folder / "report.css").is_file():
            return folder
    return TEMPLATES / DEFAULT


def screen_css(config: Config) -> str:
    """The preview's ``@media screen`` rules (margins, a readable width): the first
    ``screen.css`` of the template's folders, else the built-in one. The PDF never reads it."""
    for folder in [*template_dirs(config), TEMPLATES / DEFAULT]:
        if (folder / "screen.css").is_file():
            return _confined_css(folder, "screen.css")
    return ""


def _confined_css(folder: Path, name: str) -> str:
    """A stylesheet of the template folder for the preview, read only when it lies in that
    folder (a symbolic link to another file is refused), each ``url()`` and ``@import`` made an
    absolute ``file:`` URL of a file in the folder; a URL or a file elsewhere is a RunError."""
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise RunError(f"template {name}: it leads outside its folder {folder}; nothing was written")
    css = path.read_text(encoding="utf-8")

    def local(match: re.Match[str]) -> str:
        target = next(g for g in match.groups() if g is not None).strip()
        if target.startswith("data:") or target.startswith("#"):
            return match.group(0)
        found = folder / target
        if (
            "://" in target
            or ":" in target.split("/")[0]
            or not found.resolve().is_relative_to(folder.resolve())
        ):
            raise RunError(
                f"template {name}: '{target}' is not a file of its folder {folder}; the preview reads "
                "only the template folder and fetches no URL"
            )
        return f'url("{found.resolve().as_uri()}")'

    css = _URL.sub(local, css)
    return _IMPORT.sub(lambda m: f"@import {local(m)}", css)


# url("x"), url('x'), url(x); @import "x" (the url() form is caught by _URL)
_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.IGNORECASE)
_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def render_html(config: Config, results: Results, *, for_browser: bool = False) -> str:
    """The report as HTML: for WeasyPrint (``report.css`` linked, relative to its folder) or,
    with ``for_browser``, one self-contained file to open in a browser."""
    formatter = Formatter.for_report(config.report)
    env = environment(config, formatter)
    context = build_context(config, results, formatter)
    context["for_browser"] = for_browser
    context["inline_css"] = ""
    if for_browser:
        css = _confined_css(stylesheet_dir(config), "report.css") + "\n" + screen_css(config)
        context["inline_css"] = Markup(css.replace("</", "<\\/"))
    return render(_template(env, "report.html"), as_mapping(typed(ReportContext, context)), "report template")


def _template(env: jinja2.Environment, name: str) -> jinja2.Template:
    """``env.get_template(name)``; a missing, unreadable or broken template is a RunError."""
    from jinja2.exceptions import SecurityError

    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise RunError(f"template {exc.name or name}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise RunError(f"template not found: {exc.name}") from None
    except SecurityError as exc:
        raise RunError(f"template {name}: refused by the template sandbox: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"template {name}: cannot read it ({type(exc).__name__})") from None
