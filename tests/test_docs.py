"""The documentation: every configuration key described, the generated reference up to date and
complete, the site builds with ``mkdocs build --strict``, nothing points outside the repository."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from reporter.config import model as m
from reporter.config.reference import generate
from tests.conftest import ROOT

REFERENCE = ROOT / "docs" / "configuration.md"
NOT_YAML = {("Config", name) for name in m.NOT_YAML}


def models() -> list[type[BaseModel]]:
    return [
        cls
        for cls in vars(m).values()
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == m.__name__
    ]


def test_every_model_field_has_a_description_and_every_key_an_example():
    found = models()
    assert {"Report", "Source", "CsvOptions", "Smtp", "Recipient", "Target", "Config"} <= {
        c.__name__ for c in found
    }
    no_description = [
        f"{cls.__name__}.{name}" for cls in found for name, f in cls.model_fields.items() if not f.description
    ]
    assert no_description == [], "add Field(description=...) in reporter/config/model.py"
    no_example = [
        f"{cls.__name__}.{name}"
        for cls in found
        if cls is not m.Config
        for name, f in cls.model_fields.items()
        if not f.examples
    ]
    assert no_example == [], "add Field(examples=[...]) in reporter/config/model.py"


def test_the_reference_page_is_current():
    assert REFERENCE.read_text(encoding="utf-8") == generate(), (
        "docs/configuration.md is stale: run `make docs-gen` "
        "(python -m reporter.config.reference > docs/configuration.md)"
    )


def _nested_models(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """The models inside a field's type: ('', M) for M or M | None, ('[]', M) for list[M],
    ('.<name>', M) for dict[str, M]."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    if origin is list:
        return [("[]", cls) for _, cls in _nested_models(get_args(annotation)[0])]
    if origin is dict:
        return [(".<name>", cls) for _, cls in _nested_models(get_args(annotation)[1])]
    if origin in (types.UnionType, typing.Union) or origin is typing.Annotated:
        return [found for arg in get_args(annotation) for found in _nested_models(arg)]
    return []


def yaml_keys() -> set[str]:
    """Every key path of the YAML, walked from the Python types (independently of the generator)."""
    keys: set[str] = set()

    def walk(prefix: str, cls: type[BaseModel]) -> None:
        for name, f in cls.model_fields.items():
            if (cls.__name__, name) in NOT_YAML:
                continue
            path = f"{prefix}.{f.alias or name}" if prefix else (f.alias or name)
            if cls is not m.Config:
                keys.add(path)
            for suffix, inner in _nested_models(f.annotation):
                walk(path + suffix, inner)

    walk("", m.Config)
    return keys


def test_the_reference_lists_every_key():
    headings = set(re.findall(r"^### `([^`]+)`$", REFERENCE.read_text(encoding="utf-8"), re.M))
    expected = yaml_keys()
    assert len(expected) > 90
    some = {"sources.<name>.csv.delimiter", "objectives[].actions[].due_in_days", "delivery.email.from"}
    assert some <= expected
    assert headings == expected
    sections = set(re.findall(r"^## `([^`]+)`$", REFERENCE.read_text(encoding="utf-8"), re.M))
    assert sections == set(m.SECTIONS)


def test_mkdocs_build_strict(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()
    nav = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    for page in ("configuration", "numbers", "commands", "templates", "operating"):
        assert f'href="{page}/"' in nav, page


def test_nothing_points_outside_the_repository():
    """No link to the authors' own folders beside the repository (a sibling 'shared' folder) or to
    an absolute path of their machine, in the files a user reads."""
    files = [ROOT / "README.md", ROOT / "mkdocs.yml", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted((ROOT / "config").glob("*.yaml"))
    offending = [
        f"{path.relative_to(ROOT)}: {match}"
        for path in files
        for match in re.findall(r"\.\./shared\S*|/work/\S*", path.read_text(encoding="utf-8"))
    ]
    assert offending == []
    # Every relative link of the README exists in the repository.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?!https?:|#)[^)#]+)", readme)
    assert links, "the README links to the docs pages"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert missing == []


def _context(make_config, tmp_path):
    from reporter.compute.database import compute
    from reporter.periods import Period
    from reporter.render.context import Formatter
    from reporter.render.html import build_context
    from tests.conftest import write_csv

    write_csv(tmp_path / "d.csv", ["date", "n"], [["2026-10-01", 1]])
    config = make_config(
        "report: {id: r, title: T}\nsources: {s: {type: csv, path: d.csv, date_column: date}}\n"
        "metrics: {n: {source: s, agg: sum, column: n}}\nkpis: {n: {formula: n}}\n"
    )
    results = compute(config, Period.parse("2026-10", "month"), dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    formatter = Formatter("en_US", "EUR")
    return config, formatter, build_context(config, results, formatter)


def test_the_template_guide_context_is_generated_from_the_typed_view():
    """docs/templates.md's context section is what reporter/render/view.py declares, help texts
    included: a field added, removed or renamed there changes the guide (make docs-gen)."""
    from reporter.render.view import END, START, with_reference

    page = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    assert START in page
    assert END in page
    assert page == with_reference(page), "docs/templates.md is stale: run `make docs-gen`"


def test_the_view_is_built_typed_and_refuses_a_wrong_type(make_config, tmp_path):
    """build_context makes the typed view itself (frozen dataclasses, one object per KPI read
    from two places); a field of the wrong type, a missing field or an undeclared one is a
    TypeError where the value is made, naming the class, the field, the type expected and the
    value got, so the view and the guide cannot drift from the code."""
    import dataclasses

    from markupsafe import Markup

    from reporter.render.view import Kpi, ReportContext, SeriesPoint, as_mapping
    from reporter.results import SeriesPoint as ResultsPoint

    _, _, view = _context(make_config, tmp_path)
    assert isinstance(view, ReportContext)
    assert isinstance(view.kpis["n"], Kpi)
    assert view.sections[0][1][0] is view.kpis["n"]  # one object, read from both places
    assert set(as_mapping(view)) == set(ReportContext.__dataclass_fields__)
    assert SeriesPoint is ResultsPoint  # one definition, shared by results.json and the view
    assert view.kpis["n"]["value"] == view.kpis["n"].value  # as a template reads it
    with pytest.raises(
        TypeError, match=r"^SeriesPoint.value: expected float \| None, got str 'not a number'$"
    ):
        SeriesPoint(period="2026-10", value="not a number")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^SeriesPoint.period: expected str, got int 202610$"):
        SeriesPoint(period=202610, value=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^Kpi.sparkline: expected Markup, got str '<svg/>'$"):
        dataclasses.replace(view.kpis["n"], sparkline="<svg/>")
    with pytest.raises(TypeError, match=r"^Kpi.series: expected list\[SeriesPoint\], got list \[\{"):
        dataclasses.replace(view.kpis["n"], series=[{"period": "2026-10", "value": 1.0}])
    with pytest.raises(
        TypeError,
        match=r"^Kpi.status: expected 'on_track' \| 'at_risk' \| 'off_track' \| 'no_data' \| 'no_target', "
        r"got str 'late'$",
    ):
        dataclasses.replace(view.kpis["n"], status="late")
    with pytest.raises(TypeError, match="unexpected keyword argument 'shiny'"):
        dataclasses.replace(view, shiny=1)
    fields = {f.name: getattr(view.kpis["n"], f.name) for f in dataclasses.fields(Kpi)}
    del fields["words"]
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'words'"):
        Kpi(**fields)
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.kpis["n"].value = 2.0  # type: ignore[misc]
    assert dataclasses.replace(view.kpis["n"], sparkline=Markup("<svg/>")).sparkline == "<svg/>"


def test_the_template_guide_lists_exactly_the_filters(make_config, tmp_path):
    """The filters table of docs/templates.md names every filter reporter adds, and no other."""
    import jinja2

    from reporter.render.html import environment

    config, formatter, _ = _context(make_config, tmp_path)
    page = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    table = page.split("## Filters and functions", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)", table, re.M)) - {"_"}
    filters = set(environment(config, formatter).filters) - set(jinja2.defaults.DEFAULT_FILTERS)
    assert {"fmt", "change", "attainment", "date", "timestamp", "css_string"} <= filters
    assert sorted(filters) == sorted(documented)
