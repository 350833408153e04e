"""``reproduce``: render an archived PDF again from the configuration inside it.

The PDF may come from anywhere, so what it carries is untrusted input, not instructions:

- its YAML is validated exactly as ``run`` validates a file, its templates and texts rendered in
  the same sandbox, its SQL expressions run in the same locked DuckDB;
- every file or folder it names (sources, ``report.template``, ``report.logo``, ``ca_file``) is
  looked up in the folder the caller names (``--data``): a relative path as it is, an absolute
  path with its root removed; a path that climbs out of that folder (``..``) is refused;
- a SQL source is not run unless the caller names it (``--allow-sql-sources``): it would connect
  to whatever database the PDF says, with the caller's environment;
- nothing is delivered, archived or recorded in a ledger; the only file written is the new PDF,
  under the output folder.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from reporter.config.loader import Document
from reporter.config.model import Config
from reporter.errors import Problem, UsageError
from reporter.files import write_atomic
from reporter.periods import Period
from reporter.results import Results
from reporter.run.stages import render_pdf, report_results

PROVENANCE = "provenance.json"
# The provenance and the YAML inside a PDF are read up to this size, once decompressed (a YAML
# file is at most 1 MiB: reporter.config.loader).
MAX_EMBEDDED = 16 * 2**20
# The keys of the YAML, besides each source's ``path``, that name a file or a folder.
_NAMED_FILES = (("report", "logo"), ("delivery", "email", "smtp", "ca_file"))
DATA_HINT = "copy there the file the report was run with, or name the folder that holds it: --data DIR"


SHOWN_FIELDS = 20  # the changed results.json fields a DIFFERS names


@dataclass
class Reproduction:
    path: Path
    identical: bool
    changed_sources: list[str]
    # each results.json field whose value differs from the archived one: (field, old, new) as
    # JSON text, in the order of the archived file ("(none)" where a side has no such field)
    changed_fields: list[tuple[str, str, str]] = field(default_factory=list)


def reproduce(
    archived: Path,
    output: Path | None = None,
    *,
    data: Path | None,
    allow_sql: Collection[str] = (),
) -> Reproduction:
    """Render ``archived`` again from the YAML and the run's facts attached to it, reading the
    data from ``data`` (see the module's docstring). With the data it was made from, the new PDF
    is byte-identical to the archived one."""
    from reporter.config import load_config
    from reporter.delivery.archive import MAX_PDF, attachments_of

    if archived.stat().st_size > MAX_PDF:
        raise UsageError(f"{archived}: larger than {MAX_PDF // 2**20} MiB: not a PDF reporter archives")
    original = archived.read_bytes()
    try:
        # Only the two attachments used are read, each within MAX_EMBEDDED once decompressed.
        facts = json.loads(attachments_of(original, only={PROVENANCE}, limit=MAX_EMBEDDED)[PROVENANCE])
        name = _configuration_name(facts)
        inside = attachments_of(original, only={name}, limit=MAX_EMBEDDED)
        name, folder, when, sources = _provenance(facts, inside)
    except Exception as exc:  # not a PDF, not one of ours, or a provenance we cannot trust
        from reporter.security import redact

        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise UsageError(f"{archived}: not a PDF archived by reporter ({reason[:200]})") from None
    if data is None:
        recorded = " (a copy of the folder that held its YAML: the paths it names are relative to it)"
        if folder is not None and str(folder).isprintable():
            recorded = f" (the PDF says its configuration was in {folder})"
        raise UsageError(
            f"{archived}: name the folder that holds the report's data: --data DIR{recorded}; "
            "reproduce reads no path the PDF names without it"
        )
    if not data.is_dir():
        raise UsageError(f"--data {data}: not a folder")
    data = data.resolve()
    allowed = set(allow_sql)
    sql_sources: list[str] = []

    def confine(doc: Document) -> list[Problem]:
        return _confine(doc, data, allowed, sql_sources)

    safe = _safe_yaml_name(name)
    with tempfile.TemporaryDirectory() as tmp:
        # Only a safe base name is ever written, and only into this temporary folder.
        path = Path(tmp) / safe
        path.write_bytes(inside[name])
        # Validated like any other configuration, every path it names looked up under --data.
        config = load_config(path, base_dir=data, shown=f"{archived} » {safe}", before=confine)
        _check_confined(config, allowed)
        unknown = sorted(allowed - set(sql_sources))
        if unknown:
            known = ", ".join(sql_sources) or "none"
            raise UsageError(
                f"--allow-sql-sources: no SQL source {', '.join(map(repr, unknown))} in the PDF's "
                f"configuration (its SQL sources: {known})"
            )
        try:
            period = Period.parse(str(facts["period"]), config.report.grain)
        except ValueError as exc:
            raise UsageError(f"{archived}: the provenance's period is not valid ({exc})") from None
        config = _with_checkins(config, original, Path(tmp))
        results = report_results(config, period, when)
        changed = _as_recorded(results, sources)
        pdf = render_pdf(
            config, results, run_id=str(facts["run_id"]), trigger=str(facts["trigger"]), folder=folder
        )
    target = (output or Path("output")) / "reproduced" / archived.name
    write_atomic(target, pdf)
    fields: list[tuple[str, str, str]] = []
    if pdf != original:
        fields = _changed_fields(_archived_results(original), json.loads(results.to_json()))
    return Reproduction(target, pdf == original, changed, fields)


def _archived_results(original: bytes) -> Any:
    """The results.json inside the archived PDF (None when it has none, or not as JSON)."""
    from reporter.delivery.archive import attachments_of

    try:
        found = attachments_of(original, only={"results.json"}, limit=MAX_EMBEDDED)
        return json.loads(found["results.json"])
    except Exception:  # checked by nothing else: a PDF without it just names no field
        return None


_NONE = object()


def _changed_fields(old: Any, new: Any, at: str = "") -> list[tuple[str, str, str]]:
    """Every leaf of two JSON trees whose value differs: (``kpis.revenue.value``, old, new)."""

    def shown(value: Any) -> str:
        return "(none)" if value is _NONE else json.dumps(value, ensure_ascii=False, sort_keys=True)

    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, str, str]] = []
        for key in [*old, *(k for k in new if k not in old)]:
            name = f"{at}.{key}" if at else str(key)
            out += _changed_fields(old.get(key, _NONE), new.get(key, _NONE), name)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else _NONE
            b = new[i] if i < len(new) else _NONE
            out += _changed_fields(a, b, f"{at}[{i}]")
        return out
    if old is _NONE and isinstance(new, (dict, list)) and new:  # a part only the new one has
        return _changed_fields(_empty_like(new), new, at)
    if new is _NONE and isinstance(old, (dict, list)) and old:
        return _changed_fields(old, _empty_like(old), at)
    if old == new and type(old) is type(new):
        return []
    return [(at or "(the whole file)", shown(old), shown(new))]


def _empty_like(value: Any) -> Any:
    """A tree of ``value``'s shape with every leaf missing (so each leaf is named once)."""
    if isinstance(value, dict):
        return {k: _empty_like(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_empty_like(v) for v in value]
    return _NONE


def _with_checkins(config: Config, original: bytes, tmp: Path) -> Config:
    """The configuration reading the owners' check-ins from their copies inside the archived PDF
    (``checkins-<period>.yaml``, as its results.json lists them), written into ``tmp``: never
    the check-in files of today's folder."""
    import re

    from reporter.config.checkins import FOLDER
    from reporter.delivery.archive import attachments_of

    try:
        listed = json.loads(
            attachments_of(original, only={"results.json"}, limit=MAX_EMBEDDED)["results.json"]
        )
        paths = [str(p["path"]) for p in listed.get("checkins", [])]
    except Exception:  # no list to read (too large, not ours): reproduced without check-ins
        paths = []
    names = {
        f"{FOLDER}-{m.group(1)}.yaml": m.group(1)
        for p in paths
        if (m := re.fullmatch(rf"{FOLDER}/([0-9A-Z-]+)\.yaml", p))
    }
    folder = tmp / FOLDER
    folder.mkdir()
    for name, content in attachments_of(original, only=set(names), limit=MAX_EMBEDDED).items():
        (folder / f"{names[name]}.yaml").write_bytes(content)
    return config.model_copy(update={"checkins_dir": folder})


def _confine(doc: Document, data: Path, allowed: set[str], sql_sources: list[str]) -> list[Problem]:
    """Before anything the embedded YAML names is read: refuse the SQL sources not allowed, and
    point every path it names into ``data`` (rewriting the parsed values in place)."""
    problems: list[Problem] = []
    root = doc.data if isinstance(doc.data, dict) else {}
    sources = root.get("sources")
    refused: dict[str, Any] = {}
    for key, source in sources.items() if isinstance(sources, dict) else ():
        if not isinstance(source, dict):
            continue  # validation says why
        name = str(key)
        if source.get("type") == "sql" or "url" in source or "connection" in source:
            sql_sources.append(name)
            if name not in allowed:
                refused[name] = key
            continue
        problems += _point_into(doc, source, "path", ("sources", key, "path"), data, must_exist=True)
    for key in refused.values():
        problems.append(
            doc.problem(
                ("sources", key),
                "a SQL source: not run from a PDF's configuration (it would connect to the database "
                "the PDF names, with your environment)",
                f"to run it anyway, name it: --allow-sql-sources {','.join(refused)}",
                key=True,
            )
        )
    report = root.get("report")
    if isinstance(report, dict):
        template = report.get("template")
        if isinstance(template, str) and ("/" in template or template.startswith(".")):
            problems += _point_into(doc, report, "template", ("report", "template"), data, folder=True)
    for keys in _NAMED_FILES:
        parent: Any = root
        for part in keys[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            problems += _point_into(doc, parent, keys[-1], keys, data)
    return problems


def _point_into(
    doc: Document,
    holder: dict[str, Any],
    key: str,
    where: tuple[Any, ...],
    data: Path,
    *,
    must_exist: bool = False,
    folder: bool = False,
) -> list[Problem]:
    """``holder[key]``, a path from the PDF's YAML, made relative to ``data`` (the
    configuration's folder): absolute without its root; a problem when it leaves ``data``."""
    text = holder.get(key)
    if not isinstance(text, str):
        return []  # absent, or not text: validation says why
    inside = within(text)
    if inside is None:
        return [
            doc.problem(
                where,
                f"'{text}' leaves the data folder: reproduce reads only files under --data",
                "copy the file the report was run with under the data folder",
            )
        ]
    holder[key] = f"./{inside}" if folder else inside
    target = data / inside
    if must_exist and not target.is_file():
        return [doc.problem(where, f"'{text}' is not in the data folder (no file {target})", DATA_HINT)]
    return []


def within(text: str) -> str | None:
    """A path the PDF names, as a path inside the data folder: a relative one as it is, an
    absolute one without its root (``/srv/x.csv`` → ``srv/x.csv``), ``..`` resolved in the text;
    None when it climbs out (``../x.csv``, ``a/../../x.csv``)."""
    pure = PurePath(text)
    parts = pure.parts[1:] if pure.anchor else pure.parts
    inside = posixpath.normpath("/".join(parts)) if parts else "."
    if inside == ".." or inside.startswith("../"):
        return None
    return inside


def _check_confined(config: Config, allowed: set[str]) -> None:
    """What the checked configuration reads: no SQL source that was not allowed, no path outside
    the data folder (``_confine`` made it so; this holds even if validation changed)."""
    for name, source in config.sources.items():
        if source.type == "sql":
            if name not in allowed:  # pragma: no cover - refused by _confine
                raise UsageError(f"source '{name}': a SQL source, not allowed")
        elif source.path is None or source.path.is_absolute() or ".." in source.path.parts:
            raise UsageError(f"source '{name}': its path is outside the data folder")  # pragma: no cover


def _as_recorded(results: Results, recorded: list[dict[str, Any]]) -> list[str]:
    """The sources whose data differs from the archived run's (by SHA-256); each source's
    location set back to the one the archived PDF records, so that the same data gives the
    same PDF wherever it is read from (the data read is always the one under --data)."""
    before = {s["name"]: s for s in recorded}
    changed = []
    for source in results.sources:
        then = before.get(source.name)
        if then is None or then.get("sha256") != source.sha256:
            changed.append(source.name)
        if then is not None:
            source.location = then["location"]
    return changed


def _configuration_name(facts: Any) -> str:
    """The name of the attached configuration, as the provenance gives it ('' when it does not)."""
    configuration = facts.get("configuration") if isinstance(facts, dict) else None
    name = configuration.get("file") if isinstance(configuration, dict) else None
    return name if isinstance(name, str) else ""


def _provenance(
    facts: Any, inside: Mapping[str, bytes]
) -> tuple[str, Path | None, dt.datetime, list[dict[str, Any]]]:
    """The fields ``reproduce`` uses, checked: ValueError/KeyError/TypeError when malformed."""
    if not isinstance(facts, dict) or not isinstance(facts.get("configuration"), dict):
        raise ValueError("provenance.json has no configuration")
    name, folder = facts["configuration"].get("file"), facts["configuration"].get("folder")
    if not isinstance(name, str) or name not in inside:
        raise ValueError("the configuration it names is not attached")
    # a PDF archived before paths were relative records its configuration's absolute folder
    if folder is not None and (not isinstance(folder, str) or not Path(folder).is_absolute()):
        raise ValueError("configuration.folder is not an absolute folder")
    for key in ("period", "run_id", "trigger", "generated_at"):
        if not isinstance(facts.get(key), str):
            raise ValueError(f"{key} is missing")
    when = dt.datetime.fromisoformat(facts["generated_at"])
    if when.tzinfo is None:
        raise ValueError("generated_at has no time zone")
    sources = facts.get("sources")
    if not isinstance(sources, list) or not all(
        isinstance(s, dict) and all(isinstance(s.get(k), str) for k in ("name", "kind", "location"))
        for s in sources
    ):
        raise ValueError("sources is malformed")
    return name, None if folder is None else Path(folder), when, sources


def _safe_yaml_name(name: str) -> str:
    """The attachment's name reduced to a plain base name (``../../x``, ``/etc/x`` → ``x``)."""
    base = Path(name.replace("\\", "/")).name
    if not base or base.startswith(".") or not base.endswith((".yaml", ".yml")) or base != base.strip():
        return "report.yaml"
    return base
