"""Read a YAML file into plain Python data, remembering where every key and value stood.

- Safe: only the standard YAML tags; ``!!python/...`` is refused with the line it is on.
- Duplicate keys are errors naming both lines.
- ``${NAME}`` is refused everywhere: a report reads no environment variable. Databases, the
  ledger, SMTP logins and the Dask scheduler are connections the operator defines
  (``reporter.config.connections``), so nothing legitimate is left for it, and refusing it
  whatever the variable holds says nothing about which variables are set (no oracle). ``$${``
  writes a literal ``${``. The variable a ``*_env`` key names is remembered for redaction
  (``reporter.security``).
- Bounded: at most ``MAX_BYTES`` of text, ``MAX_DEPTH`` levels of nesting, ``MAX_ALIASES``
  aliases and ``MAX_NODES`` values once aliases are expanded (billion laughs fail fast), and no
  alias that contains itself.
- Booleans keep the text they were written with, so a later check can say "you wrote NO,
  YAML read false" (the Norway problem).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from reporter.config import migration
from reporter.errors import Problem
from reporter.security import remember_secret

Path_ = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024  # a report's YAML is a few kilobytes
MAX_DEPTH = 40  # levels of nesting
MAX_ALIASES = 200  # *alias references
MAX_NODES = 200_000  # values once aliases are expanded
_HINT_NO_ENV = (
    "write the value itself (write $${ for a literal ${); databases, the ledger, SMTP logins and "
    "the Dask scheduler are named with 'connection: NAME', which the operator defines"
)


class _LimitError(yaml.composer.ComposerError):
    """The text goes past a bound while being composed."""


class _TooBig(Exception):
    """The document goes past a bound; ``args[0]`` says which, ``args[1]`` is its node."""


_ENV = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass
class Document:
    """A loaded YAML file: its data, and the position of every node by key path."""

    file: str
    data: Any
    value_pos: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_pos: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    bool_text: dict[Path_, str] = field(default_factory=dict)
    from_env: set[Path_] = field(default_factory=set)
    bad: set[Path_] = field(default_factory=set)  # values already reported (a refused tag...)

    def where(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the value at ``path`` (or of its key), else of the
        nearest enclosing node that has a position."""
        table = self.key_pos if key else self.value_pos
        probe = tuple(path)
        if probe in table:
            return table[probe]
        while probe:
            probe = probe[:-1]
            if probe in self.value_pos:
                return self.value_pos[probe]
        return (None, None)

    def problem(self, path: Path_, message: str, hint: str = "", *, key: bool = False) -> Problem:
        line, col = self.where(path, key=key)
        return Problem(self.file, line, col, format_path(path), message, hint)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


class _Loader(yaml.SafeLoader):
    """SafeLoader whose constructors we drive node by node; composing counts depth and aliases."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = 0
        self.aliases = 0
        self.built = 0
        self.active: set[int] = set()  # collection nodes being built (an alias inside itself)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _LimitError(None, None, f"more than {MAX_ALIASES} aliases (*name)", event.start_mark)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _LimitError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Unsure(Exception):
    """The quick composer leaves this text to the pure-Python one (see ``_compose_quickly``)."""


# Where libyaml and PyYAML's pure-Python parser are known to differ (a tab, other line breaks,
# a byte-order mark), the text is not composed quickly.
_NOT_QUICK = ("\t", "\ufeff", "\x85", "\u2028", "\u2029")

try:
    from yaml._yaml import CParser as _CParser

    _LIBYAML = True
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    _LIBYAML = False


if _LIBYAML:

    class _Quick(_CParser, yaml.composer.Composer, yaml.resolver.Resolver):
        """libyaml's parser under PyYAML's own composer and resolver (about 8 times faster than
        the pure-Python scanner), with ``_Loader``'s bounds. It raises ``_Unsure`` where the two
        parsers may differ (an explicit tag, an empty plain value, a ``?`` in a plain value inside
        [] or {}) or where a bound is passed, so that ``_Loader`` says it as it always has."""

        get_single_node = yaml.composer.Composer.get_single_node
        compose_document = yaml.composer.Composer.compose_document

        def __init__(self, stream: str):
            _CParser.__init__(self, stream)
            self.text = stream
            yaml.composer.Composer.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self.depth = 0
            self.aliases = 0
            self.flow = 0  # [] and {} the next node is inside

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _Unsure
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _Unsure
                event = self.peek_event()
                if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent) and event.tag is not None:
                    raise _Unsure  # an explicit tag: ``_Loader`` refuses or reads it
                if isinstance(event, yaml.ScalarEvent) and _differs(event, self.flow > 0, self.text):
                    raise _Unsure
                flow = int(isinstance(event, yaml.CollectionStartEvent) and bool(event.flow_style))
                self.flow += flow
                try:
                    return yaml.composer.Composer.compose_node(self, parent, index)
                finally:
                    self.flow -= flow
            finally:
                self.depth -= 1


# A block scalar's header as the pure-Python scanner reads it: | or >, the chomping and
# indentation indicators, then the end of the line or blanks and a comment (libyaml takes more).
_BLOCK_HEADER = re.compile(r"[|>](?:[+-][1-9]?|[1-9][+-]?)?(?: +(?:#[^\r\n]*)?)?(?:\r?\n|\Z)")


def _differs(event: yaml.ScalarEvent, in_flow: bool, text: str) -> bool:
    """A value that libyaml may read differently: an empty plain one (at another mark), a plain
    one with a ``?`` inside [] or {} (which the pure-Python parser refuses), a block scalar whose
    header the pure-Python parser would refuse."""
    if event.style in ("|", ">"):
        mark = event.start_mark
        return mark is None or _BLOCK_HEADER.match(text, mark.index) is None
    return not event.style and (event.value == "" or (in_flow and "?" in event.value))


def _compose_quickly(text: str) -> tuple[bool, Any]:
    """(True, the root node, or None for an empty text) composed by libyaml; (False, None) when
    the pure-Python composer must do it: it gives every error and bound its message and mark,
    and reads the texts the two parsers may read differently (tests/test_yaml_quick.py compares
    them). Never raises."""
    if not _LIBYAML or any(c in text for c in _NOT_QUICK):
        return False, None
    try:
        quick = _Quick(text)
    except Exception:  # pragma: no cover - libyaml refusing the text outright: the slow path says why
        return False, None
    try:
        return True, quick.get_single_node()
    except Exception:  # a YAML error, a bound, _Unsure: the pure-Python composer says what it is
        return False, None
    finally:
        quick.dispose()


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    """A YAML syntax error at its line, with what to fix."""
    mark = exc.problem_mark or exc.context_mark
    what = (exc.problem or "not valid YAML").strip()
    hint = (
        "YAML indents with spaces, never tabs: replace the tab with spaces"
        if "'\\t'" in what
        else "check the indentation and the quotes on this line and the one above"
    )
    unclosed = "quoted scalar" in (exc.context or "") and "end of stream" in what
    if unclosed and exc.context_mark is not None:
        # A quote never closed runs to the end of the file: the line to fix is the quote's.
        mark = exc.context_mark
        hint = "close the quote that opens here (unclosed, it runs to the end of the file)"
    line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
    if exc.context:
        what = f"{exc.context.strip()}, {what}"
    return Problem(file, line, col, "", f"YAML syntax error: {what}", hint)


def load_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> tuple[Document, list[Problem]]:
    """Parse ``text``; return the document and every problem found (the document's data is
    ``None`` when the YAML itself cannot be parsed)."""
    env = os.environ if env is None else env
    doc = Document(file=file, data=None)
    problems: list[Problem] = []
    if len(text) > MAX_BYTES:
        problems.append(
            Problem(
                file,
                None,
                None,
                "",
                f"the file is larger than {MAX_BYTES // 1024} KiB",
                "a report's configuration is a few kilobytes; split it into several reports",
            )
        )
        return doc, problems
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        problems.append(
            Problem(
                file,
                line,
                column,
                "",
                f"the character U+{exc.character:04X} is not allowed in YAML",
                "remove it, or write it as an escape in a double-quoted string",
            )
        )
        return doc, problems
    try:
        quick, node = _compose_quickly(text)
        if not quick:
            node = loader.get_single_node()
    except RecursionError:
        problems.append(Problem(file, None, None, "", "the YAML is nested too deeply"))
        return doc, problems
    except _LimitError as exc:
        mark = exc.problem_mark
        problems.append(
            Problem(
                file,
                mark.line + 1 if mark else None,
                mark.column + 1 if mark else None,
                "",
                f"the YAML is {exc.problem}",
                "write each value out",
            )
        )
        return doc, problems
    except yaml.MarkedYAMLError as exc:
        problems.append(_syntax_problem(file, exc))
        return doc, problems
    except yaml.YAMLError as exc:  # pragma: no cover - a reader error without a mark
        problems.append(Problem(file, None, None, "", f"YAML error: {exc}"))
        return doc, problems
    finally:
        loader.dispose()
    if node is None:
        problems.append(Problem(file, 1, 1, "", "the file is empty", "start from config/example.yaml"))
        return doc, problems
    try:
        doc.data = _build(node, (), doc, loader, env, problems)
    except _TooBig as exc:
        problems.append(Problem(file, *_mark(exc.args[1]), "", str(exc.args[0]), "write each value out"))
        doc.data = None
    except RecursionError:
        problems.append(Problem(file, None, None, "", "the YAML is nested too deeply"))
        doc.data = None
    return doc, problems


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _build(
    node: yaml.Node,
    path: Path_,
    doc: Document,
    loader: _Loader,
    env: Mapping[str, str],
    problems: list[Problem],
) -> Any:
    loader.built += 1
    if loader.built > MAX_NODES:
        raise _TooBig(f"more than {MAX_NODES:,} values once aliases are expanded", node)
    if len(path) > MAX_DEPTH:
        raise _TooBig(f"nested more than {MAX_DEPTH} levels deep (through aliases)", node)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in loader.active:
            raise _TooBig("an alias refers to a value that contains it (a recursive alias)", node)
        loader.active.add(id(node))
        try:
            return _build_collection(node, path, doc, loader, env, problems)
        finally:
            loader.active.discard(id(node))
    return _build_scalar(node, path, doc, loader, env, problems)


def _build_collection(
    node: yaml.Node,
    path: Path_,
    doc: Document,
    loader: _Loader,
    env: Mapping[str, str],
    problems: list[Problem],
) -> Any:
    doc.value_pos[path] = _mark(node)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        problems.append(
            Problem(
                doc.file,
                *_mark(node),
                format_path(path),
                f"the YAML tag {tag} is not allowed",
                "write plain values; reporter never builds objects from YAML tags",
            )
        )
        doc.bad.add(path)
        return None
    if isinstance(node, yaml.MappingNode):
        try:
            loader.flatten_mapping(node)  # YAML merge keys (<<)
        except yaml.MarkedYAMLError as exc:
            problems.append(doc.problem(path, f"bad merge key: {exc.problem}"))
            return {}
        out: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = (
                _scalar(key_node, path, doc, loader, problems)
                if isinstance(key_node, yaml.ScalarNode)
                else None
            )
            if isinstance(key, list | dict) or key is None:
                problems.append(
                    Problem(
                        doc.file,
                        *_mark(key_node),
                        format_path(path),
                        "a key must be a plain name",
                        "",
                    )
                )
                continue
            if not isinstance(key, str):
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else str(key)
            child = (*path, key)
            if key in first_seen:
                problems.append(
                    Problem(
                        doc.file,
                        *_mark(key_node),
                        format_path(child),
                        f"duplicate key (first defined on line {first_seen[key]})",
                        "remove one of the two, or merge them",
                    )
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            doc.key_pos[child] = _mark(key_node)
            out[key] = _build(value_node, child, doc, loader, env, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc, loader, env, problems) for i, item in enumerate(node.value)]
    return None  # pragma: no cover - only collections come here


def _build_scalar(
    node: yaml.Node,
    path: Path_,
    doc: Document,
    loader: _Loader,
    env: Mapping[str, str],
    problems: list[Problem],
) -> Any:
    doc.value_pos[path] = _mark(node)
    before = len(problems)
    value = _scalar(node, path, doc, loader, problems)
    if len(problems) > before:
        doc.bad.add(path)
    if isinstance(value, bool):
        doc.bool_text[path] = node.value
    if isinstance(value, str) and "${" in value:
        doc.from_env.add(path)
        value = _interpolate(value, path, doc, problems)
    if isinstance(value, str) and path and str(path[-1]).endswith("_env"):
        remember_secret(env.get(value))  # webhook_env names the variable holding a webhook's URL
    return value


def _scalar(node: yaml.Node, path: Path_, doc: Document, loader: _Loader, problems: list[Problem]) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except ValueError:  # looks like a date or number but is not one (2026-13-01): keep the text
        return node.value if isinstance(node, yaml.ScalarNode) else None
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(node, "tag", "")
        if tag.startswith("tag:yaml.org,2002:python/") or tag.startswith("!"):
            problems.append(
                Problem(
                    doc.file,
                    *_mark(node),
                    format_path(path),
                    f"the YAML tag {tag.replace('tag:yaml.org,2002:', '!!')} is not allowed",
                    "write plain values; reporter never builds objects from YAML tags",
                )
            )
        else:
            problems.append(Problem(doc.file, *_mark(node), format_path(path), str(exc.problem)))
        return None


def _interpolate(value: str, path: Path_, doc: Document, problems: list[Problem]) -> str:
    """``$${`` becomes a literal ``${``; any ``${NAME}`` is an error (once per value), whether or
    not NAME is set: the environment is never read here. A former connection field is left to
    ``migration.removed_keys``, which says what to write instead."""
    refused = False

    def sub(match: re.Match[str]) -> str:
        nonlocal refused
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if not refused and not migration.reported_by_checks(path):
            refused = True
            shown = name if _ENV_NAME.match(name) else "..."
            problems.append(
                doc.problem(
                    path,
                    f"${{{shown}}}: a report reads no environment variable",
                    migration.hint_for(path) or _HINT_NO_ENV,
                )
            )
        return match.group(0)

    return _ENV.sub(sub, value)
