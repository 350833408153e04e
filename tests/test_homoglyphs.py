"""Addresses that mix scripts (a Cyrillic 'е' in boss@еxample.com) are refused by validation,
exit 2, each with its file:line, key path, and the odd characters named by code point; a
domain wholly in one script passes, and delivery.email.allow_mixed_scripts lets one through."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

from reporter.config import load_config
from tests.conftest import write_csv

HINT = (
    "a look-alike letter makes it another address: retype it; if the domain is really written so, "
    "add it to delivery.email.allow_mixed_scripts"
)


def report(folder: Path, delivery: str) -> Path:
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(396)]
    rows = [[d.isoformat(), d.day * 10, "north" if d.day % 2 else "south"] for d in days]
    write_csv(folder / "orders.csv", ["date", "amount", "team"], rows)
    text = (
        textwrap.dedent("""\
        report: {id: tiny, title: Tiny, timezone: UTC}
        sources:
          orders: {type: csv, path: orders.csv, date_column: date}
        metrics:
          revenue: {source: orders, agg: sum, column: amount}
        kpis:
          revenue: {label: Revenue, formula: revenue}
        """)
        + delivery
    )
    path = folder / "tiny.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def validate(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reporter", "validate", "tiny.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def test_every_kind_of_address_that_mixes_scripts_is_refused_with_its_characters_named(tmp_path):
    report(
        tmp_path,
        textwrap.dedent("""\
            delivery:
              alerts_to: [ops@acme.tеst]
              email:
                from: Reporting <reporting@аcme.test>
                to: [boss@еxample.com, ivan@пример.рф]
                cc: [bоss@example.com]
                recipients:
                  - {email: alice@xn--xample-2of.com, filter: {team: north}}
            """),
    )
    done = validate(tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tiny.yaml:9:15: delivery.alerts_to[0]: 'ops@acme.tеst' mixes scripts in 'tеst': "
        f"U+0435 CYRILLIC SMALL LETTER IE among Latin letters; {HINT}",
        "tiny.yaml:11:11: delivery.email.from: 'reporting@аcme.test' mixes scripts in 'аcme': "
        f"U+0430 CYRILLIC SMALL LETTER A among Latin letters; {HINT}",
        "tiny.yaml:12:10: delivery.email.to[0]: 'boss@еxample.com' mixes scripts in 'еxample': "
        f"U+0435 CYRILLIC SMALL LETTER IE among Latin letters; {HINT}",
        "tiny.yaml:13:10: delivery.email.cc[0]: 'bоss@example.com' mixes scripts in 'bоss': "
        f"U+043E CYRILLIC SMALL LETTER O among Latin letters; {HINT}",
        "tiny.yaml:15:17: delivery.email.recipients[0].email: 'alice@xn--xample-2of.com' mixes scripts "
        f"in 'еxample': U+0435 CYRILLIC SMALL LETTER IE among Latin letters; {HINT}",
        "5 errors: nothing was run or sent.",
    ]  # ivan@пример.рф: each label in one script, fine


def test_an_allowed_domain_passes_and_the_others_are_still_checked(tmp_path):
    report(
        tmp_path,
        textwrap.dedent("""\
            delivery:
              email:
                from: reporting@acme.test
                to: [boss@еxample.com, bоss@example.com]
                allow_mixed_scripts: [XN--XAMPLE-2OF.COM]
            """),
    )
    done = validate(tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tiny.yaml:11:28: delivery.email.to[1]: 'bоss@example.com' mixes scripts in 'bоss': "
        f"U+043E CYRILLIC SMALL LETTER O among Latin letters; {HINT}",
        "1 error: nothing was run or sent.",
    ]
    (tmp_path / "tiny.yaml").write_text(
        (tmp_path / "tiny.yaml").read_text(encoding="utf-8").replace("bоss@", "boss@"), encoding="utf-8"
    )
    config = load_config(tmp_path / "tiny.yaml", env={})
    assert config.delivery.email is not None
    assert config.delivery.email.to == ["boss@еxample.com", "boss@example.com"]


def test_what_counts_as_a_mix():
    from reporter.config.scripts import mixed_scripts

    assert mixed_scripts("a@bücher.de") is None  # Latin with accents
    assert mixed_scripts("taro@日本語ひらがなカタカナ.jp") is None  # how Japanese is written
    assert mixed_scripts("kim@한국어漢字.kr") is None
    assert mixed_scripts("a@παράδειγμα.gr") is None
    assert mixed_scripts("a-1.b_2@x-9.example") is None  # digits and punctuation: any script
    assert mixed_scripts("a@𝐞xample.com") == (
        "mixes scripts in '𝐞xample': U+1D41E MATHEMATICAL BOLD SMALL E among Latin letters"
    )
    assert mixed_scripts("пpимер@x.com") == (  # a Latin p among Cyrillic letters
        "mixes scripts in 'пpимер': U+0070 LATIN SMALL LETTER P among Cyrillic letters"
    )
    assert mixed_scripts("a@ехаmple.com") == (  # several, each once, in order
        "mixes scripts in 'ехаmple': U+0435 CYRILLIC SMALL LETTER IE, U+0445 CYRILLIC SMALL LETTER HA, "
        "U+0430 CYRILLIC SMALL LETTER A among Latin letters"
    )
