"""``reporter init``: a starter report that validates and runs as written.

``init_report(folder, kind)`` writes ``report.yaml`` (from ``reporter/starters/<kind>.yaml``),
its sample CSVs under ``data/`` and ``reporter.schema.json`` (for the editor modeline every YAML
here begins with). The sample data is generated, not shipped: it covers the 24 months that end
with the last complete month at ``now``, so the default ``reporter run`` passes its quality
gate. Each month's rows come from a random generator seeded with the kind, the file and the
month, so a month's numbers are the same whenever ``init`` runs.

``init DIR --source FILE`` writes instead only ``<name>.yaml``, a report over the user's own
CSV (and the schema): no starter, no sample data. Its ``sources`` stanza is what DuckDB's
sniffer (``sniff_csv``) finds (delimiter, date column, date format), plus what it does not
(encoding, decimal comma, null markers); its metrics count the rows, count identifiers distinct,
sum the other numeric columns, and break down by each text column with few values (``classify``).
Nothing is ever overwritten: every target is checked before anything is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import os
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from reporter.errors import UsageError
from reporter.periods import Period, last_expected_date

KINDS = ("marketing", "sales", "newsletter")
MONTHS = 24
SCHEMA_FILE = "reporter.schema.json"
MODELINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"
# The starters are valid YAML as shipped; init replaces this date with the end of the data's year.
DUE_PLACEHOLDER = "2000-12-31"


# ---------------------------------------------------------------------------------------------
# entry point


@dataclass
class Written:
    files: list[Path]
    first: str  # first and last month of the sample data (of the file's dates, with --source;
    last: str  # empty when they could not be read)
    source_yaml: Path | None = None  # the report over --source, when given
    source: SourceReport | None = None
    complete: str = ""  # the latest month the data covers to its last day (what to run)


def init_report(
    folder: Path, kind: str = "marketing", *, now: dt.datetime, source: Path | None = None
) -> Written:
    """Write the starter report of ``kind`` into ``folder`` (created if needed), or with
    ``source`` only a report over that CSV. Raise UsageError, writing nothing, when a file
    would be overwritten or ``source`` cannot be read."""
    if kind not in KINDS:
        raise UsageError(f"init: unknown kind '{kind}'; choose one of {', '.join(KINDS)}")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"init: {folder} exists and is not a folder")
    files: dict[Path, bytes] = {}
    source_yaml = stanza = None
    complete = ""
    if source is not None:
        stanza = source_report(source, folder)
        source_yaml = folder / f"{stanza.report_id}.yaml"
        files[source_yaml] = stanza.yaml.encode("utf-8")
        found = stanza.sniffed
        span = [Period.containing(d, "month").label for d in (found.first_date, found.last_date) if d]
        first, last_label = (span[0], span[-1]) if span else ("", "")
        if found.last_date is not None:
            # the quality gate wants the date the source's frequency expects (a daily source:
            # the month's last day)
            month = Period.containing(found.last_date, "month")
            reached = found.last_date >= last_expected_date(month, found.frequency)
            complete = (month if reached else month.shift(-1)).label
    else:
        last = Period.last_complete(now, "month", "UTC")
        months = last.series(MONTHS)
        text = resources.files("reporter.starters").joinpath(f"{kind}.yaml").read_text(encoding="utf-8")
        text = (
            text.replace("@FIRST@", months[0].label)
            .replace("@LAST@", last.label)
            .replace(f"due: {DUE_PLACEHOLDER}", f"due: {dt.date(last.end.year, 12, 31).isoformat()}")
        )
        files[folder / "report.yaml"] = text.encode("utf-8")
        for name, (header, rows) in SAMPLES[kind](months).items():
            files[folder / "data" / name] = _csv(header, rows)
        first, last_label = months[0].label, last.label
    from reporter.config.schema import json_schema

    files[folder / SCHEMA_FILE] = (json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n").encode()

    # The schema already there with the very bytes init would write (from an earlier `init
    # --source` into the same folder, one report per CSV) is left as it is: not in the way.
    if _holds(folder / SCHEMA_FILE, files[folder / SCHEMA_FILE]):
        del files[folder / SCHEMA_FILE]
    existing = [p for p in files if p.exists() or p.is_symlink()]
    if existing:
        shown = ", ".join(str(p) for p in existing)
        raise UsageError(
            f"init: {shown} already exist{'s' if len(existing) == 1 else ''}; nothing was written "
            "(choose another folder or move these files away)"
        )
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as handle:  # "x": never replace a file that appeared meanwhile
            handle.write(data)
    return Written(list(files), first, last_label, source_yaml, stanza, complete or last_label)


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file (not a symlink) holding exactly ``data``."""
    try:
        return (
            not path.is_symlink()
            and path.is_file()
            and path.stat().st_size == len(data)
            and path.read_bytes() == data
        )
    except OSError:
        return False


def _csv(header: list[str], rows: Iterator[list[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------------
# sample data: a seeded generator per kind, file and month


def _rng(kind: str, name: str, month: Period) -> random.Random:
    return random.Random(f"{kind}/{name}/{month.label}")  # str seeds are stable across runs


def _days(month: Period) -> Iterator[dt.date]:
    day = month.start
    while day <= month.end:
        yield day
        day += dt.timedelta(days=1)


def _growth(month: Period) -> float:
    """A gentle upward trend with a summer dip, the same for every kind."""
    index = month.start.year * 12 + month.start.month
    return (1 + 0.01 * (index % 120)) * (0.85 if month.start.month in (7, 8) else 1.0)


def _leads(
    kind: str, name: str, months: list[Period], per_day: int
) -> Iterator[tuple[dt.date, random.Random]]:
    """One (day, generator) per lead, at least one lead every day."""
    for month in months:
        rng = _rng(kind, name, month)
        for day in _days(month):
            for _ in range(rng.randint(1, per_day)):
                yield day, rng


def _marketing(months: list[Period]) -> dict[str, tuple[list[str], Iterator[list[object]]]]:
    channels = {"Organic search": 320, "Paid ads": 160, "Social": 90}

    def web() -> Iterator[list[object]]:
        for month in months:
            rng, g = _rng("marketing", "web", month), _growth(month)
            for day in _days(month):
                for channel, base in channels.items():
                    sessions = int(base * g * rng.uniform(0.7, 1.3))
                    yield [day.isoformat(), channel, sessions, int(sessions * rng.uniform(0.01, 0.03))]

    def leads() -> Iterator[list[object]]:
        origins = ["Website", "Paid ads", "Events", "Referral", "Social"]
        for day, rng in _leads("marketing", "leads", months, 5):
            mql = rng.random() < 0.55
            sql = mql and rng.random() < 0.5
            won = sql and rng.random() < 0.35
            amount = f"{rng.uniform(2000, 12000):.2f}" if won else ""
            margin = f"{rng.uniform(0.35, 0.6):.2f}" if won else ""
            yield [day.isoformat(), rng.choice(origins), int(mql), int(sql), int(won), amount, margin]

    def spend() -> Iterator[list[object]]:
        budgets = {"Paid ads": 9000, "Events": 4000, "Content": 2500}
        for month in months:
            rng = _rng("marketing", "spend", month)
            for channel, budget in budgets.items():
                yield [month.start.isoformat(), channel, f"{budget * rng.uniform(0.85, 1.08):.2f}", budget]

    return {
        "web.csv": (["date", "channel", "sessions", "signups"], web()),
        "leads.csv": (["created_at", "origin", "mql", "sql", "won", "amount", "margin_rate"], leads()),
        "spend.csv": (["month", "channel", "amount", "budget"], spend()),
    }


def _sales(months: list[Period]) -> dict[str, tuple[list[str], Iterator[list[object]]]]:
    def deals() -> Iterator[list[object]]:
        origins = ["Website", "Referral", "Events", "Outbound", "Partners"]
        people = ["Alice Martin", "Bruno Petit", "Chloé Durand"]
        for day, rng in _leads("sales", "deals", months, 4):
            mql = rng.random() < 0.6
            sql = mql and rng.random() < 0.55
            stage = "lead"
            if sql:
                stage = rng.choices(["won", "lost", "open"], [0.35, 0.45, 0.2])[0]
            elif mql:
                stage = "mql"
            amount = f"{rng.uniform(3000, 15000):.2f}" if stage in ("won", "open") else ""
            margin = f"{float(amount) * rng.uniform(0.3, 0.55):.2f}" if stage == "won" else ""
            yield [
                day.isoformat(),
                rng.choice(origins),
                rng.choice(people),
                stage,
                int(mql),
                int(sql),
                amount,
                margin,
            ]

    def costs() -> Iterator[list[object]]:
        for month in months:
            rng = _rng("sales", "costs", month)
            yield [month.start.isoformat(), f"{18000 * _growth(month) * rng.uniform(0.9, 1.1):.2f}"]

    def bank() -> Iterator[list[object]]:
        balance = 180000.0
        for month in months:
            rng = _rng("sales", "bank", month)
            balance = max(90000.0, balance + rng.uniform(-25000, 30000))
            yield [month.end.isoformat(), f"{balance:.2f}"]

    return {
        "deals.csv": (
            ["created_at", "origin", "salesperson", "stage", "mql", "sql", "amount", "margin"],
            deals(),
        ),
        "costs.csv": (["month", "amount"], costs()),
        "bank.csv": (["date", "balance"], bank()),
    }


def _newsletter(months: list[Period]) -> dict[str, tuple[list[str], Iterator[list[object]]]]:
    def campaigns() -> Iterator[list[object]]:
        for month in months:
            rng = _rng("newsletter", "campaigns", month)
            for day in _days(month):
                if day.isoweekday() != 1:
                    continue
                sent = int(5000 * _growth(month) * rng.uniform(0.97, 1.03))
                delivered = int(sent * rng.uniform(0.96, 0.995))
                opened = int(delivered * rng.uniform(0.24, 0.36))
                clicked = int(opened * rng.uniform(0.08, 0.16))
                yield [
                    f"{day.isoformat()} 09:00:00",
                    f"Weekly news {day.isoformat()}",
                    sent,
                    delivered,
                    opened,
                    clicked,
                    int(delivered * rng.uniform(0.002, 0.007)),
                    int(delivered * rng.uniform(0.0, 0.0006)),
                ]

    def audience() -> Iterator[list[object]]:
        subscribers = 5000
        for month in months:
            rng = _rng("newsletter", "audience", month)
            for day in _days(month):
                signups = rng.randint(3, 15)
                subscribers += signups - rng.randint(1, 8)
                yield [day.isoformat(), subscribers, signups]

    return {
        "campaigns.csv": (
            ["sent_at", "campaign", "sent", "delivered", "opened", "clicked", "unsubscribed", "complaints"],
            campaigns(),
        ),
        "audience.csv": (["date", "subscribers", "signups"], audience()),
    }


SAMPLES: dict[str, Callable[[list[Period]], dict[str, tuple[list[str], Iterator[list[object]]]]]] = {
    "marketing": _marketing,
    "sales": _sales,
    "newsletter": _newsletter,
}


# ---------------------------------------------------------------------------------------------
# --source: a report over the user's own CSV

_NULLS = ("", "n/a", "N/A", "NA", "null", "NULL", "-")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d+)?|[.,]\d+)$")
# A number as a spreadsheet shows it: thousands separators (a space, a no-break or narrow
# no-break space, a dot, a comma, an apostrophe) and a currency sign or a percent sign.
_SEPARATORS = " \u00a0\u202f.,'\u2019"
_SIGNS = r"(?:[€$£¥%]|EUR|USD|GBP|CHF)"
_FORMATTED = re.compile(
    rf"^[+-]?(?:{_SIGNS}\s*)?[+-]?(?:\d{{1,3}}(?:[{_SEPARATORS}]\d{{3}})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    rf"(?:\s*{_SIGNS})?$"
)
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")
# A value that is a hash or a UUID: an identifier, whatever its column is called.
_HEX = r"[0-9a-fA-F]{12,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Words of a column's name that make it an identifier or a code, anywhere in the name
# ("landing_page_id", "seller_zip_code_prefix", "customerId") ...
_ID_WORDS = frozenset(
    {"id", "ids", "uuid", "guid", "key", "code", "codigo", "codice", "zip", "zipcode", "postcode",
     "postal", "cep", "prefix", "sku", "ean", "gtin", "isbn", "phone", "tel", "siret", "siren", "iban",
     "hash"}
)  # fmt: skip
# ... or at its end ("order_number", "invoice_no").
_ID_LAST_WORDS = frozenset({"number", "num", "no", "nr", "ref"})
# A number word ("numero_commande", "N° facture", "num_client", "Nr Kunde") before or after a
# word naming a thing that has an identity (an order, an invoice, a customer, a store): its
# number. Alone ("n_items", "numero_articoli") a number word is a count, a measure.
_NUMBER_WORDS = frozenset({"number", "numero", "num", "no", "n", "nr", "nro", "nummer", "numer"})
_THING_WORDS = frozenset(
    {"order", "invoice", "customer", "client", "account", "store", "shop", "ticket", "transaction",
     "contract", "commande", "facture", "magasin", "boutique", "compte", "contrat", "dossier",
     "pedido", "factura", "cliente", "tienda", "cuenta", "contrato", "bestellung", "rechnung",
     "kunde", "kunden", "laden", "filiale", "konto", "vertrag", "ordine", "fattura", "negozio",
     "conto", "contratto"}
)  # fmt: skip
# German compounds: "Kundennummer", "Bestellnr".
_NUMBER_SUFFIXES = ("nummer", "nr")
# Words that make a column a measure (an amount, a quantity), whatever its values look like.
_MEASURE_WORDS = frozenset(
    {"amount", "total", "sum", "price", "cost", "revenue", "sales", "value", "qty", "quantity",
     "count", "units", "weight", "montant", "prix", "cout", "quantite", "qte", "nombre", "valeur",
     "ventes", "chiffre", "poids", "importe", "precio", "coste", "cantidad", "ventas", "betrag",
     "preis", "kosten", "menge", "anzahl", "umsatz", "summe", "importo", "prezzo", "costo",
     "quantita", "totale"}
)  # fmt: skip
# A text column with at most this many values is broken down by (one row per value).
MAX_BREAKDOWN_VALUES = 50
# Column-name words (accents removed) that make a file French (``_french``), and words of other
# languages that write a decimal comma and the day first, which rule it out ("canal" is Spanish
# and Italian too).
_FRENCH_WORDS = frozenset(
    {"montant", "canal", "quantite", "qte", "prix", "cout", "couts", "vente", "ventes", "chiffre",
     "affaires", "commande", "commandes", "produit", "produits", "libelle", "magasin", "vendeur",
     "remise", "ttc", "ht", "mois", "jour", "semaine", "annee", "categorie", "famille",
     "fournisseur", "devis", "facture", "depense", "depenses", "recette", "recettes", "visites",
     "visiteurs", "nouveaux", "taux", "ville", "pays", "departement", "agence", "solde", "nombre",
     "valeur", "poids", "rebonds", "duree", "moyenne", "abonnes", "inscrits", "campagne"}
)  # fmt: skip
_OTHER_WORDS = frozenset(
    {"fecha", "importe", "precio", "coste", "cantidad", "ventas", "cliente", "tienda", "valor",
     "datum", "betrag", "preis", "kosten", "menge", "anzahl", "umsatz", "summe", "kunde", "kanal",
     "importo", "prezzo", "costo", "quantita", "totale", "giorno", "negozio", "quantidade"}
)  # fmt: skip


@dataclass
class ColumnStats:
    """One column over the whole file, read as text (empty cells are no value)."""

    values: int  # cells with a value
    distinct: int  # distinct values
    hex: bool  # every value is a hash or a UUID
    leading_zero: bool  # some value is a number written with a leading zero ("01310")
    spaces: bool  # some value holds a space (free text, a label)
    low: int | None  # the smallest and largest value, when every value is an integer
    high: int | None
    rising: bool = False  # unique integers that (almost) always grow from one row to the next
    shown: list[int] = field(default_factory=list)  # a few of its values, smallest first


@dataclass
class Sniffed:
    """What ``sniff`` found in a CSV file."""

    delimiter: str
    quote: str
    encoding: str
    decimal: str
    header: bool
    date_column: str | None
    date_format: str | None
    numeric: list[str]
    null_values: list[str] = field(default_factory=lambda: [""])
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: int = 0
    stats: dict[str, ColumnStats] = field(default_factory=dict)
    first_date: dt.date | None = None  # the date column's span
    last_date: dt.date | None = None
    # numeric columns written with thousands separators or a currency sign ("2 867,56 €"),
    # which the csv options cannot read: their decimal mark and an example value
    formatted: dict[str, tuple[str, str]] = field(default_factory=dict)
    # columns that look numeric but that reporter cannot read as numbers: why (to print)
    unread: dict[str, str] = field(default_factory=dict)
    # how often the rows come, as the date column shows it (``_frequency``)
    frequency: str = "daily"


def detect_encoding(path: Path) -> str:
    """utf-8 when the bytes decode as UTF-8 (a BOM is fine), else latin-1 (every byte is a
    latin-1 character, so this is the usual Western European spreadsheet export)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def sniff(path: Path) -> Sniffed:
    """Delimiter, quote, header, column types and date format from DuckDB's ``sniff_csv``;
    the encoding and the decimal mark, which the sniffer does not detect, from the bytes; and
    what each column holds over the whole file (``ColumnStats``), to tell identifiers, measures
    and categories apart."""
    import duckdb

    from reporter.config.sql import quote_ident, sql_literal

    encoding = detect_encoding(path)
    con = duckdb.connect()
    try:
        row = con.execute(
            f"SELECT Delimiter, Quote, HasHeader, Columns, DateFormat, TimestampFormat "
            f"FROM sniff_csv({sql_literal(str(path))}, encoding={sql_literal(encoding)})"
        ).fetchone()
        assert row is not None
        delimiter, quote, header, columns, date_format, ts_format = row
        quote = quote if quote and quote != "(empty)" and len(quote) == 1 else '"'
        types = [(str(c["name"]), str(c["type"])) for c in columns]
        as_text = (
            f"read_csv({sql_literal(str(path))}, delim={sql_literal(delimiter)}, "
            f"quote={sql_literal(quote)}, encoding={sql_literal(encoding)}, "
            f"header={'true' if header else 'false'}, all_varchar=true)"
        )
        # Text columns may be numbers with a decimal comma or with null markers ("n/a"): read
        # them as text and look.
        text_cols = [n for n, t in types if t == "VARCHAR"]
        samples: dict[str, list[str]] = {}
        if text_cols:
            select = ", ".join(f"list({quote_ident(n)})" for n in text_cols)
            values = con.execute(f"SELECT {select} FROM (SELECT * FROM {as_text} LIMIT 20000)").fetchone()
            assert values is not None
            samples = {
                n: [v.strip() for v in vs if v is not None] for n, vs in zip(text_cols, values, strict=True)
            }
        rows, stats = _column_stats(con, as_text, [n for n, _ in types])
        _integer_stats(con, as_text, rows, stats)
    except duckdb.Error as exc:
        raise UsageError(f"init: cannot read {path}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        con.close()

    numeric, decimal, nulls, formatted, unread = _numbers(types, samples, delimiter)

    dates = [n for n, t in types if t == "DATE" or t.startswith("TIMESTAMP")]
    dates.sort(
        key=lambda n: (not re.search(r"date|day|time|_at$|jour", n, re.I), [c for c, _ in types].index(n))
    )
    date_column = dates[0] if dates else None
    fmt = None
    first = last = None
    if date_column is not None:
        kind = dict(types)[date_column]
        fmt = date_format if kind == "DATE" else ts_format
        if fmt in ("(empty)", ""):
            fmt = None
        first, last = _date_span(path, encoding, date_column)
    return Sniffed(
        delimiter=delimiter,
        quote=quote,
        encoding=encoding,
        decimal=decimal,
        header=bool(header),
        date_column=date_column,
        date_format=fmt,
        numeric=numeric,
        null_values=sorted(nulls, key=lambda v: (v != "", v)),
        columns=types,
        rows=rows,
        stats=stats,
        first_date=first,
        last_date=last,
        formatted=formatted,
        unread=unread,
    )


def _numbers(
    types: list[tuple[str, str]], samples: dict[str, list[str]], delimiter: str
) -> tuple[list[str], str, set[str], dict[str, tuple[str, str]], dict[str, str]]:
    """The numeric columns (those the sniffer typed, and the text columns whose ``samples`` are
    numbers with a decimal comma, null markers, or thousands separators and currency signs), the
    file's decimal mark, its null markers, the columns written like "2 867,56 €" (their decimal
    mark and an example) and the columns that look numeric but cannot be read (why)."""
    nulls = {""}
    decimal = "."
    numeric = [n for n, t in types if t.split("(")[0] in _NUMERIC_TYPES]
    formatted: dict[str, tuple[str, str]] = {}
    unread: dict[str, str] = {}
    for name, texts in samples.items():
        present = [v for v in texts if v not in _NULLS]
        if not present:
            continue
        if not all(_NUMBER.match(v) for v in present):
            if not all(_NUMBER.match(v) or _FORMATTED.match(v) for v in present):
                continue
            mark, why = _formatted(present)
            if why:
                unread[name] = why
                continue
            formatted[name] = mark
            nulls.update(v for v in texts if v in _NULLS)
            numeric.append(name)
            continue
        if any(_DECIMAL_COMMA.match(v) for v in present):
            if delimiter == ",":
                continue  # a comma can't be both; leave the column as text
            decimal = ","
        nulls.update(v for v in texts if v in _NULLS)
        numeric.append(name)
    numeric.sort(key=[n for n, _ in types].index)
    if delimiter != "," and any(mark == "," for mark, _ in formatted.values()):
        decimal = ","  # the file's numbers use a decimal comma, whichever way they are written
    return numeric, decimal, nulls, formatted, unread


def _formatted(present: list[str]) -> tuple[tuple[str, str], str]:
    """The decimal mark and an example of numbers written like "2 867,56 €", or why they cannot
    be read as numbers."""
    shaped = [v for v in present if not _NUMBER.match(v)]  # the first with a separator
    example = next((v for v in shaped if re.search(r"\d[^\d.,]+\d", v)), shaped[0])
    mark = _decimal_mark(present)
    if any(v.endswith("%") for v in present):
        return (".", example), (
            f'its values are percentages ("{example}"), which reporter reads only as '
            "text; export them as plain numbers (0.125 for 12.5 %) to use them"
        )
    if mark is None:
        return (".", example), (
            f'its values ("{example}") mix "." and "," as the decimal mark; export '
            "them as plain numbers to use them"
        )
    return (mark, example), ""


def _decimal_mark(values: list[str]) -> str | None:
    """The decimal mark of numbers written with thousands separators: the last "." or ","
    of a value is the decimal mark unless exactly 3 digits follow it and it is its only mark
    of that kind after a group ("1.234" alone could be either: a thousands separator here).
    None when the values disagree."""
    marks = set()
    for value in values:
        digits = re.sub(r"[^0-9.,]", "", value)
        last = max(digits.rfind("."), digits.rfind(","))
        if last < 0:
            continue
        mark, tail = digits[last], digits[last + 1 :]
        other = "," if mark == "." else "."
        if other in digits[:last] or len(tail) != 3:
            marks.add(mark)  # 1.234,56 / 2,5 / 2 867,560
        else:
            marks.add(other)  # 1,234 / 1.234.567: thousands separators
    if len(marks) > 1:
        return None
    return marks.pop() if marks else "."


def _column_stats(con: object, as_text: str, names: list[str]) -> tuple[int, dict[str, ColumnStats]]:
    """The row count and each column's ``ColumnStats``, in one pass over the file read as text."""
    from reporter.config.sql import quote_ident, sql_literal

    parts = ["count(*)"]
    for name in names:
        v = f"nullif(trim({quote_ident(name)}), '')"
        as_int = f"try_cast({v} AS HUGEINT)"
        parts += [
            f"count({v})",
            f"count(DISTINCT {v})",
            f"coalesce(bool_and(regexp_full_match({v}, {sql_literal(_HEX)})), false)",
            f"coalesce(bool_or(regexp_full_match({v}, '0[0-9]+')), false)",
            f"coalesce(bool_or(contains({v}, ' ')), false)",
            f"count({as_int})",
            f"min({as_int})",
            f"max({as_int})",
        ]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {as_text}").fetchone()  # type: ignore[attr-defined]
    assert row is not None
    stats = {}
    for i, name in enumerate(names):
        values, distinct, hex_, zero, spaces, ints, low, high = row[1 + 8 * i : 9 + 8 * i]
        whole = values > 0 and ints == values
        stats[name] = ColumnStats(
            values,
            distinct,
            bool(hex_),
            bool(zero),
            bool(spaces),
            low if whole else None,
            high if whole else None,
        )
    return int(row[0]), stats


def _integer_stats(con: object, as_text: str, rows: int, stats: dict[str, ColumnStats]) -> None:
    """Whether each column of unique integers rises (``_rising``), and the first values of each
    other integer column (to show them)."""
    from reporter.config.sql import quote_ident

    for name, st in stats.items():
        if st.low is not None and st.distinct == st.values == rows >= 20:
            st.rising = _rising(con, as_text, name)
        elif st.low is not None:
            col = f"try_cast(nullif(trim({quote_ident(name)}), '') AS HUGEINT)"
            st.shown = [
                int(v)
                for (v,) in con.execute(  # type: ignore[attr-defined]
                    f"SELECT DISTINCT {col} AS v FROM {as_text} WHERE v IS NOT NULL ORDER BY v LIMIT 5"
                ).fetchall()
            ]


def _rising(con: object, as_text: str, name: str) -> bool:
    """Whether the integers of ``name`` grow from row to row in the file's order, 9 times in 10
    at least: numbers handed out one after the other (orders, invoices), gaps or not."""
    from reporter.config.sql import quote_ident

    col = f"try_cast(nullif(trim({quote_ident(name)}), '') AS HUGEINT)"
    # the rows come back in the file's order (DuckDB preserves insertion order)
    values = [v for (v,) in con.execute(f"SELECT {col} FROM {as_text}").fetchall()]  # type: ignore[attr-defined]
    ups = sum(b > a for a, b in itertools.pairwise(values))
    return len(values) > 1 and ups >= 0.9 * (len(values) - 1)


def _date_span(path: Path, encoding: str, column: str) -> tuple[dt.date | None, dt.date | None]:
    """The first and last date of ``column``, read with the sniffer's own types."""
    import duckdb

    from reporter.config.sql import quote_ident, sql_literal

    con = duckdb.connect()
    try:
        col = quote_ident(column)
        row = con.execute(
            f"SELECT min({col}), max({col}) FROM read_csv({sql_literal(str(path))}, "
            f"encoding={sql_literal(encoding)})"
        ).fetchone()
    except duckdb.Error:
        return None, None
    finally:
        con.close()
    assert row is not None

    def day(value: object) -> dt.date | None:
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else None

    return day(row[0]), day(row[1])


def _frequency(path: Path, encoding: str, column: str, last: dt.date) -> str:
    """How often the rows come (daily, weekly, monthly), by the measure validate uses
    (``reporter.compute.cadence.shown_frequency``): where the last row of each of the up to 12
    whole months before the last one falls. daily when it cannot tell."""
    import duckdb

    from reporter.compute.cadence import shown_frequency
    from reporter.config.sql import quote_ident, sql_literal

    end = Period.containing(last, "month")
    day = f"CAST({quote_ident(column)} AS DATE)"
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT max({day}) FROM read_csv({sql_literal(str(path))}, encoding={sql_literal(encoding)}) "
            f"WHERE {day} >= ? AND {day} < ? GROUP BY date_trunc('month', {day})",
            [end.shift(-12).start, end.start],
        ).fetchall()
    except duckdb.Error:
        return "daily"
    finally:
        con.close()
    return shown_frequency([r[0] for r in rows if r[0] is not None], "month") or "daily"


# -- what each column is: a measure, an identifier, a category ---------------------------------


@dataclass
class Roles:
    measures: list[str]  # numeric columns: the period's sum
    ids: list[str]  # identifiers and codes: counted distinct, never summed
    categories: list[str]  # text with a few values (2 to MAX_BREAKDOWN_VALUES): a breakdown each
    row_key: str | None = None  # an identifier with its own value on every row: a row is a thing
    # numeric columns not summed because their values look like codes: why, to print
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def main(self) -> str | None:
        """The column whose sum the breakdowns cut, or None for the rows: a file where each row
        is a thing (a lead, a deal: it has a row key) or without a number counts rows; another
        (a day per channel) sums its first number."""
        return None if self.row_key is not None or not self.measures else self.measures[0]


def _words(name: str) -> list[str]:
    """The words of a column name, without accents: ``customerId`` and ``customer_id`` both
    give customer, id; ``N° facture`` gives n, facture; ``Quantité`` gives quantite."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", plain)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def _named_like_an_id(name: str) -> bool:
    words = _words(name)
    if not words:
        return False
    if any(w in _ID_WORDS for w in words) or words[-1] in _ID_LAST_WORDS:
        return True
    if any(len(w) > 6 and w.endswith(_NUMBER_SUFFIXES) for w in words):
        return True  # Kundennummer, Bestellnr
    # a number word next to a thing's name: numero_commande, N° facture, invoice_nr
    return any(
        (a in _NUMBER_WORDS and b in _THING_WORDS) or (a in _THING_WORDS and b in _NUMBER_WORDS)
        for a, b in itertools.pairwise(words)
    )


def _named_like_a_measure(name: str) -> bool:
    return any(w in _MEASURE_WORDS for w in _words(name))


def _named_like_a_thing(name: str) -> bool:
    """Only words naming a thing (``magasin``, ``Client``, ``store``): its values are codes."""
    words = _words(name)
    return bool(words) and all(w in _THING_WORDS for w in words)


def _identifier(name: str, base: str, st: ColumnStats, unique: bool, *, numeric: bool, rows: int) -> bool:
    """Whether a column is an identifier or a code (see ``classify``)."""
    if not numeric and base != "VARCHAR":  # another date, a time: never
        return False
    if _named_like_an_id(name):
        return True
    if numeric:
        numbered = (
            base in _INTEGER_TYPES
            and unique
            and rows >= 20
            and st.low is not None
            and st.high is not None
            # consecutive, or handed out in the file's order with gaps (a measure's name says
            # otherwise: a running total grows too)
            and (st.high - st.low + 1 == st.distinct or (st.rising and not _named_like_a_measure(name)))
        )
        return st.leading_zero or numbered
    return st.hex or (unique and st.distinct > MAX_BREAKDOWN_VALUES and not st.spaces)


def classify(found: Sniffed) -> Roles:
    """Which columns to sum, to count distinct and to break down by.

    - An identifier is never summed: a column named like one (``…_id``, ``…_code``, ``zip``,
      ``…_prefix``, ``order_number``), a text column whose every value is a hash or a UUID, a
      text column without spaces whose every row has its own value (more than
      MAX_BREAKDOWN_VALUES of them), and a whole-number column written with leading zeros
      ("01310") or numbering the rows (unique, consecutive or rising in the file's order with
      gaps). Each is counted distinct. Names count in French, Spanish, German and Italian too
      (``numero_commande``, ``N° facture``, ``Kundennummer``).
    - A whole-number column that looks like codes (``_code_like``: named only for a thing, such
      as ``magasin``; or a few repeated values far apart; or as many digits each) is not summed
      either: a breakdown with at most MAX_BREAKDOWN_VALUES values, else counted distinct, and
      ``Roles.notes`` says why (init prints it).
    - Any other numeric column is a measure: summed.
    - A text or true/false column with 2 to MAX_BREAKDOWN_VALUES values is a category: the
      report breaks its main KPI (``Roles.main``) down by it. Free text and other dates are
      left out.
    """
    roles = Roles([], [], [])
    for name, kind in found.columns:
        st = found.stats.get(name)
        if name == found.date_column or st is None or st.values == 0 or name in found.unread:
            continue
        base = kind.split("(")[0]
        unique = st.distinct == st.values == found.rows
        if base == "BOOLEAN":
            if st.distinct >= 2:
                roles.categories.append(name)
        elif _identifier(name, base, st, unique, numeric=name in found.numeric, rows=found.rows):
            roles.ids.append(name)
            if unique and roles.row_key is None:
                roles.row_key = name
        elif name in found.numeric and (why := _code_like(name, st)):
            # not a measure (summing store numbers means nothing): a breakdown when it has few
            # values, else counted distinct; init says which and why
            (roles.categories if st.distinct <= MAX_BREAKDOWN_VALUES else roles.ids).append(name)
            roles.notes[name] = why
        elif name in found.numeric:
            roles.measures.append(name)
        elif base == "VARCHAR" and 2 <= st.distinct <= MAX_BREAKDOWN_VALUES:
            roles.categories.append(name)
    return roles


def _code_like(name: str, st: ColumnStats) -> str:
    """Why the whole numbers of ``name`` look like codes, not a measure ("" when they do not):
    the name says so (``magasin``, ``store``, ``client``) or its values repeat and are
    too few and far apart to count anything (12, 15, 31, 44), or have as many digits each
    (1021, 1155, ...: a numbering). A name that says measure (amount, quantité) is one."""
    if st.low is None or st.high is None or _named_like_a_measure(name):
        return ""
    shown = ", ".join(str(v) for v in st.shown[:4]) + (", …" if st.distinct > 4 else "")
    if _named_like_a_thing(name):
        return f"its name says its values ({shown}) are codes, not quantities"
    repeated = st.values >= 2 * st.distinct
    if not repeated or st.distinct < 2:
        return ""
    if st.distinct <= MAX_BREAKDOWN_VALUES and st.low >= 10 and 2 * st.distinct <= st.high - st.low + 1:
        return f"its {st.distinct} values ({shown}) look like codes, not quantities"
    if st.low >= 1000 and len(str(st.low)) == len(str(st.high)):
        return f"its values ({shown}) look like codes, not quantities: {len(str(st.low))} digits each"
    return ""


# -- the report --------------------------------------------------------------------------------


@dataclass
class SourceReport:
    report_id: str
    yaml: str
    sniffed: Sniffed
    roles: Roles
    outside: bool  # the CSV is outside the report's folder (validate and run need --allow-dir)
    source_name: str = ""  # the source the metrics read


def _name(text: str) -> str:
    """A metric/KPI name (``^[a-z_][a-z0-9_]*$``) from a column header."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    name = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")[:60] or "column"
    return name if not name[0].isdigit() else f"c_{name}"


def _q(text: str) -> str:
    """A YAML double-quoted scalar."""
    return json.dumps(text, ensure_ascii=False)


def _label(column: str) -> str:
    return column[:1].upper() + column[1:].replace("_", " ")


def _sniff_source(path: Path) -> Sniffed:
    """What ``path`` holds; UsageError unless it is a CSV file with a date column."""
    if not path.is_file():
        raise UsageError(f"init: --source {path}: file not found")
    if path.suffix.lower() not in (".csv", ".txt", ".tsv"):
        raise UsageError(f"init: --source {path}: only CSV files are sniffed; write other sources by hand")
    found = sniff(path)
    if found.date_column is not None and found.last_date is not None:
        found.frequency = _frequency(path, found.encoding, found.date_column, found.last_date)
    if found.date_column is None:
        shown = ", ".join(f"{n} ({t})" for n, t in found.columns)
        raise UsageError(
            f"init: --source {path}: no column reads as a date ({shown}); every source needs a "
            "date_column: export the file with a date column, or write the stanza by hand"
        )
    return found


def _relative(path: Path, folder: Path) -> Path:
    """``path`` as the YAML in ``folder`` names it: relative to that folder (``../exports/x.csv``
    when outside it), absolute only when no relative path leads there (another drive)."""
    try:
        return Path(os.path.relpath(path.resolve(), folder.resolve()))
    except ValueError:
        return path.resolve()


def _numbers_read(source_name: str, file_name: str, found: Sniffed) -> list[str]:
    """A derived source over the file that reads the columns written like "2 867,56 €" as
    numbers: everything but the digits, the sign and the decimal mark is removed (the csv
    options have no thousands separator)."""
    from reporter.config.sql import quote_ident

    assert found.date_column is not None
    casts = []
    for column, (mark, _example) in found.formatted.items():
        col = quote_ident(column)
        kept = f"regexp_replace(cast({col} AS varchar), '[^0-9{mark}-]', '', 'g')"
        if mark == ",":
            kept = f"replace({kept}, ',', '.')"
        casts.append(f"cast(nullif({kept}, '') AS double) AS {col}")
    shown = ", ".join(found.formatted)
    return [
        f"  {source_name}:                # the file's rows, with {shown} read as numbers",
        "    type: derived",
        f"    from: [{file_name}]",
        f"    date_column: {_q(found.date_column)}",
        "    sql: |",
        "      select * replace (",
        *(f"        {cast}{',' if i < len(casts) - 1 else ''}" for i, cast in enumerate(casts)),
        "      )",
        f"      from {file_name}",
    ]


def _french(found: Sniffed) -> list[str]:
    """Why the file looks French (empty: it does not): a column name with a French word
    (``_FRENCH_WORDS``), or numbers with a decimal comma and dates written day first; never when
    a column name has a word of another language that writes them so (``_OTHER_WORDS``)."""
    words = {w for name, _ in found.columns for w in _words(name)}
    if words & _OTHER_WORDS:
        return []
    named = [name for name, _ in found.columns if set(_words(name)) & _FRENCH_WORDS]
    day_first = (found.date_format or "").startswith("%d")
    if named:
        return [f"French column names ({', '.join(named[:3])}{', …' if len(named) > 3 else ''})"] + (
            ["a decimal comma"] if found.decimal == "," else []
        )
    if found.decimal == "," and day_first:
        return ["a decimal comma", "dates written day first"]
    return []


def _report_stanza(path: Path, french: list[str]) -> list[str]:
    """The report's title, locale and timezone: French for a file that looks French (``french``
    says why, in a comment), else English and UTC."""
    words = " ".join(path.stem.replace("_", " ").replace("-", " ").split())
    if french:
        return [
            f"  title: {_q('Rapport ' + words.lower())}",
            f"  locale: fr_FR                # the file looks French: {', '.join(french)}",
            "  timezone: Europe/Paris       # a month is a month in this timezone",
        ]
    return [
        f"  title: {_q(path.stem.replace('_', ' ').replace('-', ' ').capitalize() + ' report')}",
        "  timezone: UTC                # a month is a month in this timezone",
    ]


def source_report(path: Path, folder: Path) -> SourceReport:
    """The YAML of a report over the CSV at ``path``, to be written into ``folder``."""
    found = _sniff_source(path)
    assert found.date_column is not None  # _sniff_source refuses a file without one
    roles = classify(found)
    report_id = _name(path.stem).replace("_", "-")
    source_name = _name(path.stem)
    shown_path = _relative(path, folder)
    outside = shown_path.is_absolute() or shown_path.parts[:1] == ("..",)
    # numbers written like "2 867,56 €" are read by a derived source over the file's
    file_name = f"{source_name}_file" if found.formatted else source_name

    french = _french(found)
    lines = [
        MODELINE,
        f"# A report over {path.name}, written by `reporter init --source`.",
        "# The csv options below are what reporter detected in the file: check them once.",
        "# It counts the rows of each period, counts identifiers distinct (never sums them), sums",
        "# each numeric column, and breaks the main KPI down by each column with few values.",
        "",
        "report:",
        f"  id: {report_id}",
        *_report_stanza(path, french),
        "  grain: month                 # month | quarter | week",
        "",
        "sources:",
        f"  {file_name}:",
        "    type: csv",
        f"    path: {_q(shown_path.as_posix())}"
        + ("   # outside this folder: validate and run with --allow-dir" if outside else ""),
        f"    date_column: {_q(found.date_column)}",
        (
            "    # frequency: daily         # weekly or monthly when the file has a row per week or month"
            if found.frequency == "daily"
            else f"    frequency: {found.frequency}          # what the dates show: "
            + ("most months end in their last week" if found.frequency == "weekly" else "a row a month")
        ),
        "    csv:",
        f"      delimiter: {_q(found.delimiter)}",
        f"      decimal: {_q(found.decimal)}            # the decimal mark of the numbers",
        f"      encoding: {found.encoding}",
    ]
    if found.date_format:
        lines.append(f"      date_format: {_q(found.date_format)}")
    if found.quote != '"':
        lines.append(f"      quote: {_q(found.quote)}")
    if not found.header:
        lines.append("      header: false")
    lines.append("      null_values: [" + ", ".join(_q(v) for v in found.null_values) + "]")
    if found.formatted:
        lines += _numbers_read(source_name, file_name, found)

    used = {"rows"}

    def fresh(name: str) -> str:
        while name in used:
            name += "_"
        used.add(name)
        return name

    distinct = {column: fresh(f"distinct_{_name(column)}"[:64]) for column in roles.ids}
    sums = {column: fresh(_name(column)) for column in roles.measures}
    lines += ["", "metrics:"]
    lines.append(f"  rows: {{source: {source_name}, agg: count}}                # rows in the period")
    for column, name in distinct.items():
        lines.append(
            f"  {name}: {{source: {source_name}, agg: count_distinct, column: {_q(column)}}}"
            "   # an identifier: counted, never summed"
        )
    for column, name in sums.items():
        lines.append(f"  {name}: {{source: {source_name}, agg: sum, column: {_q(column)}}}")
    lines += ["", "kpis:"]
    lines += [
        "  rows:",
        f"    label: {'Lignes' if french else 'Rows'}",
        "    formula: rows",
        "    format: integer",
        "    direction: neutral",
    ]
    for column, name in distinct.items():
        label = f"{_label(column)} distincts" if french else f"Distinct {column.replace('_', ' ')}"
        lines += [
            f"  {name}:",
            f"    label: {_q(label)}",
            f"    formula: {name}",
            "    format: integer",
            "    direction: neutral",
        ]
    for column, name in sums.items():
        lines += [
            f"  {name}:",
            f"    label: {_q(_label(column))}",
            f"    formula: {name}",
            "    format: number",
            "    direction: up                # or down when less is better, neutral when neither",
        ]
    if roles.categories:
        main = "rows" if roles.main is None else sums[roles.main]
        lines += ["", f"breakdowns:                    # {main} for each value of a column with few values"]
        lines += [
            f"  - {{kpi: {main}, by: {_q(column)}, label: {_q(_label(column))}}}"
            for column in roles.categories
        ]
    return SourceReport(report_id, "\n".join(lines) + "\n", found, roles, outside, source_name)
