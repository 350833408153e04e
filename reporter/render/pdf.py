"""HTML → PDF with WeasyPrint, fetching nothing but the template folders and data: URLs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reporter.errors import RunError


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


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def write_pdf(
    html: str,
    base_dir: Path,
    allowed: list[Path],
    *,
    strict: bool = False,
    finish: Callable[[Any], bytes] | None = None,
) -> bytes:
    """Render ``html`` to PDF bytes. An error logged by WeasyPrint (a missing image, a bad
    stylesheet) fails the render; with ``strict``, so does any warning (the tests use it)."""
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    handler = _Collect(logging.WARNING if strict else logging.ERROR)
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        document = HTML(string=html, base_url=base_dir.as_uri() + "/", url_fetcher=make_fetcher(allowed))
        rendered = document.render()
        if not rendered.pages:
            raise RunError("the PDF would have no page; nothing is sent")
        pdf = finish(rendered) if finish is not None else rendered.write_pdf()
    except FatalURLFetchingError as exc:
        raise RunError(f"PDF rendering stopped: {exc}") from None
    finally:
        logger.removeHandler(handler)
    if handler.messages:
        raise RunError("PDF rendering reported problems: " + "; ".join(handler.messages[:5]))
    assert isinstance(pdf, bytes)
    return pdf
