"""HTML → PDF with WeasyPrint, fetching nothing but the template folders and data: URLs."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import gc
import logging
import os
import shutil
import sys
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
    when: dt.datetime | None = None,
) -> bytes:
    """Render ``html`` to PDF bytes as one WeasyPrint document, in this process; ``finish``
    writes the rendered document (PDF/A, see ``reporter.delivery.archive.make_pdfa``), else it
    is written as a plain PDF. An error logged by WeasyPrint (a missing image, a bad stylesheet)
    fails the render; with ``strict``, so does any warning (the tests use it). ``when``: the
    run's clock, which stamps the embedded fonts (``font_clock``).

    Python's cycle collector is paused meanwhile: WeasyPrint makes millions of small objects,
    and the collector walking them again and again took a third of the render (8.0 s → 5.3 s
    for 2,800 table rows, for 3 % more memory); what the render leaves is collected once at the
    end. Reports run in parallel only across processes (bursts, one report per recipient)."""
    with font_clock(when), collect_problems(strict) as problems, _collector_paused():
        pdf, pages, stopped = _render(html, base_dir, allowed, finish)
    if stopped:
        raise RunError(f"PDF rendering stopped: {stopped}")
    if problems:
        raise RunError("PDF rendering reported problems: " + "; ".join(problems[:5]))
    if not pages:
        raise RunError("the PDF would have no page; nothing is sent")
    return pdf


def _render(
    html: str, base_dir: Path, allowed: list[Path], finish: Callable[[Any], bytes] | None
) -> tuple[bytes, int, str | None]:
    """(PDF, page count, why a refused fetch stopped the render or None)."""
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    try:
        url = base_dir.as_uri() + "/"
        fonts = font_config(allowed)
        page = HTML(string=html, base_url=url, url_fetcher=make_fetcher(allowed))
        document = page.render(font_config=fonts)
        if not document.pages:
            return b"", 0, None
        pdf = finish(document) if finish else document.write_pdf()
        return pdf, len(document.pages), None
    except FatalURLFetchingError as exc:
        return b"", 0, str(exc)


# False in a process that ends right after the render (``forked``'s child): the render's
# garbage is left to the end of the process instead of being walked (about 0.1 s on the demo).
collect_after = True


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.freeze()  # what exists already (the data, DuckDB) is not walked again below
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        if collect_after:
            gc.collect()
        gc.unfreeze()


# -- the fonts, once per process ----------------------------------------------------------
# A WeasyPrint FontConfiguration reads the system's fonts (Fontconfig) and, for each @font-face
# of the template, copies the font to a folder of its own and registers it with Fontconfig and
# Pango, which then drop what they had loaded. A process that renders many reports (a burst
# worker, a Dask worker) keeps one per template and reuses it: the @font-face fonts are copied
# and registered once. Reports rendered with it are byte-identical to those of a fresh process
# (tests/test_warm.py); the time it saves is small (benchmarks/README.md, warm workers).
_FONTS: dict[tuple[object, ...], Any] = {}
_KEEP = 2  # template versions kept per process (a Dask worker serves several reports and runs)
font_loads = 0  # FontConfigurations made in this process (the tests count them)


def font_config(allowed: list[Path]) -> Any:
    """This process's FontConfiguration for the template folders ``allowed``: made at the first
    render, reused while no file in those folders changes (a changed font or stylesheet, by
    size, modification time or inode, makes a new one: a long-lived worker never renders with a
    font that has been replaced since)."""
    global font_loads
    key = _fingerprint(allowed)
    fonts = _FONTS.get(key)
    if fonts is None:
        from weasyprint.text.fonts import FontConfiguration

        while len(_FONTS) >= _KEEP:
            _FONTS.pop(next(iter(_FONTS)))
        _release_at_exit()
        fonts = _FONTS[key] = FontConfiguration()
        font_loads += 1
    return fonts


_released_by: int | None = None  # the process that registered release_fonts at its exit


def _release_at_exit() -> None:
    """Register ``release_fonts`` once per process: with ``atexit`` (before the teardown), and
    in a ``multiprocessing`` worker, which leaves with ``os._exit`` after running its own
    finalizers instead (burst workers)."""
    global _released_by
    if _released_by == os.getpid():
        return
    _released_by = os.getpid()
    atexit.register(release_fonts)
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:
        from multiprocessing.util import Finalize

        Finalize(None, release_fonts, exitpriority=0)


def release_fonts() -> None:
    """Remove this process's font folders now: at exit (WeasyPrint's ``FontConfiguration.__del__``
    would, but at the interpreter's teardown it fails, ``shutil`` half gone, and left a 0.7 MB
    folder in the temporary directory at every run), and in a process that leaves with
    ``os._exit``, which runs no ``__del__``."""
    for fonts in _FONTS.values():
        folder, fonts._folder = getattr(fonts, "_folder", None), None
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    _FONTS.clear()


def in_render_child() -> None:
    """The forked render child (``reporter.render.forked``): it leaves right after answering."""
    global collect_after
    collect_after = False


def _fingerprint(folders: list[Path]) -> tuple[object, ...]:
    found: list[object] = []
    for folder in folders:
        found.append(str(folder))
        for path in sorted(folder.rglob("*")):
            with contextlib.suppress(OSError):
                st = path.stat()
                found.append((str(path.relative_to(folder)), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(found)


def _forget_fonts_in_child() -> None:
    """A forked process makes its own: the folder of a FontConfiguration inherited from the
    parent is the parent's, and would be deleted when the child's copy is collected."""
    for fonts in _FONTS.values():
        fonts._folder = None
    _FONTS.clear()


os.register_at_fork(after_in_child=_forget_fonts_in_child)
