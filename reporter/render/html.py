"""Results → HTML through Jinja2 (autoescape, StrictUndefined, gettext, user overrides).

Loader: the user's template folder first (when ``report.template`` is a folder), then the
built-in template of that name; ``default:`` always names the built-in ``executive`` template,
so a user's ``report.html`` can ``{% extends "default:report.html" %}`` and replace one block.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
from markupsafe import Markup

from reporter import __version__
from reporter.assets import DEFAULT, TEMPLATES, builtin_templates, resolve_template
from reporter.config.labels import Labels, breakdown_id
from reporter.config.model import Action as PlanAction
from reporter.config.model import Config, Objective
from reporter.errors import ConfigError, Problem, RunError
from reporter.render import charts, view
from reporter.render.alt import AltText
from reporter.render.attached import csv_name
from reporter.render.context import Formatter, lcfirst, translations
from reporter.render.insights import takeaways, write_texts
from reporter.render.sandbox import BoundedEnvironment, ConfinedLoader, render
from reporter.render.texts import action_context, text_environment
from reporter.render.view import ReportContext, as_mapping
from reporter.results import Action, FunnelStage, KpiResult, ObjectiveResult, Results

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
    """The templates compiled once per process, in memory, for every later render's environment
    (a burst or Dask worker renders the same report and email templates for each recipient),
    and kept on disk for the next process (``cache_folder``): a fresh ``reporter run`` of the
    demo spent 0.09 s compiling report.html, on the path to its PDF.

    Jinja checks each entry against the template's source, so a changed file is compiled again;
    the key holds the file, the environment's settings (class, delimiters, whitespace options,
    extensions, filter and test names) and the versions of Jinja, reporter and Python, so only
    an environment configured alike reuses the code. Compiled code is code: the folder is used
    only when it is this user's alone (``private_folder``), else the cache stays in memory; a
    folder that cannot be written (a read-only home) is the same as none."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}
        self.compiled = 0  # templates compiled in this process (the tests count them)
        self.loaded = 0  # templates whose compiled code came from the folder (the tests count them)
        self._folder: Path | bool | None = False  # False: not looked for yet

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> jinja2.bccache.Bucket:
        versions = f"{jinja2.__version__}\0{__version__}\0{sys.version_info[:2]}"
        key = self.get_cache_key(f"{versions}\0{_settings(environment)}\0{name}", filename)
        bucket = jinja2.bccache.Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self.code.get(bucket.key)
        if code is None:
            code = self._read(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)  # a stale entry (another source) leaves it empty

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.compiled += 1
        self.code[bucket.key] = bucket.bytecode_to_string()
        self._write(bucket.key, self.code[bucket.key])

    def folder(self) -> Path | None:
        """The folder of compiled templates (``cache_folder``), once it is known to be private."""
        if self._folder is False:
            self._folder = private_folder(cache_folder())
        return self._folder if isinstance(self._folder, Path) else None

    def _read(self, key: str) -> bytes | None:
        folder = self.folder()
        if folder is None:
            return None
        try:
            fd = os.open(folder / f"{key}.jinja", os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as file:
            code = file.read(_MAX_ENTRY + 1)
        if len(code) > _MAX_ENTRY:
            return None
        self.loaded += 1
        return code

    def _write(self, key: str, code: bytes) -> None:
        folder = self.folder()
        if folder is None or len(code) > _MAX_ENTRY:
            return
        import tempfile

        name = None
        try:
            entries = sorted(folder.glob("*.jinja"), key=lambda p: p.stat().st_mtime)
            for old in entries[: max(0, len(entries) - _KEEP + 1)]:  # the oldest go first
                old.unlink(missing_ok=True)
            fd, name = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as file:
                file.write(code)
            os.replace(name, folder / f"{key}.jinja")  # whole or absent, for a process reading it
        except OSError:  # full, read-only, removed meanwhile: the next process compiles again
            if name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(name)


_KEEP = 200  # compiled templates kept on disk: the reports' and the e-mails', with room to spare
_MAX_ENTRY = 16 * 1024 * 1024  # bytes; the demo's report.html compiles to 0.2 MB


def cache_folder() -> Path | None:
    """``$REPORTER_CACHE_DIR/templates``, else ``$XDG_CACHE_HOME/reporter/templates``, else
    ``~/.cache/reporter/templates``; None when ``REPORTER_CACHE_DIR`` is ``off`` (or empty) or
    there is no home."""
    given = os.environ.get("REPORTER_CACHE_DIR")
    if given is not None:
        return None if given.strip() in ("", "off") else Path(given) / "templates"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "reporter" / "templates"
    try:
        return Path.home() / ".cache" / "reporter" / "templates"
    except RuntimeError:  # no home directory
        return None


def private_folder(folder: Path | None) -> Path | None:
    """``folder``, made if missing (mode 0700), when it is a real folder owned by this user that
    nobody else may write to or read, else None."""
    if folder is None:
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return folder


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
    fmt: Callable[[str, float | None], str],
    formatter: Formatter,
    labels: Labels,
) -> list[view.Breakdown]:
    """Each breakdown's table as the template places it: the PDF's rows with bar widths, the
    column and its values by their labels."""
    _ = formatter._
    breakdowns = []
    for bd in config.breakdowns:
        key = breakdown_id(bd)
        every = results.breakdowns.get(key, [])
        rows = list(every)
        if key in results.pdf_other:  # longer than pdf_rows: the first rows and "other" (all in a CSV)
            rows = [*rows[: bd.pdf_rows], results.pdf_other[key]]
        top = max((abs(r.value) for r in rows if r.value is not None), default=0) or 1
        base = _ratio_base(config, bd.kpi)
        if base is not None and base[1] == "number" and all(_whole(r.base) for r in rows):
            base = (base[0], "integer")  # sums of whole numbers: no decimals
        breakdowns.append(
            view.Breakdown(
                id=key,
                kpi=labels.kpi(bd.kpi),
                by=labels.breakdown(bd),
                by_words=in_sentence(labels.breakdown(bd), labels.language),
                base=None if base is None else formula_in_words(config, base[0], labels),
                rows=[
                    view.BreakdownRow(
                        key=r.key,
                        value=r.value,
                        other=r.other,
                        base=r.base,
                        label=_("Other")
                        if r.other
                        else (_("(none)") if r.key is None else labels.breakdown_value(bd, r.key)),
                        value_text=fmt(bd.kpi, r.value),
                        base_text="" if base is None else formatter.value(r.base, base[1]),
                        width=0 if r.value is None else round(abs(r.value) / top * 100),
                    )
                    for r in rows
                ],
                total=len(every),
                shown=bd.pdf_rows,
                # the whole table inside the PDF (PDF/A only: a plain PDF carries no file)
                attachment=csv_name(key) if config.delivery.archive.pdfa else None,
                # what moved it, and how concentrated it is (insights)
                insights=[
                    i["text"]
                    for i in results.insights
                    if i.get("breakdown") == key and i["type"] in ("contributors", "concentration")
                ],
            )
        )
    return breakdowns


def _whole(value: float | None) -> bool:
    return value is None or float(value).is_integer()


def _ratio_base(config: Config, kpi: str) -> tuple[str, str] | None:
    """The divisor of a ratio KPI (``ratio_base``) as text, and the format its values are
    written in: that of the KPI it names, else integer when it adds up counts, else number
    (integer in the end when every row's divisor is whole)."""
    from reporter.formulas import parse, ratio_base

    formulas = {n: parse(k.formula) for n, k in config.kpis.items()}
    base = ratio_base(kpi, formulas, config.metrics)
    if base is None:
        return None
    only = base.text.strip()
    if only in config.kpis:  # a KPI by its name alone (one that presents its metric too)
        return base.text, config.kpis[only].format
    metrics = [config.metrics.get(n) for n in base.names]
    counts = all(m is not None and m.agg in ("count", "count_distinct") for m in metrics)
    return base.text, "integer" if counts and base.names else "number"


def _name_objectives(
    config: Config, objectives: list[dict[str, Any]], names: Labels, notes: Mapping[str, Any]
) -> None:
    """Each objective's title and owner, and its actions' words, in the language of this render."""
    for obj in objectives:
        found = next((o for o in config.objectives if o.id == obj["id"]), None)
        if found is None:
            continue
        obj["title"], obj["owner"] = names.objective(obj["id"]), names.text(found.owner) or ""
        if obj["id"] in notes:  # the owner's note, in this render's language
            obj["note"] = names.text(notes[obj["id"]]) or ""
        chosen = _chosen(found, obj["status"], {a["id"] for a in obj["actions"] if a.get("id")})
        if len(chosen) == len(obj["actions"]):
            for action, source in zip(obj["actions"], chosen, strict=True):
                action["do"] = names.text(source.do) or ""
                action["owner"] = names.text(source.owner) or obj["owner"]


def _chosen(found: Objective, status: str, alive: set[str]) -> list[PlanAction]:
    """The actions compute chose, in YAML order: those with an id by their id (alive, whatever
    the status: compute/followup.py), the others those of the status and those for always."""
    return [a for a in found.actions if (a.id in alive if a.id is not None else a.when in (status, "always"))]


def _life_words(action: Action, formatter: Formatter, grain: str) -> tuple[str, str]:
    """A followed action's state and age in words ("Overdue", "open for 2 months"); empty for
    an action without an id."""
    if action.state is None:
        return "", ""
    _ = formatter._
    words = {
        "open": _("Open"),
        "done": _("Done"),
        "dropped": _("Dropped"),
        "not_needed": _("No longer needed"),
    }[action.state]
    if action.overdue:
        words = _("Overdue")
    if action.state == "not_needed":  # closed by itself (compute/followup.py): say why
        return words, _("objective back on track")
    age = action.age
    if action.state != "open" or age is None:
        return words, ""
    if age == 0:
        return words, _("since this period")  # "Open, since this period"
    one, many = _PERIOD_UNITS.get(grain, _PERIOD_UNITS["month"])
    catalog = translations(formatter.locale.language)
    return words, _("open for %(age)s") % {"age": catalog.ngettext(one, many, age) % {"num": age}}


_PERIOD_UNITS = {
    "month": ("%(num)d month", "%(num)d months"),
    "quarter": ("%(num)d quarter", "%(num)d quarters"),
    "week": ("%(num)d week", "%(num)d weeks"),
}


def results_mapping(config: Config, results: Results, names: Labels) -> dict[str, Any]:
    """The template's ``r``: results.json as a mapping, with KPIs, objectives and their actions,
    moves, sources, quality checks and funnel stages in the words of this render's language
    (results.json holds the compute's, and a source's absolute location)."""
    data = results.to_dict()
    for name, k in data["kpis"].items():
        if name in config.kpis:
            kpi = config.kpis[name]
            k["label"], k["section"] = names.kpi(name), names.section(name)
            k["owner"], k["description"] = names.text(kpi.owner) or "", names.text(kpi.description) or ""
    _name_objectives(config, data["objectives"], names, results.notes)
    for moves in data["moves"].values():
        for m in (*moves["favourable"], *moves["unfavourable"], *moves.get("neutral", [])):
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
    return data


def _judged_cumulatively(objectives: list[ObjectiveResult]) -> dict[str, bool]:
    """Per KPI, whether its first objective (whose target it shows) is cumulative."""
    out: dict[str, bool] = {}
    for obj in objectives:
        out.setdefault(obj.kpi, obj.cumulative)
    return out


class _Builder:
    """The parts of one report's view, made from its results in the words of one language."""

    def __init__(self, config: Config, results: Results, formatter: Formatter):
        self.config, self.results, self.formatter = config, results, formatter
        self._ = formatter._
        self.alt = AltText(formatter, results.grain)
        self.names = Labels(config, str(formatter.locale))
        self.no_data = self._("no data")
        self.decimals = {n: k.decimals for n, k in config.kpis.items()}

    def fmt(self, name: str, value: float | None) -> str:
        return self.formatter.value(value, self.results.kpis[name].format, self.decimals.get(name))

    def formats(self, name: str) -> Callable[[float | None], str]:
        """How KPI ``name``'s values are printed (for the charts' alternative text)."""
        return lambda value: self.fmt(name, value)

    def insight(self, kind: str, key: str, value: str) -> str | None:
        """The text of the first insight of ``kind`` whose ``key`` is ``value``."""
        return next((i["text"] for i in self.results.insights if i["type"] == kind and i[key] == value), None)

    def kpi(self, name: str, k: KpiResult, cumulative: bool) -> view.Kpi:
        config, names = self.config, self.names
        label, section, owner, description = k.label, k.section, k.owner, k.description
        if name in config.kpis:
            spec = config.kpis[name]
            label, section = names.kpi(name), names.section(name)
            owner, description = names.text(spec.owner) or "", names.text(spec.description) or ""
        points = [(p.period, p.value) for p in k.series]
        sparkline = charts.sparkline(
            [p.value for p in k.series], self.no_data, self.alt.series(label, points, self.formats(name))
        )
        if k.attainment is None and k.status == "no_target":
            # a dash that is an artifact (not read aloud: the target column says there is none)
            bullet = charts.no_target_mark()
        else:
            bullet = charts.bullet(k.attainment, k.status, self.alt.bullet(label, k.attainment, k.status))
        return view.Kpi(
            name=name,
            label=label,
            value=k.value,
            previous=k.previous,
            prior_year=k.prior_year,
            change_vs_previous=k.change_vs_previous,
            change_vs_prior_year=k.change_vs_prior_year,
            change_pp_vs_previous=k.change_pp_vs_previous,
            change_pp_vs_prior_year=k.change_pp_vs_prior_year,
            ytd=k.ytd,
            target=k.target,
            attainment=k.attainment,
            status=k.status,
            series=list(k.series),
            format=k.format,
            direction=k.direction,
            section=section,
            owner=owner,
            description=description,
            formula=k.formula,
            provisional=k.provisional,
            # a KPI judged by a cumulative objective: its target is the year to date's, shown by it
            cumulative=cumulative,
            ytd_text=self.fmt(name, k.ytd),
            value_text=self.fmt(name, k.value),
            target_text=self.fmt(name, k.target),
            sparkline=sparkline,
            bullet=bullet,
            words=formula_in_words(config, k.formula, names),
            unusual=self.insight("unusual_change", "kpi", name),
        )

    def actions(self, obj: ObjectiveResult, owner: str) -> list[view.Action]:
        """The objective's actions in the words of this render, their texts rendered, each
        followed one's state and age in words."""
        actions = list(obj.actions)
        found = next((o for o in self.config.objectives if o.id == obj.id), None)
        chosen = _chosen(found, obj.status, {a.id for a in actions if a.id}) if found else []
        if found is not None and len(chosen) == len(actions):
            actions = [
                dataclasses.replace(
                    action, do=self.names.text(spec.do) or "", owner=self.names.text(spec.owner) or owner
                )
                for action, spec in zip(actions, chosen, strict=True)
            ]
        context = action_context(self.names, self.results.period)
        shown = []
        for i, a in enumerate(actions):
            state_text, age_text = _life_words(a, self.formatter, self.results.grain)
            fields = {f.name: getattr(a, f.name) for f in dataclasses.fields(a)}
            fields["do"] = render_text(a.do, context, f"objective '{obj.id}' action {i + 1}")
            shown.append(view.Action(**fields, state_text=state_text, age_text=age_text))
        return shown

    def objective(self, obj: ObjectiveResult, k: view.Kpi) -> view.Objective:
        found = next((o for o in self.config.objectives if o.id == obj.id), None)
        title, owner = obj.title, obj.owner
        if found is not None:
            title, owner = self.names.objective(obj.id), self.names.text(found.owner) or ""
        note = obj.note
        if obj.id in self.results.notes:  # the owner's note, in this render's language
            note = self.names.text(self.results.notes[obj.id]) or ""
        actions = self.actions(obj, owner)
        formatter = self.formatter
        chart = charts.trend(
            [formatter.short_period(p.period, self.results.grain) for p in obj.trend],
            [p.value for p in obj.trend],
            [p.target for p in obj.trend],
            functools.partial(_axis_label, formatter, k.format),  # one format for the whole axis
            {
                "no_data": self.no_data,
                "alt": self.alt.trend(
                    k.label,
                    [(p.period, p.value) for p in obj.trend],
                    [p.target for p in obj.trend],
                    self.formats(obj.kpi),
                ),
            },
            scale=100.0 if k.format == "percent" else 1.0,
            whole=k.format == "integer",
        )
        return view.Objective(
            id=obj.id,
            title=title,
            kpi=obj.kpi,
            kpi_label=k.label,
            target=obj.target,
            value=obj.value,
            attainment=obj.attainment,
            status=obj.status,
            owner=owner,
            due=obj.due,
            cumulative=obj.cumulative,
            target_kind=obj.target_kind,
            actions=actions,
            trend=list(obj.trend),
            value_text=self.fmt(obj.kpi, obj.value),
            target_text=self.fmt(obj.kpi, obj.target),
            chart=chart,
            pacing=self.insight("pacing", "objective", obj.id),
            provisional=k.provisional,
            note=note,
            followed=any(a.state is not None for a in actions),
            overdue=sum(1 for a in actions if a.overdue),
            past_due=obj.past_due,
        )

    def funnel(self) -> list[FunnelStage]:
        """The funnel's stages, their labels in the words of this render."""
        config = self.config
        return [
            dataclasses.replace(stage, label=self.names.funnel(i))
            if i < len(config.funnel) and config.funnel[i].metric == stage.metric
            else stage
            for i, stage in enumerate(self.results.funnel)
        ]

    def portfolio(self) -> tuple[list[view.PortfolioRow], Markup | None]:
        config, names, formatter = self.config, self.names, self.formatter
        if config.portfolio is None or not self.results.portfolio:
            rows = [
                view.PortfolioRow(
                    key=r.key, cost=r.cost, value=r.value, ratio=r.ratio, verdict=r.verdict, label=""
                )
                for r in self.results.portfolio
            ]
            return rows, None
        none = self._("(none)")
        rows = [
            view.PortfolioRow(
                key=r.key,
                cost=r.cost,
                value=r.value,
                ratio=r.ratio,
                verdict=r.verdict,
                label=none if r.key is None else names.portfolio_value(r.key),
            )
            for r in self.results.portfolio
        ]
        bars = [(r.label, r.ratio, r.verdict) for r in rows]
        chart = charts.ratio_bars(
            [(key, ratio, verdict, formatter.value(ratio, "ratio")) for key, ratio, verdict in bars],
            config.portfolio.rules.keep,
            config.portfolio.rules.improve,
            self.alt.portfolio(in_sentence(names.portfolio(), names.language), bars),
        )
        return rows, chart


def build_context(
    config: Config,
    results: Results,
    formatter: Formatter,
    *,
    for_browser: bool = False,
    inline_css: str = "",
) -> ReportContext:
    """Everything the template places: the results, labels, and charts drawn from them, as the
    typed view (render/view.py), each part built once from the results."""
    names = Labels(config, str(formatter.locale))
    if any("text" not in i for i in results.insights):  # Results straight from compute
        write_texts(results, formatter, names)
    make = _Builder(config, results, formatter)
    cumulative = _judged_cumulatively(results.objectives)
    kpis = {name: make.kpi(name, k, cumulative.get(name, False)) for name, k in results.kpis.items()}
    sections: dict[str, list[view.Kpi]] = {}
    for k in kpis.values():
        sections.setdefault(k.section or formatter._("Indicators"), []).append(k)
    objectives = [make.objective(obj, kpis[obj.kpi]) for obj in results.objectives]
    breakdowns = _breakdowns(config, results, make.fmt, formatter, names)
    funnel = make.funnel()
    funnel_chart = None
    if funnel:
        funnel_chart = charts.funnel(
            [(s.label, s.value, formatter.value(s.value, "integer")) for s in funnel],
            make.alt.funnel([(s.label, s.value) for s in funnel]),
        )
    portfolio, portfolio_chart = make.portfolio()
    logo = None
    if config.report.logo is not None:
        logo = _data_uri(config.resolve(config.report.logo))
    return ReportContext(
        r=results_mapping(config, results, names),
        report=view.ReportInfo(
            id=config.report.id,
            title=names.title(),
            company=names.company(),
            locale=str(formatter.locale),
            lang=formatter.locale.language,
            logo=logo,
            url=config.report.url,
        ),
        period=view.PeriodInfo(
            label=results.period,
            words=formatter.period(results.period, results.period_start, results.grain),
        ),
        generated=formatter.timestamp(results.generated_at),
        version=__version__,
        kpis=kpis,
        sections=list(sections.items()),
        objectives=objectives,
        breakdowns=breakdowns,
        funnel=funnel,
        funnel_chart=funnel_chart,
        portfolio=portfolio,
        portfolio_chart=portfolio_chart,
        portfolio_key=names.portfolio(),
        portfolio_rules=config.portfolio.rules.model_dump() if config.portfolio else None,
        symbols=SYMBOLS,
        tally=[
            (status, count)
            for status in STATUSES
            if (count := sum(1 for o in objectives if o.status == status))
        ],
        colours=charts.PALETTE,
        fmt_kpi=make.fmt,
        delta_legend=formatter.delta_legend(),
        takeaways=takeaways(config, results, formatter, names),
        incomplete=incomplete_notes(formatter, names, results),
        for_browser=for_browser,
        inline_css=inline_css,
    )


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
    inline_css = ""
    if for_browser:
        css = _confined_css(stylesheet_dir(config), "report.css") + "\n" + screen_css(config)
        inline_css = Markup(css.replace("</", "<\\/"))
    context = build_context(config, results, formatter, for_browser=for_browser, inline_css=inline_css)
    return render(_template(env, "report.html"), as_mapping(context), "report template")


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
