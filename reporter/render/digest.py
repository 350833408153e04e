"""The email digest: HTML (tables, inlined CSS, ≤ 640 px, PNG charts as cid: parts) and a plain
text alternative with the same facts, the PDF attached. Built from the same context as the PDF.
"""

from __future__ import annotations

import base64
import dataclasses
import email.policy
import email.utils
import hashlib
import io
import itertools
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from typing import Any, TypeVar

from reporter.config.labels import Labels
from reporter.config.model import Config
from reporter.files import report_file
from reporter.periods import Period
from reporter.render.charts import PALETTE
from reporter.render.context import Formatter, lcfirst
from reporter.render.html import _template, build_context, environment, render_text
from reporter.render.sandbox import render
from reporter.render.texts import subject_context
from reporter.render.view import DigestContext, DueAction, as_mapping
from reporter.results import Results


@dataclass
class Digest:
    subject: str
    html: str
    text: str
    images: dict[str, bytes]  # content-id (without <>) → PNG bytes


T = TypeVar("T")

# The digest's order: what needs attention first.
DIGEST_ORDER = ("off_track", "at_risk", "on_track", "no_data", "no_target")
# The longest line of the text part (RFC 5322 recommends 78 characters).
TEXT_WIDTH = 78
# The sparkline's target line: the colour of the PDF trend chart's dashed target line.
TARGET_COLOUR = PALETTE["ink"]
# The sparkline's size in the message, in CSS pixels (the PNG has twice as many).
SPARK_WIDTH, SPARK_HEIGHT = 132, 40


def sparkline_png(
    values: Sequence[float | None],
    colour: str,
    width: int = 120,
    height: int = 32,
    targets: Sequence[float | None] = (),
) -> bytes:
    """A small trend as PNG (mail clients drop SVG), drawn at 2× for sharp phone screens.
    ``targets`` (one per value, or none) is drawn as a dashed line in ``TARGET_COLOUR`` under
    the trend, on the same scale."""
    from PIL import Image, ImageDraw

    scale = 2
    image = Image.new("RGB", (width * scale, height * scale), "white")
    draw = ImageDraw.Draw(image)
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    goals = [(i, t) for i, t in enumerate(targets) if t is not None and i < len(values)]
    if len(known) >= 2:
        lo, hi = sparkline_scale(values, targets)
        span = hi - lo
        step = (width * scale - 8) / max(len(values) - 1, 1)

        def at(i: int, v: float) -> tuple[float, float]:
            return (4 + i * step, 4 + (height * scale - 8) * (1 - (v - lo) / span))

        if goals:
            # a lone target (or one period's) spans the whole width, like a goal line
            line = [at(i, t) for i, t in goals] if len(goals) >= 2 else [at(0, goals[0][1])]
            if len(line) == 1:
                line.append((width * scale - 4, line[0][1]))
            _dashed(draw, line, TARGET_COLOUR, width=2)
        points = [at(i, v) for i, v in known]
        draw.line(points, fill=colour, width=3, joint="curve")
        x, y = points[-1]
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
    buffer = io.BytesIO()
    # Named, so that Pillow loads its PNG writer alone (given only a format, it first loads the
    # BMP, GIF, JPEG and PPM ones too: a few ms of every run that writes a digest). Same bytes.
    buffer.name = "sparkline.png"
    image.save(buffer, optimize=True)
    return buffer.getvalue()


def sparkline_scale(
    values: Sequence[float | None], targets: Sequence[float | None] = ()
) -> tuple[float, float]:
    """The vertical range of a sparkline: its values and targets (a flat series gets ±1)."""
    known = [v for v in [*values, *targets[: len(values)]] if v is not None]
    lo, hi = min(known), max(known)
    return (lo - 1, hi + 1) if lo == hi else (lo, hi)


def _dashed(
    draw: Any, points: list[tuple[float, float]], colour: str, width: int, dash: float = 8, gap: float = 5
) -> None:
    """A dashed polyline (Pillow draws only solid ones); the pattern runs on across corners."""
    period = dash + gap
    travelled = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)

        def at(
            d: float, x0: float = x0, y0: float = y0, x1: float = x1, y1: float = y1, n: float = length
        ) -> tuple[float, float]:
            return (x0 + (x1 - x0) * d / n, y0 + (y1 - y0) * d / n)

        pos = 0.0
        while pos < length:
            phase = (travelled + pos) % period
            end = min(length, pos + max((dash if phase < dash else period) - phase, 1e-3))
            if phase < dash:
                draw.line((*at(pos), *at(end)), fill=colour, width=width)
            pos = end
        travelled += length


def _get(item: Any, key: str) -> Any:
    """A field of an objective: a mapping's key (results.json) or a view's attribute."""
    return item[key] if isinstance(item, Mapping) else getattr(item, key)


def in_digest_order(objectives: Sequence[T]) -> list[T]:
    """Off track first, then at risk, on track, without data, without target; within a status
    the furthest from its target (the lowest attainment) first, then the YAML's order."""
    rank = {status: i for i, status in enumerate(DIGEST_ORDER)}

    def key(obj: T) -> tuple[int, bool, float]:
        attainment = _get(obj, "attainment")
        return (rank.get(_get(obj, "status"), len(rank)), attainment is None, attainment or 0.0)

    return sorted(objectives, key=key)


def tally_words(
    tally: Sequence[tuple[str, int]], gettext: Callable[[str], str], *, short: bool = False
) -> str:
    """``2 en retard, 1 à surveiller, 4 en bonne voie``: the counts in the digest's order. With
    ``short`` (the subject), only what needs attention: off track and at risk, or, when none
    is, every count."""
    counts = [(status, n) for status, n in tally if n]
    if short and any(status in ("off_track", "at_risk") for status, _ in counts):
        counts = [(status, n) for status, n in counts if status in ("off_track", "at_risk")]
    return ", ".join(f"{n} {lcfirst(gettext(status))}" for status, n in counts)


def worst_objective(objectives: Sequence[T]) -> T | None:
    """The objective furthest from its target among the off-track ones, else the at-risk ones."""
    for status in ("off_track", "at_risk"):
        found = [o for o in objectives if _get(o, "status") == status]
        if found:
            return in_digest_order(found)[0]
    return None


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Every line of ``text`` at most ``width`` characters: a longer line is cut between words,
    its continuation indented under the line's text (after its indentation and a leading
    bullet or symbol). A single word longer than ``width`` (a long address) stays whole."""
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = re.match(r"\s*(?:[-*•▲▼✔✖–○]\s+)?", line)
        indent = " " * len(lead.group(0) if lead else "")
        out += textwrap.wrap(
            line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
        ) or [line]
    return "\n".join(out)


def build_digest(config: Config, results: Results, *, recipient: str = "") -> Digest:
    import css_inline

    formatter = Formatter.for_report(config.report)
    _ = formatter._
    env = environment(config, formatter)
    report = build_context(config, results, formatter)
    images: dict[str, bytes] = {}
    objectives = []
    for obj in in_digest_order(report.objectives):
        cid = f"trend-{hashlib.sha1(obj.id.encode()).hexdigest()[:12]}@reporter"
        colour = PALETTE.get(obj.status, PALETTE["accent"])
        images[cid] = sparkline_png(
            [p.value for p in obj.trend],
            colour,
            SPARK_WIDTH,
            SPARK_HEIGHT,
            targets=[p.target for p in obj.trend],
        )
        objectives.append(dataclasses.replace(obj, cid=cid))
    counts = dict(report.tally)
    tally = [(status, counts[status]) for status in DIGEST_ORDER if status in counts]
    # The action items to act on before the next report: due by the end of the next period.
    horizon = Period.parse(results.period, results.grain).shift(1).end.isoformat()  # type: ignore[arg-type]
    # (an overdue one among them), and the followed actions a check-in closed in this period.
    due_now = [
        DueAction(
            objective=obj.title, **{f.name: getattr(action, f.name) for f in dataclasses.fields(action)}
        )
        for obj in objectives
        for action in obj.actions
        if action.due is None or action.due <= horizon or action.state in ("done", "dropped", "not_needed")
    ]
    # the files the message carries, by the names delivery gives them (delivery/send.py)
    attach = config.delivery.email.attach if config.delivery.email else ["pdf"]
    attached = [
        report_file(results.report, results.period, kind) for kind in ("pdf", "xlsx") if kind in attach
    ]
    # The inbox's preview line: the tally and the objective furthest from its target.
    preheader = tally_words(tally, _)
    worst = worst_objective(objectives)
    if worst is not None:
        furthest = _("Furthest from target: %(objective)s (%(value)s, target %(target)s)") % {
            "objective": worst.title,
            "value": worst.value_text,
            "target": worst.target_text,
        }
        preheader = f"{preheader} · {furthest}" if preheader else furthest
    incomplete = _("incomplete data") if report.incomplete else ""  # said first, in the inbox too
    if incomplete:
        preheader = " · ".join(p for p in (incomplete[:1].upper() + incomplete[1:], preheader) if p)
    email = config.delivery.email
    subject = render_text(
        email.subject if email else "{{ report.title }} — {{ period.label }}",
        subject_context(Labels(config), report.period.words, results.period),
        "delivery.email.subject",
    )
    short = tally_words(tally, _, short=True)
    if incomplete:
        subject = f"{subject} · {incomplete}"
    if short and (email is None or email.subject_tally):
        subject = f"{subject} · {short}"
    context = DigestContext(
        **{**as_mapping(report), "objectives": objectives, "tally": tally},
        due_actions=due_now,
        recipient=recipient,
        attached=attached,
        preheader=preheader,
    )
    view = as_mapping(context)
    html = render(_template(env, "email.html"), view, "email template")
    # Styles come from the template's own <style>; a <link>ed stylesheet (a URL, a file) is
    # never loaded, so nothing is fetched and no file outside the template folder is read.
    html = css_inline.CSSInliner(load_remote_stylesheets=False).inline(html)
    text = wrap_text(render(_template(env, "email.txt"), view, "email template"))
    return Digest(subject=subject, html=html, text=text, images=images)


def browser_html(digest: Digest) -> str:
    """The digest's HTML as one file a browser opens: each ``cid:`` image as a ``data:`` URL."""

    def image(match: re.Match[str]) -> str:
        png = digest.images.get(match.group(1))
        return f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else match.group(0)

    return re.sub(r"cid:([^\"'\s>]+)", image, digest.html)


def message_id(report: str, period: str, recipient: str, version: int = 1) -> str:
    """Stable per (report, period, recipient): a retry carries the same Message-ID."""
    digest = hashlib.sha256(f"{report}|{period}|{recipient.lower()}".encode()).hexdigest()[:20]
    suffix = f".v{version}" if version > 1 else ""
    return f"<{digest}{suffix}.{period}.{report}@reporter.invalid>"


def build_message(
    config: Config,
    digest: Digest,
    *,
    recipient: str,
    pdf: bytes,
    pdf_name: str,
    msg_id: str,
    date: Any,
) -> EmailMessage:
    """multipart/mixed: (multipart/alternative: text, multipart/related: html + PNGs) + PDF."""
    assert config.delivery.email is not None
    msg = EmailMessage(policy=email.policy.SMTP)
    if digest.subject.isascii():
        msg["Subject"] = digest.subject
    else:
        # Python's folding of a long non-ASCII header can leave the space between two encoded
        # words outside both, where RFC 2047 says to drop it ("2026· 2 en retard"): the
        # subject goes as encoded words that carry their spaces, in lines of at most 78.
        msg.set_raw("Subject", Header(digest.subject, "utf-8", header_name="Subject").encode())
    msg["From"] = config.delivery.email.from_
    msg["To"] = recipient
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(digest.text)
    msg.add_alternative(digest.html, subtype="html")
    html_part = msg.get_body(preferencelist=("html",))
    assert isinstance(html_part, EmailMessage)
    for cid, png in digest.images.items():
        html_part.add_related(
            png, maintype="image", subtype="png", cid=f"<{cid}>", filename=f"{cid.split('@')[0]}.png"
        )
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_name)
    return msg
