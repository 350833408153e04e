"""The email digest: HTML (tables, inlined CSS, ≤ 640 px, PNG charts as cid: parts) and a plain
text alternative with the same facts, the PDF attached. Built from the same context as the PDF.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import io
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from reporter.config.model import Config
from reporter.periods import Period
from reporter.render.charts import PALETTE
from reporter.render.context import Formatter
from reporter.render.html import _template, build_context, environment, render_text
from reporter.render.sandbox import render
from reporter.render.view import DigestContext, as_mapping, typed
from reporter.results import Results


@dataclass
class Digest:
    subject: str
    html: str
    text: str
    images: dict[str, bytes]  # content-id (without <>) → PNG bytes


def sparkline_png(values: list[float | None], colour: str, width: int = 120, height: int = 32) -> bytes:
    """A small trend as PNG (mail clients drop SVG), drawn at 2× for sharp phone screens."""
    from PIL import Image, ImageDraw

    scale = 2
    image = Image.new("RGB", (width * scale, height * scale), "white")
    draw = ImageDraw.Draw(image)
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(known) >= 2:
        lo = min(v for _, v in known)
        hi = max(v for _, v in known)
        span = (hi - lo) or 1.0
        step = (width * scale - 8) / max(len(values) - 1, 1)
        points = [(4 + i * step, 4 + (height * scale - 8) * (1 - (v - lo) / span)) for i, v in known]
        draw.line(points, fill=colour, width=3, joint="curve")
        x, y = points[-1]
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def build_digest(config: Config, results: Results, *, recipient: str = "") -> Digest:
    import css_inline

    formatter = Formatter.for_report(config.report)
    env = environment(config, formatter)
    context = build_context(config, results, formatter)
    images: dict[str, bytes] = {}
    for obj in context["objectives"]:
        cid = f"trend-{hashlib.sha1(obj['id'].encode()).hexdigest()[:12]}@reporter"
        colour = PALETTE.get(obj["status"], PALETTE["accent"])
        images[cid] = sparkline_png([p["value"] for p in obj["trend"]], colour)
        obj["cid"] = cid
    # The action items to act on before the next report: due by the end of the next period.
    horizon = Period.parse(results.period, results.grain).shift(1).end.isoformat()  # type: ignore[arg-type]
    due_now = [
        {**action, "objective": obj["title"]}
        for obj in context["objectives"]
        for action in obj["actions"]
        if action["due"] is None or action["due"] <= horizon
    ]
    context["due_actions"] = due_now
    context["recipient"] = recipient
    subject = render_text(
        config.delivery.email.subject if config.delivery.email else "{{ report.title }} — {{ period.label }}",
        {
            "report": config.report.model_dump(mode="json"),
            "period": {"label": context["period"]["words"], "code": results.period},
        },
        "delivery.email.subject",
    )
    view = as_mapping(typed(DigestContext, context))
    html = render(_template(env, "email.html"), view, "email template")
    html = css_inline.inline(html)
    text = render(_template(env, "email.txt"), view, "email template")
    return Digest(subject=subject, html=html, text=text, images=images)


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
    msg["Subject"] = digest.subject
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
