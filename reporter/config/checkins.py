"""Owners' check-ins: ``checkins/<period>.yaml`` beside the report's YAML.

One file per period (``2026-11.yaml``, ``2026-Q4.yaml``, ``2026-W43.yaml``), written by
``reporter checkin`` (never by hand, though a hand edit is validated like the rest)::

    objectives:
      cut-cac:
        note: Two trade fairs doubled the cost in November.   # text, or {fr: ..., en: ...}
        actions:
          relaunch-quotes: {state: done, comment: Done on the 12th}

``note`` is the owner's word on the objective for that period; each action (by its ``id`` in
the YAML) gets a ``state``: open, done or dropped, and an optional ``comment``. The report of
that period shows them; ``reporter.compute.followup`` turns the files up to a period into each
action's life (since when it is open, whether it is overdue).

Every problem is reported at ``file:line`` with its key path, like the report's YAML. In a
folder holding several reports, each reads the entries of its own objectives; an objective that
no report of the folder has is an error.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, TypeAdapter, ValidationError

from reporter.config import model as m
from reporter.config.explain import SchemaErrors
from reporter.config.loader import Document, Path_, load_yaml
from reporter.errors import ConfigError, Problem, UsageError
from reporter.periods import Period

FOLDER = "checkins"
MAX_FILES = 1000  # periods kept in the folder (twenty years of weeks)
State = Literal["open", "done", "dropped"]
STATES: tuple[str, ...] = ("open", "done", "dropped")


class ActionCheckin(m._Model):
    state: State = Field(description="open, done or dropped.", examples=["done"])
    comment: str = Field("", description="A word on it (free text).", examples=["Done on the 12th"])


class ObjectiveCheckin(m._Model):
    note: m.LabelOrEmpty = Field(
        "", description="The owner's note on the objective: text, or one text per language."
    )
    actions: dict[m.Slug, ActionCheckin] = Field({}, description="Action id → its state.")


class CheckinFile(m._Model):
    objectives: dict[m.Slug, ObjectiveCheckin] = Field({}, description="Objective id → its check-in.")


@dataclass
class Checkins:
    """The check-in files of a report that have been read, by period label (oldest first)."""

    by_period: dict[str, CheckinFile] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # "checkins/<period>.yaml" → its bytes

    def objective(self, period: str, objective: str) -> ObjectiveCheckin | None:
        found = self.by_period.get(period)
        return found.objectives.get(objective) if found is not None else None


def folder_of(base_dir: Path) -> Path:
    return base_dir / FOLDER


def _siblings_objectives(base_dir: Path, own: Path | None) -> set[str] | None:
    """The objective ids of the other report YAMLs of the folder (None when there is none)."""
    others = [p for p in sorted([*base_dir.glob("*.yaml"), *base_dir.glob("*.yml")]) if p != own]
    if not others:
        return None
    ids: set[str] = set()
    for path in others:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        objectives = data.get("objectives") if isinstance(data, dict) else None
        for obj in objectives if isinstance(objectives, list) else []:
            if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                ids.add(obj["id"])
    return ids


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _FileChecker(SchemaErrors):
    """Checks one check-in file against its schema, its problems at the file's lines."""

    def __init__(self, doc: Document, problems: list[Problem]):
        self.doc, self.problems, self.partial = doc, problems, set()

    def add(self, path: Path_, message: str, hint: str = "", *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, hint, key=key))


def parse_file(
    path: Path, objectives: Iterable[m.Objective], report: m.Report, others: set[str] | None
) -> tuple[CheckinFile | None, list[Problem]]:
    """One check-in file read and checked: its content (None when it has problems) and its problems."""
    shown = _shown(path)
    try:
        Period.parse(path.stem, report.grain)
    except ValueError:
        message = f"the name '{path.stem}' is not a period (this report's grain is {report.grain})"
        hint = f"name each check-in file by its period, e.g. {FOLDER}/{_example(report.grain)}.yaml"
        return None, [Problem(shown, None, None, "", message, hint)]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(shown, None, None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    if not text.strip():
        return CheckinFile(), []
    doc, problems = load_yaml(text, shown, {})
    if doc.data is None:
        return None, problems
    checker = _FileChecker(doc, problems)
    if not isinstance(doc.data, dict):
        checker.add((), "a check-in file is a mapping: objectives: {<objective id>: ...}", _WRITE_HINT)
        return None, problems
    parsed = checker._validate(CheckinFile, doc.data, ())
    _check_ids(checker, doc.data, objectives, report, others)
    if problems:
        return None, problems
    assert isinstance(parsed, CheckinFile)
    return (None if problems else parsed), problems


def _check_ids(
    checker: _FileChecker,
    data: dict[Any, Any],
    objectives: Iterable[m.Objective],
    report: m.Report,
    others: set[str] | None,
) -> None:
    """The objective and action ids of a check-in file, checked on the file as written, also when
    its shape has problems, so that every mistake is named at once (an id that is not even a
    valid one is named by the schema)."""
    from reporter.config.explain import did_you_mean

    by_id = {o.id: o for o in objectives}
    written = data.get("objectives")
    for obj_id, entry in written.items() if isinstance(written, dict) else []:
        if not _is_slug(obj_id):
            continue
        where: tuple[str | int, ...] = ("objectives", obj_id)
        obj = by_id.get(obj_id)
        if obj is None:
            if others is not None and obj_id in others:
                continue  # another report of the folder's
            checker.add(
                where,
                f"no objective '{obj_id}' in report '{report.id}'",
                did_you_mean(obj_id, by_id, known_label="objectives are"),
                key=True,
            )
            continue
        ids = [a.id for a in obj.actions if a.id is not None]
        actions = entry.get("actions") if isinstance(entry, dict) else None
        for action_id in actions if isinstance(actions, dict) else []:
            if _is_slug(action_id) and action_id not in ids:
                hint = (
                    did_you_mean(action_id, ids, known_label="its actions are")
                    if ids
                    else "give the action an id in the YAML (objectives[].actions[].id) to follow it up"
                )
                checker.add(
                    (*where, "actions", action_id),
                    f"objective '{obj_id}' has no action '{action_id}'",
                    hint,
                    key=True,
                )


def _is_slug(value: object) -> bool:
    try:
        TypeAdapter(m.Slug).validate_python(value)
    except ValidationError:
        return False
    return True


_WRITE_HINT = "write check-ins with `reporter checkin`, which keeps the file's shape"


def _example(grain: str) -> str:
    return {"month": "2026-11", "quarter": "2026-Q4", "week": "2026-W45"}.get(grain, "2026-11")


def _files(base_dir: Path, folder: Path | None = None) -> list[Path]:
    folder = folder or folder_of(base_dir)
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])[:MAX_FILES]


def check_folder(
    base_dir: Path, objectives: Iterable[m.Objective], report: m.Report, own: Path | None = None
) -> list[Problem]:
    """Every problem of every check-in file of the folder (validation)."""
    problems: list[Problem] = []
    objectives = list(objectives)
    files = _files(base_dir)
    others = _siblings_objectives(base_dir, own) if files else None
    for path in files:
        problems.extend(parse_file(path, objectives, report, others)[1])
    return problems


def load_checkins(config: m.Config, upto: Period, first: Period | None = None) -> Checkins:
    """The check-in files of the periods ``first`` to ``upto`` (of the report's grain), read and
    checked; ConfigError with every problem."""
    out = Checkins()
    problems: list[Problem] = []
    files = [
        p
        for p in _files(config.base_dir, config.checkins_dir)
        if _in_range(p.stem, config.report.grain, first, upto)
    ]
    others = _siblings_objectives(config.base_dir, config.file.resolve()) if files else None
    for path in files:
        parsed, found = parse_file(path, config.objectives, config.report, others)
        problems.extend(found)
        if parsed is not None:
            label = Period.parse(path.stem, config.report.grain).label
            out.by_period[label] = parsed
            out.files[f"{FOLDER}/{path.name}"] = path.read_bytes()
    if problems:
        raise ConfigError(problems)
    out.by_period = dict(
        sorted(out.by_period.items(), key=lambda kv: Period.parse(kv[0], config.report.grain).start)
    )
    return out


def _in_range(stem: str, grain: str, first: Period | None, upto: Period) -> bool:
    try:
        p = Period.parse(stem, grain)  # type: ignore[arg-type]
    except ValueError:
        return True  # read, so that its problem is reported
    return p.start <= upto.start and (first is None or p.start >= first.start)


# -- writing -----------------------------------------------------------------------------------

_ACTION_ARG = re.compile(r"^([^=]+)=(.*)$", re.S)


def write_checkin(
    config: m.Config,
    objective: str,
    period: Period,
    *,
    note: str | None,
    lang: str | None,
    actions: dict[str, str],
    comments: dict[str, str],
) -> Path:
    """Create or update ``checkins/<period>.yaml`` for ``objective``, keeping every other entry;
    the result is checked before it replaces the file (written whole, atomically)."""
    _check_arguments(config, objective, lang, actions, comments)
    if note is not None and not note.strip():
        raise UsageError("--note: the note is empty; write a sentence, or leave --note out")
    path = folder_of(config.base_dir) / f"{period.label}.yaml"
    data: dict[str, Any] = {}
    if path.exists():
        problems = parse_file(path, config.objectives, config.report, None)[1]
        if problems:
            raise ConfigError(problems)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entry = data.setdefault("objectives", {}).setdefault(objective, {})
    if note is not None:
        entry["note"] = _new_note(entry.get("note"), note, lang, config.report.locale)
    states = entry.setdefault("actions", {})
    for action_id in [*actions, *comments]:
        current = states.setdefault(action_id, {"state": "open"})
        if action_id in actions:
            current["state"] = actions[action_id]
        if action_id in comments:
            current["comment"] = comments[action_id]
    if not states:
        del entry["actions"]
    CheckinFile.model_validate(data)  # what is written is valid
    text = (
        f"# Check-ins for {period.label}, written by `reporter checkin` (see docs/checkins.md).\n"
        + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return path


def _new_note(previous: Any, note: str, lang: str | None, locale: str) -> str | dict[str, str]:
    if lang is None:
        return note
    texts = dict(previous) if isinstance(previous, dict) else {}
    if isinstance(previous, str) and previous.strip():
        texts.setdefault(locale.split("_")[0], previous)  # the text so far, in the report's language
    texts[lang] = note
    return texts


def _check_arguments(
    config: m.Config, objective: str, lang: str | None, actions: dict[str, str], comments: dict[str, str]
) -> None:
    from reporter.config.explain import did_you_mean

    obj = next((o for o in config.objectives if o.id == objective), None)
    if obj is None:
        ids = [o.id for o in config.objectives]
        raise UsageError(
            f"report '{config.report.id}' has no objective '{objective}'; "
            + (did_you_mean(objective, ids, known_label="objectives are") or "it has no objective")
        )
    known = [a.id for a in obj.actions if a.id is not None]
    for action_id in [*actions, *comments]:
        if action_id not in known:
            hint = (
                did_you_mean(action_id, known, known_label="its actions are")
                if known
                else "give the action an id in the YAML (objectives[].actions[].id) to follow it up"
            )
            raise UsageError(f"objective '{objective}' has no action '{action_id}'; {hint}")
    for action_id, state in actions.items():
        if state not in STATES:
            raise UsageError(f"--action {action_id}={state}: the state is one of {', '.join(STATES)}")
    if lang is not None and not m._is_language(lang):
        raise UsageError(f"--lang {lang}: not a language code; write one such as fr, en, de")


def parse_pairs(values: list[str], option: str) -> dict[str, str]:
    """``ID=VALUE`` arguments of ``option`` as a mapping (UsageError on a malformed one)."""
    out: dict[str, str] = {}
    for value in values:
        found = _ACTION_ARG.match(value)
        if not found or not found.group(1).strip():
            raise UsageError(f"{option} {value}: write ID=VALUE, e.g. {option} relaunch-quotes=done")
        out[found.group(1).strip()] = found.group(2).strip() if option == "--action" else found.group(2)
    return out


def today_period(config: m.Config, now: dt.datetime) -> Period:
    """The period in progress in the report's zone: the one whose report comes next."""
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(config.report.timezone)).date()
    return Period.containing(local, config.report.grain)
