"""Alerts between reports: evaluate each rule, keep its state in the ledger, and send one message
per state change, exactly once.

A rule is *firing* or *clear* (``reporter.compute.alerts`` says which). The ledger keeps, per
rule, its latest state and the state its latest message announced (``notified``, message number
``seq``). When the two differ and the rule is not snoozed, message ``seq + 1`` is taken in one
atomic statement (``Ledger.alert_announce``: of two processes, one wins) and sent to each of the
rule's addresses and chat channels by ``ExactlyOnce.deliver_once`` (``reporter.delivery.once``,
the state machine of every delivery), keyed report ``<id>/alert/<rule>``, period ``#<seq>``,
through two small channels: ``AlertEmail`` and ``AlertChat``. As alert evaluations are not runs
recorded in the ledger (``registered_runs=False``), a message found pending (a process killed
mid-send) is set to review at once (that evaluation fails for the rule, saying so) and never
sent again by itself, until a person settles it
with ``reporter resolve CONFIG N RECIPIENT --alert RULE --sent|--resend`` (``reporter.run.alerts``;
``--resend`` makes it a failed one); a failed one is retried at the next evaluation, with the same
Message-ID; one whose outcome the ledger could not record goes to the fallback journal, which the
rule's next evaluation (or ``reporter resolve``) applies first. A rule that stays firing sends nothing more;
back to clear it sends one "resolved" message. ``unusual`` is an event, not a state: it re-arms
silently the next day.

A snoozed rule (``reporter alerts snooze``) keeps being evaluated and its state recorded, but
sends nothing until the day after its date; then the state at that time is announced if it
differs from the last one announced.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from reporter.compute.alerts import Observation, evaluate
from reporter.config.labels import Labels
from reporter.config.model import AlertRule, Chat, Config, Kpi
from reporter.delivery.journal import reconcile
from reporter.delivery.ledger import Ledger
from reporter.delivery.mailer import Mailer, SendResult, add_unsubscribe
from reporter.delivery.once import ExactlyOnce, Key
from reporter.delivery.send import EmailChannel
from reporter.delivery.suppression import Suppression, skip_note, suppressed
from reporter.errors import RunError
from reporter.periods import Period
from reporter.render.context import Formatter, translations
from reporter.render.html import render_text
from reporter.render.texts import action_context

if TYPE_CHECKING:
    from reporter.delivery.chat import Poster

LOG = logging.getLogger("reporter")


@dataclass
class RuleOutcome:
    rule: str
    state: str  # firing | clear | error
    detail: str
    sent: list[str]  # addresses this evaluation sent to
    note: str = ""
    skipped: list[str] = field(default_factory=list)  # "address: why not sent" (unsubscribed)


def alert_key(config: Config, rule: str) -> str:
    """The ``report`` under which the ledger keeps a rule's messages."""
    return f"{config.report.id}/alert/{rule}"


def unsubscribed(config: Config, rule: AlertRule, ledger: Ledger) -> dict[str, Suppression]:
    """The rule's addresses that unsubscribed from the report (``reporter unsubscribe``): its
    alerts are not sent to them either."""
    held = suppressed(ledger, config.report.id)
    mine = [email.utils.parseaddr(address)[1].lower() for address in rule.to]
    return {rcpt: held[rcpt] for rcpt in mine if rcpt in held}


def without(rule: AlertRule, held: Mapping[str, Suppression]) -> AlertRule:
    """``rule`` without the addresses of ``held``."""
    if not held:
        return rule
    kept = [a for a in rule.to if email.utils.parseaddr(a)[1].lower() not in held]
    return rule.model_copy(update={"to": kept})


def run_alerts(
    config: Config,
    now: dt.datetime,
    *,
    root: Path,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    database: tuple[Any, Any] | None = None,
    ledger: Ledger | None = None,
) -> list[RuleOutcome]:
    """Evaluate every rule at ``now`` and send what changed. A rule that fails (its evaluation
    or its sending) is recorded with its error and never stops the others. ``database``: an open
    (connection, infos) to evaluate on (the sources are read once per call otherwise)."""
    from reporter.compute.database import close_remote, open_database

    shown = config.resolve(config.report.output_dir).absolute() if config.report.output_dir else None
    if config.run_output is None and root.absolute() != shown:  # the commands it prints name it
        config = config.model_copy(update={"run_output": root.absolute()})
    if config.alerts is None or not config.alerts.rules:
        return []
    opened = None
    if database is None:
        opened = open_database(config)
        database = opened
    own = ledger is None
    if own and config.delivery.ledger is None:
        root.mkdir(parents=True, exist_ok=True)
    ledger = ledger or Ledger(config.ledger_url(root))
    try:
        observations = evaluate(config, now, *database)
        outcomes = []
        for rule, found in zip(config.alerts.rules, observations, strict=True):
            try:
                outcomes.append(_one(config, rule, found, now, root, ledger, env, sleep))
            except Exception as exc:  # one rule's failure is its own
                LOG.error("alert rule %s failed: %s", rule.rule_id, exc)
                outcomes.append(
                    RuleOutcome(rule.rule_id, "error", "error", [], f"{type(exc).__name__}: {exc}")
                )
        return outcomes
    finally:
        if own:
            ledger.close()
        if opened is not None:
            opened[0].close()
            close_remote(opened[1])


def _one(
    config: Config,
    rule: AlertRule,
    found: Observation,
    now: dt.datetime,
    root: Path,
    ledger: Ledger,
    env: Mapping[str, str] | None,
    sleep: Callable[[float], None],
) -> RuleOutcome:
    report, name = config.report.id, rule.rule_id
    today = now.astimezone(ZoneInfo(config.report.timezone)).date()
    now = now.astimezone(dt.UTC)  # the ledger keeps UTC times (SQLite drops an offset)
    reconcile(ledger, root, alert_key(config, name), now)  # what a lost ledger could not record
    before = ledger.alert_rule(report, name)
    if found.error is not None:
        state = str(before["state"]) if before else "clear"  # an error changes nothing
        ledger.alert_observe(report, name, state, "error", now, found.error)
        return RuleOutcome(name, "error", "error", [], found.error)
    state = "firing" if found.firing else "clear"
    ledger.alert_observe(report, name, state, found.state, now)
    row = ledger.alert_rule(report, name)
    assert row is not None
    snoozed = row["snoozed_until"] is not None and row["snoozed_until"] >= today
    if snoozed:
        return RuleOutcome(name, state, found.state, [], f"snoozed until {row['snoozed_until']}")
    seq = int(row["seq"])
    fresh = state != row["notified"]  # a message to announce now (its skipped addresses are said)
    if state != row["notified"]:
        if rule.condition == "unusual" and state == "clear":
            ledger.alert_quiet(report, name, seq, state)  # re-armed: nothing to say
            return RuleOutcome(name, state, found.state, [])
        if ledger.alert_announce(report, name, seq, state, now):
            seq += 1
        row = ledger.alert_rule(report, name)
        assert row is not None
        seq = int(row["seq"])
    if seq == 0:
        return RuleOutcome(name, state, found.state, [])
    held = unsubscribed(config, rule, ledger)
    skipped = [f"{rcpt}: {skip_note(config, h)}" for rcpt, h in held.items()] if fresh else []
    rule = without(rule, held)
    sent, failed = _deliver_once(
        config, rule, found, str(row["notified"]), seq, now, root, ledger, env, sleep
    )
    if failed:
        return RuleOutcome(name, "error", found.state, sent, "; ".join(failed), skipped)
    return RuleOutcome(name, state, found.state, sent, skipped=skipped)


def _deliver_once(
    config: Config,
    rule: AlertRule,
    found: Observation,
    announced: str,
    seq: int,
    now: dt.datetime,
    root: Path,
    ledger: Ledger,
    env: Mapping[str, str] | None,
    sleep: Callable[[float], None],
) -> tuple[list[str], list[str]]:
    """Send message ``seq`` of ``rule`` to each of its addresses and chat channels, each through
    ``ExactlyOnce.deliver_once`` (``reporter.delivery.once``): one already sent or in review is
    left alone, one found pending (a process stopped mid-send) is set to review and never sent
    again, a failed one is retried. Returns the recipients sent to now, and what failed."""
    once = ExactlyOnce(ledger, config, root, 0, now, registered_runs=False)
    key, period = alert_key(config, rule.rule_id), f"#{seq}"
    sent: list[str] = []
    failed: list[str] = []
    for rcpt, channel, payload in _channels(config, rule, found, announced, seq, now, root, env, sleep):
        done = once.deliver_once(channel, Key(key, period, rcpt), payload)
        if done.state == "sent":
            sent.append(rcpt)
        elif done.claimed or done.flagged:  # tried now and not sent, or found pending and set to review
            failed.append(f"not sent to {rcpt}: {done.error}")
            LOG.error("alert %s to %s: %s", rule.rule_id, rcpt, done.error)
    return sent, failed


def alert_of(key: Key) -> tuple[str, int]:
    """The rule and the message number of an alert's ledger ``key`` (``<id>/alert/<rule>``, ``#n``)."""
    return key.report.rsplit("/alert/", 1)[-1], int(key.period.lstrip("#"))


def resolve_command(config: Config, key: Key, how: str) -> str:
    """The command that settles the alert message ``key`` in review (``how``: --sent or --resend),
    to run as printed from any folder: ``reporter resolve`` as for a report's delivery, the
    message named by its number and ``--alert RULE``."""
    rule, number = alert_of(key)
    return config.command("resolve", str(number), key.recipient, "--alert", rule, how)


def alert_settle_hint(config: Config, key: Key, where: str) -> str:
    """What a person does about the alert message ``key`` in review (pinned in tests and docs)."""
    return (
        f"check {where}, then run '{resolve_command(config, key, '--sent')}' if it arrived, or "
        "'--resend' if it did not (the rule's next evaluation sends it again)"
    )


def settle_hint_of(config: Config, key: Key, channel: str) -> str:
    """``alert_settle_hint`` for a message sent through ``channel`` (the ledger's word: smtp,
    outbox, slack, teams)."""
    from reporter.delivery.chat import KINDS

    where = f"the {KINDS[channel]} channel" if channel in KINDS else f"{key.recipient}'s mailbox"
    return alert_settle_hint(config, key, where)


@dataclass
class AlertEmail(EmailChannel):
    """An alert's e-mail: the report's e-mail channel (``send.EmailChannel``), settled by
    ``reporter resolve ... --alert RULE``."""

    def settle_hint(self, key: Key) -> str:
        return alert_settle_hint(self.config, key, f"{key.recipient}'s mailbox")


@dataclass(frozen=True)
class Post:
    """An alert's chat post: the webhook's URL (read from the environment) and the card."""

    url: str
    body: bytes


@dataclass
class AlertChat:
    """An alert's chat post as a channel of ``ExactlyOnce``: the payload is a ``Post``."""

    config: Config
    chat: Chat
    poster: Poster

    @property
    def kind(self) -> str:
        return self.chat.kind  # slack | teams

    def send(
        self, payload: Post, key: Key, on_attempt: Callable[[int, str | None], None], *, version: int
    ) -> SendResult:
        return self.poster.post(payload.url, payload.body, self.chat.webhook_env, on_attempt)

    def settle_hint(self, key: Key) -> str:
        from reporter.delivery.chat import KINDS

        return alert_settle_hint(self.config, key, f"the {KINDS.get(self.kind, 'chat')} channel")


def rule_recipients(config: Config, rule: AlertRule) -> list[str]:
    """The rule's recipients as the ledger keys them: its addresses, then its chat channels
    (``slack:SLACK_WEBHOOK_URL``), lower-cased, each once."""
    from reporter.delivery.chat import chat_key

    found = [email.utils.parseaddr(address)[1].lower() for address in rule.to]
    found += [chat_key(chat).lower() for chat in config.delivery.chat if chat.kind in rule.chat]
    return list(dict.fromkeys(found))


def _channels(
    config: Config,
    rule: AlertRule,
    found: Observation,
    announced: str,
    seq: int,
    now: dt.datetime,
    root: Path,
    env: Mapping[str, str] | None,
    sleep: Callable[[float], None],
) -> list[tuple[str, AlertEmail | AlertChat, Callable[[str], Any]]]:
    """(recipient as the ledger keys it, channel, payload(message_id)) for each address and each
    chat channel of the rule. A payload is built only when it is sent (a chat channel's webhook
    URL is read from the environment then)."""
    from reporter.delivery.chat import Card, Poster, chat_key, payload_bytes, webhook_urls

    email_cfg = config.delivery.email
    mailer = AlertEmail(
        config,
        Mailer(
            email_cfg.smtp if email_cfg else None,
            root / "outbox" / config.report.id / "alerts" / rule.rule_id / str(seq),
            env=env,
            sleep=sleep,
            base_dir=config.base_dir,
            connections=config.connections,
        ),
    )
    out: list[tuple[str, AlertEmail | AlertChat, Callable[[str], Any]]] = []
    seen: set[str] = set()
    for address in rule.to:
        rcpt = email.utils.parseaddr(address)[1].lower()
        if rcpt in seen:
            continue
        seen.add(rcpt)

        def mail(msg_id: str, address: str = address) -> EmailMessage:
            message = build_message(config, rule, found, announced, now, msg_id, root=root)
            message["To"] = address
            if email_cfg is not None:
                add_unsubscribe(message, config, email.utils.parseaddr(address)[1].lower())
            return message

        out.append((rcpt, mailer, mail))

    def card(kind: str) -> bytes:
        words = alert_text(config, rule, found, announced, root=root)
        said = [*words.facts, *(f"{words.plan_head} {p}" for p in words.plan)]
        card = Card(
            words.subject, "", [], config.report.url, "", lines=[words.subject, *said], takeaways=said
        )
        card.link_text = translations(Formatter.for_report(config.report).locale.language).gettext(
            "Open the report"
        )
        return payload_bytes(kind, card)

    for chat in config.delivery.chat:
        target = chat_key(chat).lower()
        if chat.kind not in rule.chat or target in seen:
            continue
        seen.add(target)

        def post(msg_id: str, kind: str = chat.kind, target: str = target) -> Post:
            return Post(webhook_urls(config, env, [target])[target], card(kind))

        channel = AlertChat(config, chat, Poster(env=env, sleep=sleep, timeout=chat.timeout))
        out.append((target, channel, post))
    return out


# -- the message ------------------------------------------------------------------------------


def build_message(
    config: Config,
    rule: AlertRule,
    found: Observation,
    announced: str,
    now: dt.datetime,
    msg_id: str,
    *,
    test: bool = False,
    root: Path | None = None,
) -> EmailMessage:
    """The alert in the report's language: what changed, the value and target to date, the pace
    and the objective's action plan (plain text, and the same as HTML for phones)."""
    words = alert_text(config, rule, found, announced, test=test, root=root)
    email_cfg = config.delivery.email
    msg = EmailMessage()
    msg["Subject"] = words.subject
    msg["From"] = email_cfg.from_ if email_cfg else "reporter@localhost"
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(words.text())
    msg.add_alternative(words.html(), subtype="html")
    return msg


def snooze_command(config: Config, rule: str, root: Path | None) -> str:
    """The command that snoozes ``rule``, to run as printed from any folder."""
    import shlex

    words = ["reporter", "alerts", "snooze", rule, "--until", "YYYY-MM-DD"]
    words += ["--config", shlex.quote(str(config.file.absolute()))]
    if root is not None:
        words += ["--output", shlex.quote(str(root.absolute()))]
    return " ".join(words)


@dataclass
class AlertWords:
    """An alert message's words in the report's language, for its text and its HTML part."""

    subject: str
    lang: str
    heading: str  # the report: company — title
    firing: bool
    test_note: str
    headline: str
    facts: list[str]
    plan_title: str
    plan: list[str]
    footer: str
    plan_head: str = ""  # plan_title with its colon, as the language writes it ("Plan d'action :")

    def text(self) -> str:
        lines = [self.test_note, ""] if self.test_note else []
        lines += [self.headline, "", *self.facts]
        if self.plan:
            lines += ["", self.plan_head or self.plan_title + ":", *(f"- {line}" for line in self.plan)]
        lines += ["", self.footer]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        from html import escape

        colour = "#b42318" if self.firing else "#1f7a3a"
        test = (
            '<p style="margin:0 0 10px 0;font-size:14px;color:#9a6700;font-weight:bold;">'
            f"{escape(self.test_note)}</p>"
            if self.test_note
            else ""
        )
        facts = "".join(
            f'<p style="margin:0 0 8px 0;font-size:15px;line-height:1.4;">{escape(f)}</p>' for f in self.facts
        )
        plan = ""
        if self.plan:
            items = "".join(f'<li style="margin:0 0 6px 0;">{escape(p)}</li>' for p in self.plan)
            plan = (
                f'<p style="margin:14px 0 6px 0;font-size:15px;font-weight:bold;color:#1f4e8c;">'
                f"{escape(self.plan_title)}</p>"
                f'<ul style="margin:0;padding-left:20px;font-size:15px;line-height:1.4;">{items}</ul>'
            )
        return (
            f'<!DOCTYPE html><html lang="{escape(self.lang)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(self.subject)}</title></head>"
            '<body style="margin:0;padding:0;background:#f2f4f7;font-family:Arial,Helvetica,sans-serif;'
            'color:#1d2433;">'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
            '<tr><td align="center">'
            '<table role="presentation" width="640" cellpadding="0" cellspacing="0" border="0" '
            'style="width:100%;max-width:640px;background:#ffffff;">'
            '<tr><td style="background:#1f4e8c;padding:14px 20px;">'
            '<p style="margin:0;font-size:13px;color:#d6e2f3;">'
            f"{escape(self.heading)}</p></td></tr>"
            f'<tr><td style="padding:16px 20px 8px 16px;border-left:4px solid {colour};">{test}'
            f'<p style="margin:0 0 12px 0;font-size:19px;font-weight:bold;color:{colour};">'
            f"{escape(self.headline)}</p>"
            f"{facts}{plan}</td></tr>"
            '<tr><td style="padding:14px 20px 18px 20px;font-size:12px;color:#5b6b7f;'
            'overflow-wrap:anywhere;">'
            f"{escape(self.footer)}</td></tr>"
            "</table></td></tr></table></body></html>"
        )


def alert_text(
    config: Config,
    rule: AlertRule,
    found: Observation,
    announced: str,
    *,
    test: bool = False,
    root: Path | None = None,
) -> AlertWords:
    """The words of the message announcing ``announced`` (firing or clear)."""
    fmt = Formatter.for_report(config.report)
    catalog = translations(fmt.locale.language)
    _, n_ = catalog.gettext, catalog.ngettext
    names = Labels(config)
    kpi = config.kpis[found.kpi]

    def value(v: float | None) -> str:
        return fmt.value(v, kpi.format, kpi.decimals)

    what = names.objective(found.objective) if found.objective else names.kpi(found.kpi)
    firing = announced == "firing"
    headline = _headline(_, rule, what, value, firing)
    subject = f"{names.title()} — {headline}"
    if test:
        subject = _("[TEST] %(subject)s") % {"subject": subject}
    facts = []
    start = fmt.date(found.period_start, "medium")
    if found.cumulative:  # the value is the year's to date, from the fiscal year's first day
        grain = config.report.grain
        first = Period.parse(found.period, grain).fiscal_year_start(config.report.fiscal_year_start)
        start = fmt.date(first.isoformat(), "medium")
    day = fmt.date(found.day, "medium")
    if rule.condition == "unusual":
        facts.append(
            _("Value on %(day)s: %(value)s (usual: %(median)s).")
            % {"day": day, "value": value(found.value), "median": value(found.median)}
        )
    else:
        facts.append(
            _("Value from %(start)s to %(day)s: %(value)s.")
            % {"start": start, "day": day, "value": value(found.value)}
        )
        if found.threshold is not None:
            facts.append(_("Threshold: %(limit)s.") % {"limit": value(found.threshold)})
        if found.target is not None:
            if found.cumulative and found.earlier_target and found.period_target is not None:
                # the year's earlier periods count whole, this one pro rata (a running total)
                parts = {
                    "target": value(found.target),
                    "earlier": value(found.earlier_target),
                    "elapsed": found.elapsed,
                    "days": found.days,
                    "goal": value(found.period_target - found.earlier_target),
                }
                facts.append(
                    _(
                        "Target for the year to date: %(target)s (%(earlier)s for the year's earlier "
                        "periods, plus %(elapsed)s of %(days)s days of this period's %(goal)s)."
                    )
                    % parts
                    if found.additive and found.elapsed < found.days
                    else _(
                        "Target for the year to date: %(target)s (%(earlier)s for the year's earlier "
                        "periods, plus this period's %(goal)s)."
                    )
                    % parts
                )
            elif found.period_target is not None and found.period_target != found.target:
                facts.append(
                    _("Target to date: %(target)s (%(elapsed)s of %(days)s days of the period's %(goal)s).")
                    % {
                        "target": value(found.target),
                        "elapsed": found.elapsed,
                        "days": found.days,
                        "goal": value(found.period_target),
                    }
                )
            else:
                facts.append(_("Target: %(target)s.") % {"target": value(found.target)})
    if found.coarse is not None:  # right after the value it explains
        facts.insert(
            1,
            (
                _(
                    "%(kpi)s reads data with one row a month: it is judged on the whole of %(period)s, "
                    "the latest period all its data covers."
                )
                if found.coarse == "monthly"
                else _(
                    "%(kpi)s reads data with one row a week: it is judged on the whole of %(period)s, "
                    "the latest period all its data covers."
                )
            )
            % {
                "kpi": names.kpi(found.kpi),
                "period": fmt.period(found.period, found.period_start, config.report.grain),
            },
        )
    if found.projected is not None and found.period_target is not None:
        facts.append(
            _(
                "At this pace, %(kpi)s reaches %(projected)s by the end of the period, "
                "for a target of %(goal)s."
            )
            % {
                "kpi": names.kpi(found.kpi),
                "projected": value(found.projected),
                "goal": value(found.period_target),
            }
        )
    else:
        pace = _to_date_meaning(_, n_, fmt, kpi, names.kpi(found.kpi), found)
        if pace:
            facts.append(pace)
    return AlertWords(
        subject=subject,
        lang=fmt.locale.language,
        heading=f"{names.company()} — {names.title()}" if names.company() else names.title(),
        firing=firing,
        test_note=_("This is a test message of the alert rule %(rule)s: nothing has changed.")
        % {"rule": rule.rule_id}
        if test
        else "",
        headline=headline[:1].upper() + headline[1:] + ".",
        facts=facts,
        plan_title=_("Action plan"),
        plan_head=_("%(label)s:") % {"label": _("Action plan")},
        plan=_plan(config, found, names) if firing else [],
        footer=_("Rule %(rule)s. To pause it: %(command)s")
        % {"rule": rule.rule_id, "command": snooze_command(config, rule.rule_id, root)},
    )


def _to_date_meaning(
    _: Callable[[str], str],
    n_: Callable[[str, str, int], str],
    fmt: Formatter,
    kpi: Kpi,
    label: str,
    found: Observation,
) -> str:
    """What the period to date means for an objective's target when no pace is projected (an
    additive KPI's pace is said by "At this pace"): for a KPI that is no running total (a ratio,
    an average, a level) that its value to date is no forecast; for a cumulative objective on a
    running total, what is still needed (or still allowed, direction down) by the period's end,
    a day, against the day's average so far this period. Empty when the period is over, or
    for a rule on a KPI without objective."""
    goal, done, left = found.period_target, found.value, found.days - found.elapsed
    if found.objective is None or found.coarse is not None or left <= 0 or goal is None or done is None:
        return ""
    days = n_("%(num)d day", "%(num)d days", left) % {"num": left}
    if not found.additive:
        return _(
            "%(kpi)s is not a total that grows day by day, so its value to date is no forecast: "
            "it is judged as it stands and, with %(left)s left in the period, can still move either way."
        ) % {"kpi": label, "left": days}
    if not found.cumulative or found.period_value is None:
        return ""

    def per_day(v: float) -> str:  # a day's share: one decimal more than the KPI's whole numbers
        decimals = 1 if kpi.format == "integer" and kpi.decimals is None else kpi.decimals
        return fmt.value(v, kpi.format, decimals)

    words = {
        "kpi": label,
        "goal": fmt.value(goal, kpi.format, kpi.decimals),
        "left": days,
        "pace": per_day(found.period_value / found.elapsed),
    }
    gap = goal - done
    if kpi.direction == "down":
        if gap < 0:
            return _(
                "%(kpi)s is already %(over)s over its year-to-date target of %(goal)s "
                "for the end of the period."
            ) % {**words, "over": fmt.value(-gap, kpi.format, kpi.decimals)}
        return _(
            "To stay within its year-to-date target of %(goal)s by the end of the period, %(kpi)s can "
            "add at most %(room)s in %(left)s: %(rate)s a day, against %(pace)s a day so far this period."
        ) % {**words, "room": fmt.value(gap, kpi.format, kpi.decimals), "rate": per_day(gap / left)}
    if gap <= 0:
        return (
            _("%(kpi)s has already reached %(goal)s, its year-to-date target for the end of the period.")
            % words
        )
    return _(
        "To reach its year-to-date target of %(goal)s by the end of the period, %(kpi)s needs "
        "%(needed)s more in %(left)s: %(rate)s a day, against %(pace)s a day so far this period."
    ) % {**words, "needed": fmt.value(gap, kpi.format, kpi.decimals), "rate": per_day(gap / left)}


def _headline(
    _: Callable[[str], str], rule: AlertRule, what: str, value: Callable[[float | None], str], firing: bool
) -> str:
    condition = rule.condition
    if not firing:
        return {
            "off_track": _("%(what)s is no longer off track"),
            "at_risk": _("%(what)s is back on track"),
            "pacing_off": _("%(what)s is back on pace"),
            "above": _("%(what)s is back at or below %(limit)s"),
            "below": _("%(what)s is back at or above %(limit)s"),
        }.get(condition, _("%(what)s is back to normal")) % {"what": what, "limit": _limit(rule, value)}
    return {
        "off_track": _("%(what)s is off track"),
        "at_risk": _("%(what)s is at risk"),
        "pacing_off": _("%(what)s is off pace"),
        "unusual": _("%(what)s is unusual"),
        "above": _("%(what)s is above %(limit)s"),
        "below": _("%(what)s is below %(limit)s"),
    }[condition] % {"what": what, "limit": _limit(rule, value)}


def _limit(rule: AlertRule, value: Callable[[float | None], str]) -> str:
    when = rule.when
    if isinstance(when, str):
        return ""
    return value(when.above if when.above is not None else when.below)


def _plan(config: Config, found: Observation, names: Labels) -> list[str]:
    """The objective's actions for its status to date (and those for always), rendered."""
    obj = next((o for o in config.objectives if o.id == found.objective), None)
    if obj is None:
        return []
    out = []
    current = found.status or found.state  # a threshold rule: the objective's own status
    for i, action in enumerate(obj.actions):
        if action.when not in (current, "always"):
            continue
        text = render_text(
            names.text(action.do) or "", action_context(names, found.period), f"action {i + 1}"
        )
        owner = names.text(action.owner) or names.text(obj.owner) or ""
        out.append(f"{text} — {owner}" if owner else text)
    return out


def send_test(
    config: Config, rule_id: str | None, now: dt.datetime, *, root: Path, env: Mapping[str, str] | None = None
) -> list[tuple[str, str, str | None]]:
    """``reporter alerts test``: one message marked TEST per rule (or the one named), built from
    the rules' evaluation now, sent to their addresses; nothing is recorded and no state moves.
    An address that unsubscribed from the report is skipped. Returns (rule, address, None) for
    each message sent, (rule, address, why) for each address skipped."""
    from reporter.compute.database import close_remote, open_database

    assert config.alerts is not None
    rules = [r for r in config.alerts.rules if rule_id is None or r.rule_id == rule_id]
    con, infos = open_database(config)
    try:
        observations = {o.rule: o for o in evaluate(config, now, con, infos)}
    finally:
        con.close()
        close_remote(infos)
    email_cfg = config.delivery.email
    held: dict[str, Suppression] = {}
    url = config.ledger_url(root)
    if config.delivery.ledger is not None or (root / "ledger.sqlite").is_file():  # none: nobody left
        with Ledger(url) as ledger:
            held = suppressed(ledger, config.report.id)
    sent: list[tuple[str, str, str | None]] = []
    for rule in rules:
        found = observations[rule.rule_id]
        mailer = Mailer(  # without SMTP: one file per rule and address, none overwriting another
            email_cfg.smtp if email_cfg else None,
            root / "outbox" / config.report.id / "alerts-test" / rule.rule_id,
            env=env,
            max_attempts=2,
            base_dir=config.base_dir,
            connections=config.connections,
        )
        for address in rule.to:
            rcpt = email.utils.parseaddr(address)[1]
            if rcpt.lower() in held:
                sent.append((rule.rule_id, rcpt, skip_note(config, held[rcpt.lower()])))
                continue
            msg = build_message(
                config,
                rule,
                found,
                "firing",
                now,
                email.utils.make_msgid(domain="reporter.invalid"),
                test=True,
                root=root,
            )
            msg["To"] = address
            if email_cfg is not None:
                add_unsubscribe(msg, config, rcpt)
            result = mailer.send(msg, rcpt, lambda n, error: None)
            if result.state != "sent":
                raise RunError(
                    f"the test message of rule {rule.rule_id} to {rcpt} was not sent: {result.error}"
                )
            sent.append((rule.rule_id, rcpt, None))
    return sent
