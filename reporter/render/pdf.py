"""HTML → PDF with WeasyPrint, fetching nothing but the template folders and data: URLs."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reporter.errors import RunError

log = logging.getLogger("reporter")


def make_fetcher(allowed: list[Path]) -> Any:
    """A WeasyPrint URL fetcher limited to files under ``allowed`` and data: URLs; anything else
    stops the render (FatalURLFetchingError) instead of being silently skipped."""
    from urllib.parse import unquote, urlsplit

    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    roots = [p.resolve() for p in allowed]

    class _Fetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "file":
                path = Path(unquote(urlsplit(url).path)).resolve()
                if not any(path.is_relative_to(root) for root in roots):
                    raise FatalURLFetchingError(f"the report may not read {path}")
            elif scheme != "data":
                raise FatalURLFetchingError(f"the report may not fetch {url[:80]!r}")
            return super().fetch(url, headers)

    return _Fetcher(allowed_protocols=("file", "data"), fail_on_errors=True, allow_redirects=False)


# WeasyPrint's notice when the machine lacks HarfBuzz's subsetter (Debian's libharfbuzz-subset0):
# it then subsets fonts with fontTools and the PDF is still right. A fact about the machine, not a
# problem of the document: never a render failure, and said once per process by the CLI.
FONTTOOLS_NOTICE = "Using fontTools instead of HarfBuzz-Subset"


def is_environment_notice(record: logging.LogRecord) -> bool:
    return record.name.startswith("weasyprint") and FONTTOOLS_NOTICE in str(record.msg)


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not is_environment_notice(record):
            self.messages.append(record.getMessage())


@contextmanager
def collect_problems(strict: bool) -> Iterator[list[str]]:
    """What WeasyPrint logs while the block runs: errors, and warnings too with ``strict``."""
    handler = _Collect(logging.WARNING if strict else logging.ERROR)
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


# Above this much HTML a report is rendered in two processes (reporter.render.split): the
# demo's 86 kB take WeasyPrint ~1.4 s on one core; forking, the front and the page furniture
# add ~0.25 s, which a small report would not win back.
SPLIT_HTML = 50_000


@contextmanager
def font_clock(when: dt.datetime | None) -> Iterator[None]:
    """Without libharfbuzz-subset0, WeasyPrint subsets fonts with fontTools, which stamps each
    font it writes with the current time unless SOURCE_DATE_EPOCH is set (the reproducible-builds
    convention it follows). The run's clock stamps them instead, so a PDF re-rendered from the
    same run is byte-identical on any machine."""
    if when is None or "SOURCE_DATE_EPOCH" in os.environ:
        yield
        return
    os.environ["SOURCE_DATE_EPOCH"] = str(int(when.timestamp()))
    try:
        yield
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]


def write_pdf(
    html: str,
    base_dir: Path,
    allowed: list[Path],
    *,
    strict: bool = False,
    finish: Callable[[Any], bytes] | None = None,
    pdfa: bool = False,
    split: bool | None = None,
    when: dt.datetime | None = None,
) -> bytes:
    """Render ``html`` to PDF bytes; see ``_write_pdf``. ``when``: the run's clock, which stamps
    the embedded fonts (``font_clock``)."""
    with font_clock(when):
        return _write_pdf(html, base_dir, allowed, strict=strict, finish=finish, pdfa=pdfa, split=split)


def _write_pdf(
    html: str,
    base_dir: Path,
    allowed: list[Path],
    *,
    strict: bool,
    finish: Callable[[Any], bytes] | None,
    pdfa: bool,
    split: bool | None,
) -> bytes:
    """Render ``html`` to PDF bytes. An error logged by WeasyPrint (a missing image, a bad
    stylesheet) fails the render; with ``strict``, so does any warning (the tests use it).

    A long report (``split`` None: more than SPLIT_HTML characters, two cores and ``fork``) is
    rendered in two processes and joined; ``pdfa`` says ``finish`` writes PDF/A (the other parts
    are written alike)."""
    from reporter.render import split as parallel

    if split is None:
        split = (
            len(html) > SPLIT_HTML
            and (os.cpu_count() or 1) > 1
            and "fork" in multiprocessing.get_all_start_methods()
            and parallel.unsupported(html, base_dir) is None
        )
    document = parallel.cut(html) if split else None
    if document is not None and len(document.pieces) > 2:
        try:
            pdf, problems = parallel.render(
                document, base_dir, allowed, strict=strict, pdfa=pdfa, finish=finish
            )
        except Exception as exc:  # a worker killed, a join refused: the one-document render decides
            pdf, problems = b"", [f"{type(exc).__name__}: {exc}"]
        if not problems:
            return pdf
        _stop_if_refused(problems)  # a refused fetch is refused in one document too
        log.warning("rendering in two processes failed (%s); rendering in one", "; ".join(problems[:3]))
    part = parallel.render_part(html, base_dir, allowed, strict, None, finish)
    problems = part.problems + [
        f"No anchor #{target} for internal URI reference" for _, target, _ in part.links
    ]
    _stop_if_refused(problems)
    if problems:
        raise RunError("PDF rendering reported problems: " + "; ".join(problems[:5]))
    if not part.pages:
        raise RunError("the PDF would have no page; nothing is sent")
    return part.pdf


def _stop_if_refused(problems: list[str]) -> None:
    for problem in problems:
        if problem.startswith("PDF rendering stopped"):
            raise RunError(problem)
