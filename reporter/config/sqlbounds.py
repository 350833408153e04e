"""Limits on the SQL a configuration holds, checked before any parser reads it.

sqlglot's parser and the walks over DuckDB's parse tree recurse once (or a few dozen Python
frames) per level of nesting, and their cost grows with the text's length: 60 nested
parentheses end in a RecursionError, an IN list of 100,000 values takes 17 s and 500 MB. So a
derived source's ``sql``, a SQL source's ``query`` and a metric's ``expr``/``where`` are first
measured here, in one linear pass that reads no SQL grammar: their length, and how deep their
parentheses, brackets, braces and CASE … END nest (string literals, quoted names and comments
aside). Over a limit, the text is refused with the limit and the measured value; no parser sees
it.

The depth limit leaves sqlglot room: at ``MAX_DEPTH`` levels of its deepest construct (about
27 Python frames a level) it needs some 570 frames. What still recurses too deep under the limit
(a hundred ``NOT NOT …``, which nest without a parenthesis) is caught where the parsers are
called and refused as "nested too deeply", never a traceback. Validation parses with sqlglot
through :func:`with_frames`, with a fixed room of ``PARSER_FRAMES`` frames whatever the
caller's stack, so a text that passes parses again at run time, where the stack is deeper.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_QUERY_LENGTH = 50_000  # a derived source's sql, a SQL source's query (characters)
MAX_EXPRESSION_LENGTH = 10_000  # a metric's expr or where (characters)
MAX_DEPTH = 20  # levels of ( [ { and CASE nested in one another
MAX_FILE_SQL = 200_000  # all of the above in one configuration file, together (characters)
PARSER_FRAMES = 650  # the Python frames a check's sqlglot parse may use (of the default 1,000)

_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def nesting(text: str) -> int:
    """How deep ``(``, ``[``, ``{`` and ``CASE`` nest in ``text``, outside string literals
    ('…', E'…' with backslash escapes, $tag$…$tag$), quoted names ("…") and comments (-- to the
    end of the line, /* … */, which nest). One pass, linear in the text's length. An unclosed
    quote or comment hides the rest of the text (the parser then says what is wrong)."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        skipped = _skip(text, i)
        if skipped is not None:
            i = skipped
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth = max(depth - 1, 0)
        elif c.isalpha() or c == "_":
            word = _WORD.match(text, i)
            end = word.end() if word else i + 1
            lowered = text[i:end].lower()
            if i > 0 and _word_char(text[i - 1]):  # inside a word (a digit before it: 1e5)
                lowered = ""
            if lowered == "case":
                depth += 1
            elif lowered == "end":
                depth = max(depth - 1, 0)
            i = end - 1
        deepest = max(deepest, depth)
        i += 1
    return deepest


def _skip(text: str, i: int) -> int | None:
    """The index after the string literal, quoted name or comment that starts at ``i``, or None
    when none starts there."""
    c = text[i]
    if c == "'":
        escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not _word_char(text[i - 2]))
        return _end_of_quote(text, i, "'", escapes)
    if c == '"':
        return _end_of_quote(text, i, '"', False)
    if text.startswith("--", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end + 1
    if text.startswith("/*", i):
        return _end_of_comment(text, i)
    if c == "$" and not (i > 0 and _word_char(text[i - 1])):
        match = _DOLLAR.match(text, i)
        if match is not None:
            end = text.find(match.group(0), match.end())
            return len(text) if end < 0 else end + len(match.group(0))
    return None


def _word_char(c: str) -> bool:
    return c.isalnum() or c in "_$"


def _end_of_quote(text: str, i: int, quote: str, escapes: bool) -> int:
    """The index after the quote that closes the one at ``i`` (a doubled quote is part of the
    text; with ``escapes``, so is a backslash and the character after it)."""
    j, n = i + 1, len(text)
    while j < n:
        c = text[j]
        if escapes and c == "\\":
            j += 2
        elif c == quote:
            if j + 1 < n and text[j + 1] == quote:
                j += 2
            else:
                return j + 1
        else:
            j += 1
    return n


def _end_of_comment(text: str, i: int) -> int:
    """The index after the ``*/`` that closes the ``/*`` at ``i`` (block comments nest)."""
    level, j, n = 0, i, len(text)
    while j < n:
        if text.startswith("/*", j):
            level += 1
            j += 2
        elif text.startswith("*/", j):
            level -= 1
            j += 2
            if level == 0:
                return j
        else:
            j += 1
    return n


def too_long(text: str, what: str, max_length: int) -> str | None:
    """Why ``text`` (``what``: "the query", "the expression") is too long, or None."""
    if len(text) > max_length:
        return f"{what} is {len(text):,} characters long, more than the limit of {max_length:,}"
    return None


def too_deep(text: str, what: str) -> str | None:
    """Why ``text`` nests too deeply, or None (measure its length first: this reads it all)."""
    deepest = nesting(text)
    if deepest > MAX_DEPTH:
        return (
            f"{what} nests {deepest} levels deep (parentheses, brackets, CASE), "
            f"more than the limit of {MAX_DEPTH}"
        )
    return None


TOO_DEEP = "is nested too deeply to be checked (operators such as NOT or - inside one another)"


def with_frames(fn: Callable[[], T], frames: int = PARSER_FRAMES) -> T:
    """``fn()``, with room for ``frames`` Python frames and no more: it runs in a thread of its
    own (a fresh stack), under as many frames of padding as leave that room. So whether it
    raises RecursionError does not depend on how deep the caller stands (a test runner, the
    scheduler), and a parse that passes here has room at run time. Its exception is raised here."""
    box: dict[str, Any] = {}

    def pad(n: int) -> None:
        if n > 0:
            pad(n - 1)
            return
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread, raised there
            box["error"] = exc

    thread = threading.Thread(target=pad, args=(max(sys.getrecursionlimit() - frames, 0),))
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
