"""Addresses that mix writing systems: ``boss@еxample.com`` with a Cyrillic ``е`` (U+0435) looks
like ``boss@example.com`` and is another address. Validation refuses an address whose local
part, or any label of whose domain, mixes scripts (Latin with Cyrillic, Greek, mathematical
letters…), naming the odd characters by code point and name. A label wholly in one script is
fine (``пример.рф``, ``bücher.de``), and so are the combinations Japanese, Chinese and Korean
are written in (Han with Hiragana, Katakana, Bopomofo or Hangul, and Latin). A label written in
punycode (``xn--…``) is checked as people read it. Domains listed in
``delivery.email.allow_mixed_scripts`` are not checked.

The script of a letter is the first word of its Unicode name (``CYRILLIC SMALL LETTER IE``),
which the standard library knows; digits, dots, hyphens and marks belong to every script.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections import Counter
from collections.abc import Iterable

# scripts written together (UTS #39's "highly restrictive" sets): not a mix
_TOGETHER = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def _script(char: str) -> str | None:
    """The script of a letter; None for anything that is not a letter, or belongs to several."""
    if not char.isalpha():
        return None
    words = unicodedata.name(char, "UNNAMED").split()
    if words[0] in ("FULLWIDTH", "HALFWIDTH") and len(words) > 1:
        words = words[1:]
    if words[0] == "CJK":
        return "HAN"
    if words[0] == "MODIFIER" or "-" in words[0]:  # MODIFIER LETTER …, KATAKANA-HIRAGANA …
        return None
    return words[0]


def describe(char: str) -> str:
    """``U+0435 CYRILLIC SMALL LETTER IE``."""
    return f"U+{ord(char):04X} {unicodedata.name(char, 'UNNAMED CHARACTER')}"


def odd_letters(text: str) -> tuple[str, list[str]] | None:
    """(the main script, the letters of the others, each once) when ``text`` mixes scripts."""
    scripts = {c: s for c in text if (s := _script(c)) is not None}
    counts = Counter(scripts[c] for c in text if c in scripts)
    if len(counts) < 2 or any(set(counts) <= together for together in _TOGETHER):
        return None
    # the script most letters are in is the one meant (Latin on a tie: the usual target)
    main = max(counts, key=lambda s: (counts[s], s == "LATIN"))
    return main, [c for c in dict.fromkeys(text) if c in scripts and scripts[c] != main]


def _as_read(label: str) -> str:
    if label.lower().startswith("xn--"):
        try:
            return codecs.decode(label[4:].encode("ascii"), "punycode")
        except (UnicodeError, ValueError):
            return label
    return label


def _domain_key(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    return ".".join(_as_read(label) for label in domain.split("."))


def mixed_scripts(address: str, allowed: Iterable[str] = ()) -> str | None:
    """Why ``address`` (a bare ``local@domain``) is refused, or None: ``mixes scripts in
    'еxample': U+0435 CYRILLIC SMALL LETTER IE among Latin letters``."""
    local, _, domain = address.rpartition("@")
    if _domain_key(domain) in {_domain_key(d) for d in allowed}:
        return None
    for part in [local, *domain.split(".")]:
        shown = _as_read(part)
        found = odd_letters(shown)
        if found is not None:
            main, odd = found
            letters = ", ".join(describe(c) for c in odd)
            return f"mixes scripts in '{shown}': {letters} among {main.title()} letters"
    return None
