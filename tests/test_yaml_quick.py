"""The YAML is composed by libyaml under PyYAML's own composer (``loader._compose_quickly``),
about 8 times faster than the pure-Python scanner; wherever the two parsers may read a text
differently, or a bound is passed, the pure-Python composer reads it, so every value, line,
column and message is the one it gives. These tests compare the two on the shipped YAML and on
thousands of mutations of it."""

from __future__ import annotations

import random
import re
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporter.config import loader
from tests.conftest import ROOT

SHIPPED = [
    ROOT / "config" / "example.yaml",
    *sorted((ROOT / "reporter" / "starters").glob("*.yaml")),
    *sorted((ROOT / "tests" / "fixtures").rglob("*.yaml")),
]


def _docs_yaml() -> list[str]:
    return [
        block
        for page in sorted((ROOT / "docs").rglob("*.md"))
        for block in re.findall(r"```ya?ml\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    ]


def _slow(text: str) -> yaml.Node | None:
    """The pure-Python composer's tree (raises what it raises)."""
    slow = loader._Loader(text)
    try:
        return slow.get_single_node()
    finally:
        slow.dispose()


def _shape(node: yaml.Node | None, seen: dict[int, int] | None = None) -> object:
    """What the loader reads of a node tree: kinds, tags, values and every node's line and column
    (an alias is the node it names, once)."""
    if node is None:
        return None
    seen = {} if seen is None else seen
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    where = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, where)
    if isinstance(node, yaml.SequenceNode):
        return ("seq", node.tag, where, [_shape(item, seen) for item in node.value])
    return ("map", node.tag, where, [(_shape(k, seen), _shape(v, seen)) for k, v in node.value])


def _agree(text: str) -> bool:
    """Where the quick composer reads ``text``, the pure-Python one reads the same tree (and does
    not refuse it). True when the quick one read it, False when it left it to the other."""
    quick, node = loader._compose_quickly(text)
    if not quick:
        return False
    try:
        slow = _slow(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise AssertionError(f"only the pure-Python parser refuses {text!r}: {exc}") from None
    assert _shape(node) == _shape(slow), text
    return True


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_shipped_yaml_is_composed_quickly_and_loads_as_the_pure_python_parser_loads_it(path, monkeypatch):
    text = path.read_text(encoding="utf-8")
    assert _agree(text)  # the quick path ran
    quick_doc, quick_problems = loader.load_yaml(text, "F", {})
    monkeypatch.setattr(loader, "_compose_quickly", lambda _text: (False, None))  # the old way
    slow_doc, slow_problems = loader.load_yaml(text, "F", {})
    assert quick_problems == slow_problems
    assert (quick_doc.data, quick_doc.value_pos, quick_doc.key_pos, quick_doc.bool_text) == (
        slow_doc.data,
        slow_doc.value_pos,
        slow_doc.key_pos,
        slow_doc.bool_text,
    )


def test_the_demo_is_never_composed_by_the_pure_python_parser(monkeypatch):
    """Which path ran: the pure-Python composer (``_Loader.get_single_node``, watched here and
    still run if called) is not asked for the demo's YAML; it is for a text with a tab."""
    text = (ROOT / "config" / "example.yaml").read_text(encoding="utf-8")
    asked: list[int] = []
    real = loader._Loader.get_single_node

    def watched(self: loader._Loader) -> yaml.Node | None:
        asked.append(1)
        return real(self)

    monkeypatch.setattr(loader._Loader, "get_single_node", watched)
    doc, problems = loader.load_yaml(text, "F", {})
    assert problems == []
    assert doc.data["report"]["id"] == "marketing-monthly"
    assert asked == []
    doc, problems = loader.load_yaml("a: 1\nb: 'x\ty'\n", "F", {})
    assert problems == []
    assert doc.data == {"a": 1, "b": "x\ty"}
    assert asked == [1]


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n\tb: 2\n",  # a tab: the pure-Python scanner refuses it where libyaml does not
        "a: [x?y]\n",  # a ? inside []: likewise
        "a: {b: }\n",  # an empty value inside {}: another column
        "a: !!python/object:os.system x\n",  # a tag: refused by the loader, with its line
        "a: ! \n",  # a non-specific tag: libyaml reads text, the pure-Python parser null
        "x: " + "[" * 100 + "]" * 100,  # past MAX_DEPTH
        "a: &a [1]\n" + "".join(f"b{i}: *a\n" for i in range(loader.MAX_ALIASES + 1)),  # past MAX_ALIASES
        "a: 1\na: 2\n---\nb: 1\n",  # two documents
        "a: 'unclosed\n",  # a syntax error
        "a: |#\n  x\n",  # a block scalar's header the pure-Python parser refuses
    ],
)
def test_texts_the_parsers_may_read_differently_and_errors_go_to_the_pure_python_parser(text):
    assert loader._compose_quickly(text) == (False, None)


def test_a_bound_passed_or_a_duplicate_key_is_said_as_before():
    _doc, problems = loader.load_yaml("x: " + "[" * 100 + "]" * 100, "F", {})
    assert [str(p) for p in problems] == [
        "F:1:43: the YAML is nested more than 40 levels deep; write each value out"
    ]
    aliases = "a: &a [1]\n" + "".join(f"b{i}: *a\n" for i in range(loader.MAX_ALIASES + 1))
    _doc, problems = loader.load_yaml(aliases, "F", {})
    assert [str(p) for p in problems] == [
        "F:202:7: the YAML is more than 200 aliases (*name); write each value out"
    ]
    assert loader._compose_quickly("a: 1\nb: 2\na: 3\n")[0]  # composed quickly: _build finds the duplicate
    _doc, problems = loader.load_yaml("a: 1\nb: 2\na: 3\n", "F", {})
    assert [str(p) for p in problems] == [
        "F:3:1: a: duplicate key (first defined on line 1); remove one of the two, or merge them"
    ]


MUTATIONS = [
    *":-[]{}#&*!|>'\"\n ,?%@`\\",
    *["  ", "\n  ", "- ", ": ", "\r\n", "\r", "\t", "é", "\u00a0", "~", "null", "yes", "0x1", "1e3"],
    *["2026-10-01", "<<: *a", "&a ", "*a", "!!str ", "---\n", "...\n", "? ", "\n- ", "|\n", ">-\n"],
]


def test_thousands_of_mutations_of_the_shipped_yaml_read_the_same_or_go_to_the_pure_python_parser():
    texts = [p.read_text(encoding="utf-8") for p in SHIPPED] + _docs_yaml()
    rng = random.Random(20261207)
    quick = 0
    for _ in range(3000):
        lines = rng.choice(texts).splitlines(keepends=True)
        start = rng.randrange(len(lines))
        text = "".join(lines[start : start + rng.randint(3, 25)])
        for _ in range(rng.randint(1, 4)):
            at, how = rng.randrange(len(text) + 1), rng.random()
            if how < 0.5:
                text = text[:at] + rng.choice(MUTATIONS) + text[at:]
            elif how < 0.8:
                text = text[:at] + text[at + rng.randint(1, 3) :]
            else:
                text = text[:at] + rng.choice(MUTATIONS) + text[at + 1 :]
        quick += _agree(text)
    assert quick > 1000  # most of them took the quick path


TOKENS = st.sampled_from(
    [
        "a", "b", ": ", "- ", "\n", "  ", "[", "]", "{", "}", ", ", "&x ", "*x", "&y ", "*y", "<<: ",
        "!!str ", "? ", "'", '"', "#", "|", ">", "---", "...", "%YAML 1.1", "\\", "1e9999", ".nan", "~", "é",
        "?", "!", "|#", "|2-", ">+", "\r\n", "no", "2026-10-01", "12:30", "0o17", "+1", "-.5",
    ]
)  # fmt: skip


@settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOKENS, max_size=60).map("".join))
def test_fuzz_the_quick_composer_reads_what_the_pure_python_one_reads(text):
    _agree(text)


def test_the_shipped_documentation_yaml_reads_the_same():
    for block in _docs_yaml():
        _agree(textwrap.dedent(block))
