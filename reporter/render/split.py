"""Render a long report in two processes and join the halves into one PDF.

WeasyPrint lays out one document on one core, at ~2 ms per table row. A report with thousands
of rows is therefore cut where the template allows it — a ``<!--reporter:split-->`` comment,
placed only where the page breaks anyway (before a section, between the page-sized chunks of a
long table) — so the joined PDF has the same pages as a single render. The pieces after the
front (cover and table of contents) form two groups of about equal weight; a forked process
renders one while this one renders the other. Then, at the same time:

- this process renders the front, with the real page numbers in the table of contents
  (``numbered``);
- the worker renders the page furniture (running header, "page X / Y" footer) as one
  document of empty pages, laid over every page, since only now is the page count known.

The parts are rendered without margin boxes; links between parts, named destinations and
bookmarks are rebuilt on the joined file with pikepdf.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

MARK = "<!--reporter:split-->"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
MARGIN_BOXES = [
    f"{side}-{where}"
    for side, places in [
        ("top", "left-corner left center right right-corner"),
        ("bottom", "left-corner left center right right-corner"),
        ("left", "top middle bottom"),
        ("right", "top middle bottom"),
    ]
    for where in places.split()
]
BLANK = '<div style="break-after: page"></div>'
NO_FURNITURE = "<style>@page { " + " ".join(f"@{b} {{ content: none; }}" for b in MARGIN_BOXES) + " }</style>"
# A mark is honoured only where every open element can be closed and reopened without a
# trace: not inside a table, a paragraph or a list (a cut there would change the layout).
REOPENABLE = {"section", "div", "article", "main", "nav", "aside", "header", "footer"}


# What a part cannot know about the others: running strings, counters pointing to another
# part (except the contents', filled in by ``numbered``), left/right/blank and named pages.
_UNSUPPORTED = re.compile(r"string-set|target-text|(?<![-\w@])page\s*:|@page\s*(?!:first\b)[^{\s]", re.I)


def unsupported(html: str, base_dir: Path) -> str | None:
    """Why the report's styles cannot be rendered in parts (the CSS it would get wrong), or
    None. Read: the ``<style>`` elements and the stylesheets linked from ``base_dir``."""
    sheets = re.findall(r"<style\b[^>]*>(.*?)</style>", html, flags=re.S | re.I)
    for href in re.findall(r"""<link\b[^>]*\bhref\s*=\s*["']([^"':]+\.css)["']""", html, flags=re.I):
        path = base_dir / href
        if path.is_file():
            sheets.append(path.read_text(encoding="utf-8", errors="replace"))
    css = re.sub(r"/\*.*?\*/", "", "\n".join(sheets), flags=re.S)
    if found := _UNSUPPORTED.search(css):
        return found.group(0)
    for found in re.finditer(r"target-counters?\(", css):
        selector = css[css.rfind("}", 0, found.start()) + 1 : css.rfind("{", 0, found.start())]
        if ".toc" not in selector:
            return f"target-counter() in {selector.strip()[:60]!r}"
    return None


def _die_with_parent(parent: int) -> None:
    """In the worker: die with this process (stopped by a timeout, say) rather than wait
    forever to hand back its part (Linux's PR_SET_PDEATHSIG)."""
    import ctypes
    import os
    import signal

    with contextlib.suppress(OSError, AttributeError):  # not Linux: it ends with its task
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    # The parent says the fontTools notice once for the whole run (the CLI's filter).
    for once in logging.getLogger("weasyprint").filters:
        if hasattr(once, "said"):
            once.said = True


@dataclass
class Document:
    """An HTML document cut into pieces: ``prefix`` runs up to and including ``<body …>``;
    each piece is whole HTML for the body (its open ancestors reopened and closed)."""

    prefix: str
    pieces: list[str]


class _Cutter(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=False)
        self.html = html
        # HTMLParser counts lines at "\n" only (str.splitlines also splits at U+2028, CR…)
        self.starts = [0] + [m.end() for m in re.finditer("\n", html)]
        self.stack: list[tuple[str, str]] = []
        self.body_end: int | None = None
        self.cuts: list[tuple[int, list[tuple[str, str]]]] = []
        self.end: tuple[int, list[tuple[str, str]]] | None = None

    def position(self) -> int:
        line, column = self.getpos()
        return self.starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and self.body_end is None:
            self.body_end = self.position() + len(self.get_starttag_text() or "<body>")
            self.stack = []
            return
        if tag not in VOID:
            # reopened in the next piece without its id: an anchor is in one piece only
            kept = "".join(
                f" {name}" if value is None else f' {name}="{escape(value, quote=True)}"'
                for name, value in attrs
                if name not in ("id", "name")
            )
            self.stack.append((tag, f"<{tag}{kept}>"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.end = (self.position(), list(self.stack))
            return
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_comment(self, data: str) -> None:
        honoured = all(tag in REOPENABLE for tag, _ in self.stack)
        if f"<!--{data}-->" == MARK and self.body_end is not None and honoured:
            self.cuts.append((self.position(), list(self.stack)))


def cut(html: str) -> Document | None:
    """``html`` cut at its split marks, or None when it has none (or is not cut cleanly)."""
    if MARK not in html:
        return None
    parser = _Cutter(html)
    parser.feed(html)
    parser.close()
    if parser.body_end is None or parser.end is None or not parser.cuts:
        return None
    bounds = [(parser.body_end, []), *parser.cuts, parser.end]
    if not html[parser.body_end : parser.cuts[0][0]].strip():
        return None  # nothing before the first mark: no front (cover, contents) to render last
    pieces = []
    for (start, opened), (stop, still_open) in itertools.pairwise(bounds):
        if pieces and not html[start:stop].replace(MARK, "").strip():
            continue  # two marks in a row: nothing to render between them
        reopen = "".join(text for _, text in opened)
        close = "".join(f"</{tag}>" for tag, _ in reversed(still_open))
        pieces.append(reopen + html[start:stop] + close)
    return Document(html[: parser.body_end], pieces)


def numbered(piece: str, pages: dict[str, int]) -> str:
    """``piece`` with ``data-page="N"`` on each link to an anchor on page N (the table of
    contents prints it where, in one render, it uses ``target-counter``)."""

    def number(match: re.Match[str]) -> str:
        page = pages.get(unescape(match.group(3)))
        return match.group(1) + (f' data-page="{page}"' if page is not None else "")

    return re.sub(r"""(<a\b[^>]*?\shref\s*=\s*(["'])#(.+?)\2)""", number, piece)


def weight(piece: str) -> int:
    """What a piece costs WeasyPrint, roughly: its length (boxes, SVG nodes, text) plus a page."""
    return len(piece) // 100 + 40


def packs(pieces: list[str], limit: int = 1500) -> list[list[str]]:
    """``pieces`` in runs of at most ``limit`` weight (a longer piece alone): one WeasyPrint
    document holds ~70 kB per table row until it is written, so a run bounds the memory."""
    runs: list[list[str]] = []
    total = limit
    for piece in pieces:
        w = weight(piece)
        if total + w > limit:
            runs.append([])
            total = 0
        runs[-1].append(piece)
        total += w
    return runs


def render_parts(
    htmls: list[str], base_dir: Path, allowed: list[Path], strict: bool, variant: str | None
) -> list[Part]:
    """Render parts one after the other, stopping at the first with a problem. Each starts
    with a blank page, dropped: the first page of a document is the ``@page :first`` (the
    cover's), and a part's first page must be an ordinary one."""
    parts = []
    for html in htmls:
        parts.append(render_part(html, base_dir, allowed, strict, variant, skip_first=True))
        if parts[-1].problems:
            break
    return parts


def halves(weights: list[int], extra: int = 0) -> int:
    """Where to cut ``weights`` in two groups that end together when the second group's
    process has ``extra`` more to do afterwards (1 ≤ index < len)."""
    total, run, best, at = sum(weights), 0, None, 1
    for i, w in enumerate(weights[:-1], start=1):
        run += w
        gap = abs(run - (total - run + extra))
        if best is None or gap < best:
            best, at = gap, i
    return at


@dataclass
class Part:
    """What a rendered part reports back: its PDF and, per page, what the join rebuilds."""

    pdf: bytes = b""
    pages: int = 0
    anchors: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    links: list[tuple[int, str, tuple[float, float, float, float]]] = field(default_factory=list)
    bookmarks: list[tuple[int, str, int, float, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def render_part(
    html: str,
    base_dir: Path,
    allowed: list[Path],
    strict: bool,
    variant: str | None,
    finish: Callable[[Any], bytes] | None = None,
    skip_first: bool = False,
) -> Part:
    """Render one part (without its first page with ``skip_first``); links to anchors in
    other parts are taken out and reported (in PDF points) for the join to restore. Problems
    are returned, not raised: this may run in a forked process. Python's cycle collector is
    paused meanwhile: WeasyPrint makes millions of objects, and the collector walking them
    took a third of the time (8.0 s → 5.3 s for 2,800 rows, with 3 % more memory); what the
    render leaves is collected once at the end."""
    enabled = gc.isenabled()
    gc.freeze()  # what exists already (the data, DuckDB) is not walked again below
    gc.disable()
    try:
        return _render_part(html, base_dir, allowed, strict, variant, finish, skip_first)
    finally:
        if enabled:
            gc.enable()
        gc.collect()
        gc.unfreeze()


def _render_part(
    html: str,
    base_dir: Path,
    allowed: list[Path],
    strict: bool,
    variant: str | None,
    finish: Callable[[Any], bytes] | None,
    skip_first: bool,
) -> Part:
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    from reporter.render.pdf import collect_problems, make_fetcher

    part = Part()
    with collect_problems(strict) as problems:
        try:
            url = base_dir.as_uri() + "/"
            document = HTML(string=html, base_url=url, url_fetcher=make_fetcher(allowed)).render()
            if skip_first:
                document = document.copy(document.pages[1:])
            own = {name for page in document.pages for name in page.anchors}
            for number, page in enumerate(document.pages):
                height = page.height
                for name, (x, y, _, _) in page.anchors.items():
                    part.anchors.setdefault(name, (number, x * 0.75, (height - y) * 0.75))
                for level, label, (x, y), _ in page.bookmarks:
                    part.bookmarks.append((level, label, number, x * 0.75, (height - y) * 0.75))
                kept = []
                for link in page.links:
                    kind, target, (x1, y1, x2, y2), _ = link
                    if kind == "internal" and target not in own:
                        rect = (x1 * 0.75, (height - y2) * 0.75, x2 * 0.75, (height - y1) * 0.75)
                        part.links.append((number, target, rect))
                    else:
                        kept.append(link)
                page.links[:] = kept
            part.pages = len(document.pages)
            if part.pages:
                part.pdf = finish(document) if finish else document.write_pdf(pdf_variant=variant)
        except FatalURLFetchingError as exc:
            problems.append(f"PDF rendering stopped: {exc}")
    part.problems = list(problems)
    return part


def render(
    document: Document,
    base_dir: Path,
    allowed: list[Path],
    *,
    strict: bool,
    pdfa: bool,
    finish: Callable[[Any], bytes] | None,
) -> tuple[bytes, list[str]]:
    """Render ``document`` in two processes and join it; (PDF, problems)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    variant = "pdf/a-3b" if pdfa else None
    head = document.prefix + NO_FURNITURE  # in the body: a head's end tag is optional
    body = document.pieces[1:]
    weights = [weight(p) for p in body]
    # afterwards this process renders the front (~2 pages) while the other renders the
    # furniture (~3 row-weights a page, ~45 rows a page)
    at = halves(weights, extra=sum(weights) // 20 - weight(document.pieces[0]))

    def whole(pieces: list[str], blank: str = BLANK) -> str:
        return head + blank + "".join(pieces) + "</body></html>"

    def furniture(pages: int) -> str:
        blank = '<div style="break-before: page"></div>'
        return document.prefix + blank * pages + "</body></html>"

    def numbers(front_pages: int) -> dict[str, int]:
        return {name: at + 1 for name, (at, _, _) in placed(parts, front_pages).items()}

    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=_die_with_parent, initargs=(os.getpid(),))
    with pool:
        later = pool.submit(
            render_parts, [whole(p) for p in packs(body[at:])], base_dir, allowed, strict, variant
        )
        parts = render_parts([whole(p) for p in packs(body[:at])], base_dir, allowed, strict, variant)
        parts += later.result()
        problems = [problem for part in parts for problem in part.problems]
        if problems:
            return b"", problems
        # the front, with the page numbers of its links (the table of contents), and the
        # furniture for the page count, together; the front's own length moves both, so
        # they are redone in the rare case it is not two pages long
        front, guess = 2, 0
        for _ in range(3):
            guess = front
            overlay = pool.submit(
                render_part,
                furniture(guess + sum(p.pages for p in parts)),
                base_dir,
                allowed,
                strict,
                variant,
            )
            front_html = numbered(document.pieces[0], numbers(guess))
            head_part = render_part(whole([front_html], blank=""), base_dir, allowed, strict, variant, finish)
            over = overlay.result()
            front = head_part.pages
            if head_part.problems or over.problems or front == guess:
                break
    if head_part.problems or over.problems:
        return b"", head_part.problems + over.problems
    if front != guess:
        return b"", [f"the contents' page numbers do not settle ({guess} or {front} pages before them)"]
    pdf = join([head_part, *parts], over)
    if pdfa:
        from reporter.delivery.archive import no_cr_before_endstream

        pdf = no_cr_before_endstream(pdf)
    return pdf, []


def placed(parts: list[Part], before: int = 0) -> dict[str, tuple[int, float, float]]:
    """Each anchor's page index in the joined file (``before`` pages ahead of the parts) and
    position; the first of a name wins, as in one render."""
    anchors: dict[str, tuple[int, float, float]] = {}
    for part in parts:
        for name, (number, x, y) in part.anchors.items():
            anchors.setdefault(name, (before + number, x, y))
        before += part.pages
    return anchors


def join(parts: list[Part], furniture: Part) -> bytes:
    """The parts' pages in order in the first part's file (its catalogue, metadata and
    attachments), with the furniture laid over each page, one set of named destinations,
    the links between parts restored and the bookmarks rebuilt."""
    import pikepdf

    base = pikepdf.open(io.BytesIO(parts[0].pdf))
    for part in parts[1:]:
        if not part.pages:
            continue
        other = pikepdf.open(io.BytesIO(part.pdf))
        base.pages.extend(other.pages)
    over = pikepdf.open(io.BytesIO(furniture.pdf))
    for number, (page, layer) in enumerate(zip(base.pages, over.pages, strict=True)):
        # as pikepdf's add_overlay does, but with names of our own: its names are random, and
        # one per page, since a part's pages share one resource dictionary
        name = pikepdf.Name(f"/ReporterFurniture{number}")
        page.add_resource(base.copy_foreign(layer.as_form_xobject()), pikepdf.Name.XObject, name)
        page.contents_add(pikepdf.Stream(base, b"q\n"), prepend=True)
        page.contents_add(pikepdf.Stream(base, b"\nQ q " + str(name).encode() + b" Do Q\n"))

    offsets = list(itertools.accumulate((p.pages for p in parts[:-1]), initial=0))
    anchors = placed(parts)
    names = pikepdf.NameTree.new(base)
    for name in sorted(anchors):
        number, x, y = anchors[name]
        names[name] = pikepdf.Array([base.pages[number].obj, pikepdf.Name.XYZ, x, y, 0])
    if "/Names" not in base.Root:
        base.Root.Names = pikepdf.Dictionary()
    base.Root.Names.Dests = names.obj
    for part, start in zip(parts, offsets, strict=True):
        for number, target, rect in part.links:
            if target not in anchors:
                raise LookupError(f"no anchor #{target} for an internal link")
            page = base.pages[start + number]
            link = base.make_indirect(
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Annot,
                    Subtype=pikepdf.Name.Link,
                    Rect=pikepdf.Array(list(rect)),
                    BS=pikepdf.Dictionary(W=0),
                    F=4,
                    Dest=pikepdf.String(target),
                )
            )
            if "/Annots" not in page.obj:
                page.obj.Annots = pikepdf.Array()
            page.obj.Annots.append(link)

    flat = [
        (level, label, start + number, x, y)
        for part, start in zip(parts, offsets, strict=True)
        for level, label, number, x, y in part.bookmarks
    ]
    with base.open_outline() as outline:
        outline.root.clear()
        stack: list[tuple[int, Any]] = []
        for level, label, number, x, y in flat:
            item = pikepdf.OutlineItem(label, number, "XYZ", left=x, top=y)
            while stack and stack[-1][0] >= level:
                stack.pop()
            (stack[-1][1].children if stack else outline.root).append(item)
            stack.append((level, item))
    out = io.BytesIO()
    base.save(out, deterministic_id=True)
    return out.getvalue()
