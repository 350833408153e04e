"""Chat delivery (``delivery.chat``): a short card posted to a Slack or Microsoft Teams incoming
webhook, through the ledger like every delivery.

The card: the report's title and period, the tally of objectives by status, each off-track
objective with its value and target, and a link to ``report.url`` when the YAML gives one. Slack
gets a Block Kit message (``text`` plus ``blocks``); Teams an Adaptive Card message (the payload
Teams incoming webhooks and workflow webhooks take).

Exactly once: each channel is a ledger delivery whose recipient is ``<kind>:<webhook_env>``
(``slack:SLACK_WEBHOOK_URL``), claimed before the POST and recorded after it; a later run skips
it, ``--force`` opens a new version, a crash between the POST and the record leaves it for
review (``reporter resolve``). Like an e-mail after the end of its DATA, a card is retried only
while it provably has not reached the server: connecting failed (DNS, refused, TLS handshake,
the proxy's tunnel), the connection broke before the card's last byte went out, or the server
answered 429, 500 or 503 (its own word that it did not post it; exponential backoff, a 429's
Retry-After honoured up to a minute). Once the card is sent, no complete answer within the
request's overall deadline (``delivery.chat[].timeout``: connect, send and answer together,
enforced by ``reporter.delivery.deadline``), a dropped connection, a reply that is not HTTP or a
gateway's 502/504 puts it in review: it may be in the channel, and it is never posted twice by
itself. Any other reply (4xx, a redirect) is a failure the next run retries. The webhook's URL
comes only from the environment variable ``webhook_env`` names; it is a secret (masked by
``reporter.security``) and is never logged, stored in the ledger or written in a file. Proxies
are read from the same environment (``https_proxy``, ``no_proxy``), redirects are not followed
and only http(s) URLs are opened.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reporter.config.labels import Labels
from reporter.config.model import CHAT_KINDS, Chat, Config
from reporter.delivery.deadline import Deadline
from reporter.delivery.mailer import SendResult
from reporter.delivery.once import ExactlyOnce, Key
from reporter.delivery.wall import wall_now
from reporter.errors import RunError
from reporter.files import write_atomic
from reporter.progress import stage
from reporter.render.context import Formatter, lcfirst
from reporter.render.digest import DIGEST_ORDER, in_digest_order
from reporter.render.html import SYMBOLS, incomplete_notes
from reporter.render.insights import takeaways, write_texts
from reporter.results import Results
from reporter.security import redact, remember_secret, remember_url

KINDS = CHAT_KINDS
RETRY_STATUS = frozenset({429, 500, 503})  # the server's own word that it did not post the card
GATEWAY_STATUS = frozenset({502, 504})  # a gateway's: it may have passed the card on
MAX_RETRY_AFTER = 60.0


def chat_key(chat: Chat) -> str:
    """The channel's name in the ledger and on the console: ``slack:SLACK_WEBHOOK_URL``."""
    return f"{chat.kind}:{chat.webhook_env}"


def chat_keys(config: Config) -> list[str]:
    """Every chat channel of the report, lower-cased, each once (as the ledger keys them)."""
    return list(dict.fromkeys(chat_key(c).lower() for c in config.delivery.chat))


# --- the card ---------------------------------------------------------------------------------


@dataclass
class Card:
    title: str
    tally: str
    off_track: list[tuple[str, str]]  # (objective, "value / target T")
    url: str | None
    link_text: str
    lines: list[str] = field(default_factory=list)  # the whole card as plain lines
    warnings: list[str] = field(default_factory=list)  # incomplete data, said before the tally
    takeaways: list[str] = field(default_factory=list)  # the digest's first three, one per event

    def text(self) -> str:
        return "\n".join(self.lines)


def build_card(config: Config, results: Results) -> Card:
    """The card's words, in the report's language, with numbers formatted as in the PDF: the
    tally off track first, the off-track objectives furthest from their target first."""
    formatter = Formatter.for_report(config.report)
    _ = formatter._
    period = formatter.period(results.period, results.period_start, results.grain)
    title = f"{Labels(config).title()} — {period}"
    counts = [(s, sum(1 for o in results.objectives if o.status == s)) for s in DIGEST_ORDER]
    tally = " · ".join(f"{SYMBOLS[s]} {n} {lcfirst(_(s))}" for s, n in counts if n)
    off_track = []
    # the off-track objectives, the furthest from its target first (the digest's order)
    for obj in in_digest_order([asdict(o) for o in results.objectives if o.status == "off_track"]):
        kpi = config.kpis.get(obj["kpi"])
        fmt = results.kpis[obj["kpi"]].format if obj["kpi"] in results.kpis else "number"
        decimals = kpi.decimals if kpi is not None else None
        value = formatter.value(obj["value"], fmt, decimals)
        target = formatter.value(obj["target"], fmt, decimals)
        off_track.append((obj["title"] or obj["id"], f"{value} / {_('target')} {target}"))
    url = config.report.url
    warnings = [f"⚠ {text}" for text in incomplete_notes(formatter, Labels(config), results)]
    lines = [title, *warnings]
    if tally:
        lines.append(tally)
    lines += [f"{SYMBOLS['off_track']} {name}: {numbers}" for name, numbers in off_track]
    labels = Labels(config, str(formatter.locale))
    if any("text" not in i for i in results.insights):  # Results straight from compute
        write_texts(results, formatter, labels)
    said = takeaways(config, results, formatter, labels)[:3]
    lines += [f"• {text}" for text in said]
    link_text = _("Open the report")
    if url:
        lines.append(f"{link_text}: {url}")
    return Card(title, tally, off_track, url, link_text, lines, warnings, said)


def _slack_escape(text: str) -> str:
    """Slack's three control characters as entities (its only escaping): a label such as
    ``<!channel>``, ``<@U123>`` or ``<https://x|y>`` reaches the channel as those characters,
    never as a mention or a disguised link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(card: Card) -> dict[str, Any]:
    """A Slack incoming webhook's message: ``text`` (notifications, old clients) and Block Kit
    blocks: a header, the tally, the off-track objectives, the takeaways, a button to the report."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": card.title[:150], "emoji": False}}
    ]
    for warning in card.warnings:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(warning)}})
    if card.tally:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(card.tally)}})
    if card.off_track:
        lines = [f"✖ *{_slack_escape(name)}*: {_slack_escape(numbers)}" for name, numbers in card.off_track]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
    if card.takeaways:
        said = "\n".join(f"• {_slack_escape(text)}" for text in card.takeaways)[:3000]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": said}})
    if card.url:
        button = {"type": "button", "text": {"type": "plain_text", "text": card.link_text}, "url": card.url}
        blocks.append({"type": "actions", "elements": [button]})
    # the message's text, shown in notifications, is mrkdwn too: escaped like the blocks
    return {"text": _slack_escape(card.text()), "blocks": blocks}


def _plain(*runs: dict[str, Any]) -> dict[str, Any]:
    """Text as Teams shows it, character for character: a RichTextBlock's TextRuns are not
    Markdown (a TextBlock's or a FactSet's text is: ``[x](https://…)`` in a label would be a
    link there)."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", **run} for run in runs]}


def teams_payload(card: Card) -> dict[str, Any]:
    """A Teams incoming webhook's message: one Adaptive Card (1.4) with the title, the tally,
    the off-track objectives, the takeaways and an Open URL action to the report; every text
    from the configuration or the data is plain text (RichTextBlock), never Markdown."""
    body: list[dict[str, Any]] = [_plain({"text": card.title, "weight": "Bolder", "size": "Large"})]
    for warning in card.warnings:
        body.append(_plain({"text": warning, "color": "Attention"}))
    if card.tally:
        body.append(_plain({"text": card.tally}))
    for name, numbers in card.off_track:
        body.append(_plain({"text": f"✖ {name}", "weight": "Bolder"}, {"text": f": {numbers}"}))
    for text in card.takeaways:
        body.append(_plain({"text": f"• {text}"}))
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if card.url:
        content["actions"] = [{"type": "Action.OpenUrl", "title": card.link_text, "url": card.url}]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None}
    return {"type": "message", "attachments": [{**attachment, "content": content}]}


PAYLOADS: dict[str, Callable[[Card], dict[str, Any]]] = {"slack": slack_payload, "teams": teams_payload}


def payload_bytes(kind: str, card: Card) -> bytes:
    return json.dumps(PAYLOADS[kind](card), ensure_ascii=False, indent=2).encode("utf-8")


# --- the webhooks -----------------------------------------------------------------------------


def webhook_urls(
    config: Config, env: Mapping[str, str] | None, only: list[str] | None = None
) -> dict[str, str]:
    """Each chat channel's webhook URL (by ``chat_key``, lower-cased), read from the environment
    before anything is sent; a RunError naming the variable when one is missing or not a URL.
    ``only``: the channels this run posts to (``--recipient``), lower-cased."""
    environ = os.environ if env is None else env
    urls: dict[str, str] = {}
    for i, chat in enumerate(config.delivery.chat):
        if only is not None and chat_key(chat).lower() not in only:
            continue
        where = f"delivery.chat[{i}].webhook_env"
        url = environ.get(chat.webhook_env, "").strip()
        if not url:
            raise RunError(
                f"environment variable {chat.webhook_env} ({where}) is not set: the {KINDS[chat.kind]} "
                "webhook's URL comes only from the environment"
            )
        remember_secret(url)  # never in a log, an alert, the ledger or a file
        remember_url(url)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise RunError(
                f"environment variable {chat.webhook_env} ({where}) does not hold an http(s) URL: "
                f"give the {KINDS[chat.kind]} incoming webhook's address (https://…)"
            )
        urls[chat_key(chat).lower()] = url
    return urls


class _Connection(http.client.HTTPConnection):
    """A plain HTTP connection under a ``Deadline``: connecting takes at most what is left of it,
    and the watchdog holds the socket from the moment it exists."""

    deadline: Deadline

    def connect(self) -> None:
        self.timeout = self.deadline.remaining()
        super().connect()  # TCP, and a proxy's CONNECT for an https URL
        self.deadline.sock = self.sock


class _TLSConnection(http.client.HTTPSConnection):
    deadline: Deadline

    def connect(self) -> None:
        self.timeout = self.deadline.remaining()
        http.client.HTTPConnection.connect(self)  # TCP, and a proxy's CONNECT
        # the handshake is bounded as a whole by the socket's timeout (not per read): what is left
        self.sock.settimeout(self.deadline.remaining())
        hostname = getattr(self, "_tunnel_host", None) or self.host
        context: ssl.SSLContext = getattr(self, "_context")  # noqa: B009  # set by HTTPSConnection
        self.sock = context.wrap_socket(self.sock, server_hostname=hostname)
        self.deadline.sock = self.sock


class Poster:
    """POSTs JSON to a webhook, exactly once: retried only while the card provably has not
    reached the server; the clock (``sleep``) is injectable. ``timeout``: the overall deadline
    of one request (connect, send, answer), however the server spreads its bytes."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        backoff: float = 2.0,
        timeout: float = 15.0,
    ):
        environ = os.environ if env is None else env
        self.proxies = {
            scheme: value
            for scheme in ("http", "https")
            if (value := environ.get(f"{scheme}_proxy") or environ.get(f"{scheme.upper()}_PROXY"))
        }
        self.no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout

    def _bypassed(self, host: str) -> bool:
        for entry in (e.strip().lower() for e in self.no_proxy.split(",")):
            if entry == "*" or (
                entry and (host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")))
            ):
                return True
        return False

    def _connection(
        self, url: str, deadline: Deadline
    ) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
        """The connection (direct, or through the environment's proxy), the request's target and
        its headers. An http URL through a proxy is asked of the proxy by its absolute URL; an
        https one through a CONNECT tunnel."""
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "", parts.port
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "reporter"}
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = None if self._bypassed(host.lower()) else self.proxies.get(parts.scheme)
        proxy_auth: dict[str, str] = {}
        if proxy is not None:
            proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if proxy_parts.username is not None:
                user = urllib.parse.unquote(proxy_parts.username)
                secret = urllib.parse.unquote(proxy_parts.password or "")
                token = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
                proxy_auth = {"Proxy-Authorization": f"Basic {token}"}
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context()
            if proxy is None:
                conn = _TLSConnection(host, port, context=context)
            else:
                conn = _TLSConnection(proxy_parts.hostname or "", proxy_parts.port, context=context)
                conn.set_tunnel(host, port, headers=proxy_auth)
        elif proxy is None:
            conn = _Connection(host, port)
        else:
            conn = _Connection(proxy_parts.hostname or "", proxy_parts.port)
            target = url
            headers |= proxy_auth
        conn.deadline = deadline
        return conn, target, headers

    def post(
        self, url: str, body: bytes, name: str, on_attempt: Callable[[int, str | None], None]
    ) -> SendResult:
        """POST ``body`` to ``url``; ``name`` (the variable's name) stands for the URL in every
        message. ``on_attempt(n, error)`` is called after each attempt (the ledger counts them).
        ``sent`` on a 2xx answer; ``review`` once the card was sent without a complete answer
        (it may be in the channel: never posted again by itself); ``failed`` on any other
        answer, or when every attempt failed before the card was sent."""
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            state, error, wait = self._once(url, body, name)
            error = redact(error)
            on_attempt(attempt, error or None)
            if state == "sent":
                return SendResult("sent", attempt, accepted=wall_now())  # its 2xx answer
            if state != "retry":
                return SendResult(state, attempt, error)
            if attempt < self.max_attempts:
                self.sleep(max(self.backoff * 2 ** (attempt - 1), wait))
        return SendResult("failed", self.max_attempts, f"{error} ({self.max_attempts} attempts)")

    def _once(self, url: str, body: bytes, name: str) -> tuple[str, str, float]:
        """One request: (sent | retry | failed | review, the error, seconds to wait before a retry)."""
        conn: http.client.HTTPConnection | None = None
        reply: http.client.HTTPResponse | None = None
        # until the connection is made (a proxy's CONNECT is read on it), its socket as it stands
        deadline = Deadline(self.timeout, lambda: conn.sock if conn is not None else None)

        def close() -> None:
            if reply is not None:
                reply.close()
            if conn is not None:
                conn.close()

        try:
            try:  # until the card's last byte is handed over, the server cannot have it: retry
                conn, target, headers = self._connection(url, deadline)
                conn.connect()
            except (OSError, ValueError, http.client.HTTPException) as exc:
                return "retry", _unreached(name, exc, deadline), 0.0
            try:
                conn.request("POST", target, body=body, headers=headers)
            except (OSError, http.client.HTTPException) as exc:
                return "retry", _cut_while_sending(name, exc, deadline), 0.0
            try:  # the card is sent: from here on, no complete answer is a card for review
                reply = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                return "review", _unanswered(name, exc, deadline), 0.0
            if deadline.expired:  # the watchdog cut the answer's headers short
                return "review", _unanswered(name, TimeoutError(), deadline), 0.0
            with contextlib.suppress(OSError, http.client.HTTPException):
                reply.read(65536)  # the status line is the answer; the body is only read to be polite
            status = reply.status
            if 200 <= status < 300:
                return "sent", "", 0.0
            said = f"the webhook ({name}) answered HTTP {status} {reply.reason}".rstrip()
            if status in GATEWAY_STATUS:
                return "review", f"{said} after the card was sent: {MAY_HAVE_IT}", 0.0
            if status in RETRY_STATUS:
                return "retry", said, _retry_after(reply.getheader("Retry-After"))
            return "failed", said, 0.0
        finally:
            deadline.finish(close)


MAY_HAVE_IT = "the channel may show it"


def _unreached(name: str, exc: BaseException, deadline: Deadline) -> str:
    """Connecting failed (DNS, refused, TLS handshake, the proxy's tunnel): nothing was sent."""
    if deadline.expired or isinstance(exc, TimeoutError):
        return f"cannot reach the webhook ({name}) within {deadline.seconds:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"cannot reach the webhook ({name}): TLS handshake failed ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"cannot reach the webhook ({name}): TLS handshake failed ({exc.reason or exc})"
    return f"cannot reach the webhook ({name}): {_detail(exc)}"


def _cut_while_sending(name: str, exc: BaseException, deadline: Deadline) -> str:
    """The connection failed before the card's last byte was handed over: the server cannot
    have it whole (a webhook acts on a complete request only)."""
    if deadline.expired or isinstance(exc, TimeoutError):
        return f"the webhook ({name}) did not take the card within {deadline.seconds:g} s"
    return f"the connection to the webhook ({name}) failed while sending the card ({_detail(exc)})"


def _unanswered(name: str, exc: BaseException, deadline: Deadline) -> str:
    """The card was sent and no complete answer came: it may be in the channel."""
    if deadline.expired or isinstance(exc, TimeoutError):
        return (
            f"the webhook ({name}) gave no complete answer within {deadline.seconds:g} s, "
            f"after the card was sent: {MAY_HAVE_IT}"
        )
    if isinstance(exc, OSError | http.client.RemoteDisconnected | http.client.IncompleteRead):
        return (
            f"the webhook ({name}) closed the connection without a complete answer ({_detail(exc)}), "
            f"after the card was sent: {MAY_HAVE_IT}"
        )
    return (
        f"the webhook ({name}) gave no valid HTTP answer ({type(exc).__name__}), "
        f"after the card was sent: {MAY_HAVE_IT}"
    )


def _detail(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _retry_after(value: str | None) -> float:
    """A Retry-After in seconds (capped), or 0 when absent or not a number of seconds."""
    try:
        return min(max(float(value or 0), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return 0.0


# --- through the ledger -----------------------------------------------------------------------


def resolve_hint(config: Config, period: str, key: str) -> str:
    """The command that settles a chat card in ``review`` (pinned in tests and docs)."""
    return (
        f"check the {KINDS.get(key.split(':')[0], 'chat')} channel, then run "
        f"'{config.command('resolve', period, key, '--sent')}' if the card is there, or '--resend' if not"
    )


def card_bodies(config: Config, results: Results) -> dict[str, bytes]:
    """Each chat kind's payload (``slack``, ``teams``), as posted and kept in ``chat-KIND.json``."""
    card = build_card(config, results)
    return {kind: payload_bytes(kind, card) for kind in dict.fromkeys(c.kind for c in config.delivery.chat)}


def post_cards(
    config: Config,
    results: Results,
    folder: Path,
    now: dt.datetime,
    *,
    ledger: Any,
    run_id: int,
    force: bool,
    reason: str | None,
    urls: Mapping[str, str],
    env: Mapping[str, str] | None,
    sleep: Callable[[float], None] = time.sleep,
    only: list[str] | None = None,
    on_claim: Callable[[], None] | None = None,
    bodies: Mapping[str, bytes] | None = None,
    root: Path | None = None,
) -> list[Any]:
    """Write each kind's payload beside the PDF (``chat-slack.json``, ``chat-teams.json``: what
    is posted, without the URL) and, with a ledger, post it to each channel that has not had it
    yet. Without a ledger (``--no-send``) nothing is posted. ``bodies``: the payloads, built
    (``card_bodies``) and written by the caller. ``root``: the output folder, whose fallback
    journal keeps an outcome the ledger could not record (``folder`` when not given)."""
    report, period = config.report.id, results.period
    if bodies is None:
        bodies = card_bodies(config, results)
        for kind, body in bodies.items():
            write_atomic(folder / f"chat-{kind}.json", body)
    if ledger is None:
        return []
    once = ExactlyOnce(
        ledger, config, root or folder, run_id, now, force=force, reason=reason, on_claim=on_claim
    )
    outcomes: list[Any] = []
    seen: set[str] = set()
    for chat in config.delivery.chat:
        key = chat_key(chat)
        if key.lower() in seen or (only is not None and key.lower() not in only):
            continue
        seen.add(key.lower())
        stage(f"posting the card to {key}")
        channel = Webhook(config, chat, urls[key.lower()], Poster(env=env, sleep=sleep, timeout=chat.timeout))

        def card(card_id: str, body: bytes = bodies[chat.kind]) -> bytes:
            return body  # the same card whatever its version: the ledger keys it

        outcomes.append(once.deliver_once(channel, Key(report, period, key), card))
    return outcomes


@dataclass
class Webhook:
    """A chat channel as a channel of ``ExactlyOnce``: the payload is the card's JSON."""

    config: Config
    chat: Chat
    url: str
    poster: Poster

    @property
    def kind(self) -> str:
        return self.chat.kind  # slack | teams

    def send(
        self, payload: bytes, key: Key, on_attempt: Callable[[int, str | None], None], *, version: int
    ) -> SendResult:
        return self.poster.post(self.url, payload, self.chat.webhook_env, on_attempt)

    def settle_hint(self, key: Key) -> str:
        return resolve_hint(self.config, key.period, key.recipient)
