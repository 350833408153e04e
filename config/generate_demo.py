"""Generate the demo data of "Hexagone Conseil SAS" for config/example.yaml.

Hexagone Conseil is a (fictional) French B2B software and services SME based in Lyon: it sells
software licences and projects to new customers, then services and renewals to its installed
base. Four salespeople (Alice Martin, Bruno Petit, Chloé Durand, David Leroy) turn marketing
leads into customers. This script writes the eight files that ``example.yaml`` reads, covering
exactly 36 months of local (Europe/Paris) dates, 2023-11-01 to 2026-10-31:

    data/web_traffic.csv      daily web analytics per channel, a French Excel export
                              (``;`` separator, decimal comma, latin-1, dd/mm/yyyy, "n/a" cells)
    data/crm_leads.csv        one row per lead with the funnel stages it reached
    data/email_campaigns.csv  one row per newsletter send
    data/marketing_spend.csv  spend and budget per campaign per month (dated the 1st)
    data/orders.csv           orders, timestamped in UTC with an offset
    data/bank_balance.csv     weekly (Monday) and month-end balance snapshots, a few out of order
    data/nps.csv              NPS survey answers (0-10)
    data/social.csv           daily followers / reach / engagements per social network

The story told by the numbers (the demo period is 2026-10):
  * steady growth (about +18 % a year), a deep August dip and a strong September/October
    rebound; Salon Lyon Tech every March, Salon Paris Expo every October;
  * October 2026: revenue about +20 % on October 2025, traffic and NPS good, the win rate a
    little under plan (at risk), but the Paris Expo fair went over budget and only one of its
    leads has turned into an order yet, so the cost per new customer (CAC) and the budget
    consumption miss their targets (off track); the campaign portfolio says "stop" for Salon
    Paris Expo, "improve" for LinkedIn Ads and "keep" for Google Ads, the newsletter and the
    webinars. Orders without a campaign (most repeat business) have an empty campaign;
  * the CRM is a snapshot taken on 2026-10-31: leads of the last weeks still have open quotes
    (stage "quote", the pipeline) or are not quoted yet, so the latest cohort looks younger;
  * quirks a real export has: accented channel names in latin-1, empty cells and "n/a",
    orders whose UTC timestamp falls on the previous day/month (2026-09-30T22:30:00+00:00 is
    2026-10-01 00:30 in Paris), bank rows not in date order, first orders of customers who
    were already customers before the data starts (new_customer = 0).

Deterministic: one ``random.Random(20261)`` seeds one generator per file, so running it twice
writes byte-identical files. Standard library only. Run: ``python config/generate_demo.py``
(it writes into the ``data/`` folder next to itself, whatever the current directory).
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import math
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

SEED = 20261
HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
PARIS = ZoneInfo("Europe/Paris")
UTC = dt.UTC

START = dt.date(2023, 11, 1)
END = dt.date(2026, 10, 31)
WARMUP = dt.date(2023, 9, 1)  # leads of Sep-Oct 2023 feed the first orders but are not written

# Month-of-year activity: holiday dip in August, rebound in September/October.
SEASON = {
    1: 0.95,
    2: 1.00,
    3: 1.06,
    4: 1.02,
    5: 0.96,
    6: 1.04,
    7: 0.86,
    8: 0.55,
    9: 1.10,
    10: 1.15,
    11: 1.08,
    12: 0.86,
}
WEEKDAY = (1.10, 1.12, 1.08, 1.05, 0.92, 0.42, 0.36)  # Monday .. Sunday
GROWTH = 1.18  # per year

SALESPEOPLE = ("Alice Martin", "Bruno Petit", "Chloé Durand", "David Leroy")
SALES_WEIGHT = (0.28, 0.26, 0.25, 0.21)
SALES_SKILL = {"Alice Martin": 1.18, "Bruno Petit": 1.00, "Chloé Durand": 1.06, "David Leroy": 0.80}

# Fairs: (campaign, first day, days, leads per day)
EVENTS = (
    ("Salon Lyon Tech", dt.date(2024, 3, 19), 3, 19),
    ("Salon Paris Expo", dt.date(2024, 10, 15), 3, 22),
    ("Salon Lyon Tech", dt.date(2025, 3, 18), 3, 20),
    ("Salon Paris Expo", dt.date(2025, 10, 14), 3, 24),
    ("Salon Lyon Tech", dt.date(2026, 3, 17), 3, 21),
    ("Salon Paris Expo", dt.date(2026, 10, 13), 3, 26),
)


# --------------------------------------------------------------------------- helpers
def days(start: dt.date = START, end: dt.date = END) -> Iterable[dt.date]:
    d = start
    while d <= end:
        yield d
        d += dt.timedelta(days=1)


def months() -> list[tuple[int, int]]:
    out = []
    y, m = START.year, START.month
    while (y, m) <= (END.year, END.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_end(y: int, m: int) -> dt.date:
    return dt.date(y, m, calendar.monthrange(y, m)[1])


def trend(d: dt.date) -> float:
    return GROWTH ** ((d - START).days / 365.25)


def level(d: dt.date) -> float:
    """Trend times season for a day (daily weights come on top)."""
    return trend(d) * SEASON[d.month]


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def pick(rng: random.Random, items: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(items, weights=weights, k=1)[0]


def money(x: float) -> str:
    return f"{x:.2f}"


def business_day(d: dt.date) -> dt.date:
    """The same day, or the next Monday when it falls on a weekend."""
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


def utc_text(local: dt.datetime) -> str:
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def write(
    name: str,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    lineterminator: str = "\n",
) -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    n = 0
    with (DATA / name).open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator=lineterminator)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


# --------------------------------------------------------------------------- web traffic
CHANNELS = (
    # canal, share of sessions, new-visitor share, returning share, bounce rate, pages/session,
    # mean duration (s)
    ("Référencement naturel", 0.37, 0.66, 0.22, 0.47, 2.9, 128.0),
    ("Publicité", 0.18, 0.78, 0.09, 0.61, 1.9, 71.0),
    ("Réseaux sociaux", 0.10, 0.72, 0.14, 0.58, 2.1, 84.0),
    ("E-mailing", 0.08, 0.21, 0.66, 0.38, 3.4, 156.0),
    ("Direct", 0.21, 0.34, 0.55, 0.41, 3.2, 149.0),
    ("Sites référents", 0.06, 0.61, 0.24, 0.44, 2.7, 117.0),
)


def fr_decimal(x: float) -> str:
    return f"{x:.1f}".replace(".", ",")


def gen_web(rng: random.Random) -> int:
    rows = []
    for d in days():
        fair = any(start <= d < start + dt.timedelta(days=n) for _, start, n, _ in EVENTS)
        total = 1020.0 * level(d) * WEEKDAY[d.weekday()] * rng.uniform(0.9, 1.1)
        if fair:
            total *= 1.25
        for canal, share, new, ret, bounce, pages, duration in CHANNELS:
            s = max(1, round(total * share * rng.uniform(0.85, 1.15)))
            nouveaux = round(s * new * rng.uniform(0.93, 1.07))
            recurrents = round(s * ret * rng.uniform(0.93, 1.07))
            rebonds: object = min(s, round(s * bounce * rng.uniform(0.9, 1.1)))
            pages_vues = round(s * pages * rng.uniform(0.9, 1.1))
            duree: object = fr_decimal(duration * rng.uniform(0.85, 1.15))
            r = rng.random()
            if r < 0.015:
                duree = "n/a"  # the analytics tool had no timing that day
            elif r < 0.025:
                duree = ""
            if rng.random() < 0.006:
                rebonds = ""
            rows.append((d.strftime("%d/%m/%Y"), canal, s, nouveaux, recurrents, rebonds, pages_vues, duree))
    return write(
        "web_traffic.csv",
        (
            "date",
            "canal",
            "sessions",
            "nouveaux_visiteurs",
            "visiteurs_recurrents",
            "rebonds",
            "pages_vues",
            "duree_moyenne",
        ),
        rows,
        delimiter=";",
        encoding="latin-1",
        lineterminator="\r\n",
    )


# --------------------------------------------------------------------------- CRM leads
ORIGINS = ("Site web", "Publicité", "LinkedIn", "E-mailing", "Salon", "Recommandation")
ORIGIN_WEIGHT = (0.35, 0.16, 0.13, 0.12, 0.04, 0.20)
# probability of reaching MQL, then SQL given MQL, and a win multiplier
ORIGIN_FUNNEL = {
    "Site web": (0.55, 0.45, 1.00),
    "Publicité": (0.42, 0.38, 0.85),
    "LinkedIn": (0.50, 0.42, 0.95),
    "E-mailing": (0.58, 0.45, 1.00),
    "Salon": (0.47, 0.36, 0.80),
    "Recommandation": (0.80, 0.65, 1.30),
}


def lead_campaign(rng: random.Random, origin: str, d: dt.date) -> str:
    r = rng.random()
    if origin == "Site web":
        return "Google Ads" if r < 0.22 else "Webinaires" if r < 0.34 else ""
    if origin == "Publicité":
        return "Google Ads" if r < 0.68 else "LinkedIn Ads"
    if origin == "LinkedIn":
        return "LinkedIn Ads" if r < 0.55 else ""
    if origin == "E-mailing":
        return "Newsletter" if r < 0.72 else "Webinaires"
    return ""


class Lead:
    __slots__ = (
        "amount_quote",
        "amount_won",
        "campaign",
        "created",
        "flags",
        "order_day",
        "origin",
        "salesperson",
        "stage",
    )

    def __init__(self, created: dt.date, origin: str, salesperson: str, campaign: str):
        self.created = created
        self.origin = origin
        self.salesperson = salesperson
        self.campaign = campaign
        self.stage = "lead"
        self.flags = [0, 0, 0, 0, 0]  # mql, sql, quote, won, lost
        self.amount_quote: float | None = None
        self.amount_won: float | None = None
        self.order_day: dt.date | None = None


def progress(rng: random.Random, lead: Lead) -> None:
    """Walk a lead down the funnel.

    Flags are the outcome the sales team has recorded in the CRM. A quote whose decision
    would come after END is, more often than not, already known (verbal agreement or refusal),
    else it stays open: that is the pipeline. A won deal is booked as an order on its decision
    day; decisions due in August often slip to September (customers are on holiday)."""
    years = max(0.0, (lead.created - START).days / 365.25)
    better = 1.0 + 0.02 * years  # the sales team slowly gets better at closing
    p_mql, p_sql, win_mult = ORIGIN_FUNNEL[lead.origin]
    skill = SALES_SKILL[lead.salesperson]
    if rng.random() >= p_mql:
        return
    lead.flags[0], lead.stage = 1, "mql"
    if rng.random() >= p_sql:
        return
    lead.flags[1], lead.stage = 1, "sql"
    quote_day = lead.created + dt.timedelta(days=rng.randint(2, 10))
    decision = lead.created + dt.timedelta(days=rng.randint(8, 40))
    if decision.month == 8 and rng.random() < 0.55:
        decision = dt.date(decision.year, 9, 1) + dt.timedelta(days=rng.randint(0, 14))
    decision = business_day(decision)
    if rng.random() >= 0.60 * (0.9 + 0.1 * skill):
        if rng.random() < 0.6 and (decision <= END or rng.random() >= 0.4):
            lead.flags[4], lead.stage = 1, "lost"  # disqualified before any quote
        return
    if quote_day > END:
        return  # still at SQL: the quote is not written yet
    lead.flags[2], lead.stage = 1, "quote"
    lead.amount_quote = round(min(60000.0, max(1500.0, rng.lognormvariate(math.log(7600), 0.55))), -1)
    won = rng.random() < 0.40 * skill * win_mult * better
    if decision > END and rng.random() < 0.4:
        return  # open quote: the pipeline
    if won:
        lead.flags[3], lead.stage = 1, "won"
        lead.amount_won = round(lead.amount_quote * rng.uniform(0.86, 1.0), 2)
        if decision <= END:
            lead.order_day = decision
    else:
        lead.flags[4], lead.stage = 1, "lost"


def gen_leads(rng: random.Random) -> list[Lead]:
    leads: list[Lead] = []
    for d in days(WARMUP, END):
        lam = 8.2 * level(d) * WEEKDAY[d.weekday()]
        n = poisson(rng, lam)
        if d == month_end(d.year, d.month) and n == 0:
            n = 1  # the CRM export always reaches the month's last day
        for _ in range(n):
            origin = pick(rng, ORIGINS, ORIGIN_WEIGHT)
            person = pick(rng, SALESPEOPLE, SALES_WEIGHT)
            leads.append(Lead(d, origin, person, lead_campaign(rng, origin, d)))
    for campaign, first, n_days, per_day in EVENTS:
        for k in range(n_days):
            for _ in range(poisson(rng, per_day)):
                # badges are keyed in during the fair and the few days after it
                created = first + dt.timedelta(days=k + rng.choice((0, 0, 0, 1, 2, 4, 6)))
                person = pick(rng, SALESPEOPLE, SALES_WEIGHT)
                leads.append(Lead(created, "Salon", person, campaign))
    leads.sort(key=lambda lead: lead.created)  # stable: same-day leads keep creation order
    for lead in leads:
        progress(rng, lead)
    # One deal of the October 2026 Paris fair was signed within two weeks: the only euros
    # that fair has brought back so far.
    for lead in leads:
        if lead.campaign == "Salon Paris Expo" and lead.created.year == 2026 and lead.stage == "won":
            lead.order_day = business_day(lead.created + dt.timedelta(days=14))
            break
    return leads


def write_leads(leads: list[Lead]) -> int:
    rows = []
    for i, lead in enumerate((lead for lead in leads if lead.created >= START), 1):
        mql, sql, quote, won, lost = lead.flags
        rows.append(
            (
                f"L{i:06d}",
                lead.created.isoformat(),
                lead.origin,
                lead.salesperson,
                lead.stage,
                mql,
                sql,
                quote,
                won,
                lost,
                money(lead.amount_quote) if lead.amount_quote is not None else "",
                money(lead.amount_won) if lead.amount_won is not None else "",
                lead.campaign,
            )
        )
    return write(
        "crm_leads.csv",
        (
            "lead_id",
            "created_at",
            "origin",
            "salesperson",
            "stage",
            "mql",
            "sql",
            "quote",
            "won",
            "lost",
            "quote_amount",
            "won_amount",
            "campaign",
        ),
        rows,
    )


# --------------------------------------------------------------------------- orders
REVENUE_PLAN = 260000.0  # monthly sales plan at START for an average month (EUR)
EXISTING_CUSTOMERS = 260  # customers acquired before the data starts (C0001..C0260)
# Self-service renewals just after local midnight: their UTC timestamp is on the previous day.
EDGE_ORDERS = {
    (2023, 11): dt.datetime(2023, 11, 1, 0, 15, tzinfo=PARIS),  # 2023-10-31T23:15:00+00:00
    (2026, 10): dt.datetime(2026, 10, 1, 0, 30, tzinfo=PARIS),  # 2026-09-30T22:30:00+00:00
}


def business_time(rng: random.Random, d: dt.date) -> dt.datetime:
    minute = rng.randint(8 * 60 + 30, 18 * 60 + 30)
    return dt.datetime(d.year, d.month, d.day, minute // 60, minute % 60, rng.randint(0, 59), tzinfo=PARIS)


def gen_orders(rng: random.Random, leads: list[Lead]) -> tuple[int, dict[tuple[int, int], list[str]]]:
    """Orders: first orders of won leads, then repeat orders of the installed base.

    Returns the number of rows and, per month, the customers active that month (for NPS)."""
    # (local datetime, customer, salesperson, campaign, amount, margin, new)
    orders: list[tuple[dt.datetime, str, str, str, float, float, int]] = []
    owner: dict[str, str] = {}
    for i in range(1, EXISTING_CUSTOMERS + 1):
        owner[f"C{i:04d}"] = pick(rng, SALESPEOPLE, SALES_WEIGHT)
    firsts = sorted(
        (
            (business_time(rng, lead.order_day), lead)
            for lead in leads
            if lead.order_day and lead.order_day >= START
        ),
        key=lambda item: item[0],
    )
    first_at: dict[str, dt.datetime] = {}
    for k, (when, lead) in enumerate(firsts, EXISTING_CUSTOMERS + 1):
        cid = f"C{k:04d}"
        owner[cid] = lead.salesperson
        first_at[cid] = when
        amount = lead.amount_won or 0.0
        margin = amount * rng.uniform(0.54, 0.70)
        orders.append((when, cid, lead.salesperson, lead.campaign, amount, margin, 1))

    churned: list[str] = []
    active_by_month: dict[tuple[int, int], list[str]] = {}
    campaigns = ("Newsletter", "Webinaires", "Google Ads", "")
    campaign_weight = (0.15, 0.06, 0.04, 0.75)
    for y, m in months():
        first_day = dt.date(y, m, 1)
        last_day = month_end(y, m)
        start_local = dt.datetime(y, m, 1, tzinfo=PARIS)
        base = [c for c in owner if (c not in first_at or first_at[c] < start_local)]
        base = [c for c in base if c not in churned]
        for c in base:
            if rng.random() < 0.012:
                churned.append(c)
        active = [c for c in base if c not in churned]
        active_by_month[(y, m)] = active + [
            c for c in first_at if start_local <= first_at[c] and first_at[c].date() <= last_day
        ]
        # Repeat business fills the monthly sales plan left after the new deals (with a floor):
        # the installed base is what keeps revenue steady from one year to the next.
        plan = REVENUE_PLAN * level(first_day) * rng.uniform(0.97, 1.03)
        new_revenue = sum(o[4] for o in orders if o[6] == 1 and (o[0].year, o[0].month) == (y, m))
        wanted = max(0.35 * plan, plan - new_revenue)
        buyers = rng.sample(active, len(active))
        business_days = [d for d in days(first_day, last_day) if d.weekday() < 5]
        booked = 0.0
        n = 0
        while booked < wanted and n < len(buyers):
            cid = buyers[n]
            for repeat in range(2 if rng.random() < 0.07 else 1):
                if rng.random() < 0.05:
                    # self-service renewal in the web shop: any day, any hour, also at night
                    d = first_day + dt.timedelta(days=rng.randrange((last_day - first_day).days + 1))
                    hour = rng.choice((0, 0, 1, 7, 12, 20, 22, 23))
                    when = dt.datetime(d.year, d.month, d.day, hour, rng.randint(0, 59), 0, tzinfo=PARIS)
                else:
                    when = business_time(rng, rng.choice(business_days))
                if n == 0 and repeat == 0 and (y, m) in EDGE_ORDERS:
                    when = EDGE_ORDERS[(y, m)]
                amount = round(min(20000.0, max(250.0, rng.lognormvariate(math.log(2600), 0.5))), 2)
                margin = amount * rng.uniform(0.36, 0.50)
                campaign = pick(rng, campaigns, campaign_weight)
                orders.append((when, cid, owner[cid], campaign, amount, margin, 0))
                booked += amount
            n += 1
        # the sales ledger always has an order on the month's last day (local)
        if not any(o[0].date() == last_day for o in orders):
            cid = rng.choice(active)
            hour = 23 if (y, m) == (END.year, END.month) else 16
            when = dt.datetime(last_day.year, last_day.month, last_day.day, hour, 40, tzinfo=PARIS)
            amount = round(rng.uniform(600, 3200), 2)
            orders.append((when, cid, owner[cid], "", amount, amount * 0.42, 0))

    orders.sort(key=lambda o: (o[0], o[1]))
    rows = []
    for i, (when, cid, person, campaign, amount, margin, new) in enumerate(orders, 1):
        rows.append((f"O{i:06d}", utc_text(when), cid, person, campaign, money(amount), money(margin), new))
    n = write(
        "orders.csv",
        (
            "order_id",
            "ordered_at",
            "customer_id",
            "salesperson",
            "campaign",
            "amount",
            "margin",
            "new_customer",
        ),
        rows,
    )
    return n, active_by_month


# --------------------------------------------------------------------------- marketing spend
# campaign, channel, monthly budget per calendar year
RECURRING = (
    ("Google Ads", "SEA", {2023: 10000, 2024: 10500, 2025: 12000, 2026: 13500}),
    ("LinkedIn Ads", "Social ads", {2023: 6500, 2024: 7000, 2025: 8500, 2026: 8000}),
    ("Newsletter", "E-mailing", {2023: 1800, 2024: 1800, 2025: 2000, 2026: 2200}),
    ("Webinaires", "Événementiel digital", {2023: 2500, 2024: 2500, 2025: 3000, 2026: 3200}),
)
FAIRS = {  # (campaign, year, month): (budget, spend)
    ("Salon Lyon Tech", 2024, 3): (16000, 15420.00),
    ("Salon Paris Expo", 2024, 10): (24000, 24880.50),
    ("Salon Lyon Tech", 2025, 3): (17000, 16790.00),
    ("Salon Paris Expo", 2025, 10): (26000, 27150.00),
    ("Salon Lyon Tech", 2026, 3): (18000, 18350.00),
    ("Salon Paris Expo", 2026, 10): (28000, 34460.00),  # stand upgrade + extra hostesses
}


def gen_spend(rng: random.Random) -> int:
    rows = []
    for y, m in months():
        first = dt.date(y, m, 1)
        for campaign, channel, budgets in RECURRING:
            budget = float(budgets[y])
            if m == 8 and campaign in ("Google Ads", "LinkedIn Ads"):
                budget *= 0.5  # ads throttled during the August break
            amount = budget * rng.uniform(0.90, 1.05)
            rows.append((first.isoformat(), campaign, channel, money(amount), money(budget)))
        for (campaign, fy, fm), (budget, amount) in FAIRS.items():
            if (fy, fm) == (y, m):
                rows.append((first.isoformat(), campaign, "Salons", money(amount), money(budget)))
    return write("marketing_spend.csv", ("date", "campaign", "channel", "amount", "budget"), rows)


# --------------------------------------------------------------------------- e-mail campaigns
MOIS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def gen_emails(rng: random.Random) -> int:
    rows = []
    for y, m in months():
        first = dt.date(y, m, 1)
        last = month_end(y, m)
        audience = 3900 * trend(first)
        extra = rng.randint(1, 3)  # 1-3 sends plus the monthly recap = 2-4 sends
        tuesdays = [d for d in days(first, last - dt.timedelta(days=1)) if d.weekday() in (1, 3)]
        sends = sorted(rng.sample(tuesdays, extra))
        names = ["Lettre d'information", "Invitation webinaire", "Cas client", "Offre partenaire"]
        plan = [(d, f"{names[i]} — {MOIS[m - 1]} {y}", 10) for i, d in enumerate(sends)]
        plan.append((last, f"Récapitulatif du mois — {MOIS[m - 1]} {y}", 18))
        for d, name, hour in plan:
            sent = round(audience * rng.uniform(0.96, 1.02))
            delivered = round(sent * rng.uniform(0.965, 0.988))
            opened = round(delivered * rng.uniform(0.24, 0.33) * (0.85 if m == 8 else 1.0))
            clicked = round(delivered * rng.uniform(0.028, 0.052))
            unsubscribed = round(delivered * rng.uniform(0.0015, 0.0045))
            spam = round(delivered * rng.uniform(0.0, 0.0009))
            when = dt.datetime(d.year, d.month, d.day, hour, 0, tzinfo=PARIS)
            rows.append(
                (
                    when.strftime("%Y-%m-%d %H:%M:%S"),
                    name,
                    sent,
                    delivered,
                    opened,
                    clicked,
                    unsubscribed,
                    spam,
                )
            )
    return write(
        "email_campaigns.csv",
        ("sent_at", "campaign", "sent", "delivered", "opened", "clicked", "unsubscribed", "spam"),
        rows,
    )


# --------------------------------------------------------------------------- bank balance
def gen_bank(rng: random.Random) -> int:
    dates = [d for d in days() if d.weekday() == 0]
    dates += [START] + [month_end(y, m) for y, m in months()]  # opening balance, month ends
    dates = sorted(set(dates))
    rows = []
    noise = 0.0
    for d in dates:
        t = (d - START).days
        noise = 0.6 * noise + rng.gauss(0, 16000)
        seasonal = 38000 * math.sin(2 * math.pi * (d.timetuple().tm_yday - 150) / 365.25)
        payroll = -52000 if d.day >= 28 or d.day <= 2 else 0
        balance = 415000 + 245 * t + seasonal + payroll + noise
        rows.append((d.isoformat(), "Compte courant", money(balance)))
    # An export that is not sorted: swap a few neighbours, and put the last month-end snapshot
    # before the Monday of that week, so that "last" has to sort by date.
    for i in sorted(rng.sample(range(5, len(rows) - 10), 4)):
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    rows[-1], rows[-2] = rows[-2], rows[-1]
    return write("bank_balance.csv", ("date", "account", "balance"), rows)


# --------------------------------------------------------------------------- NPS
def gen_nps(rng: random.Random, active_by_month: dict[tuple[int, int], list[str]]) -> int:
    rows = []
    for y, m in months():
        first = dt.date(y, m, 1)
        last = month_end(y, m)
        years = (first - START).days / 365.25
        promoters = 0.50 + 0.035 * years
        detractors = 0.165 - 0.02 * years
        n = rng.randint(30, 44) + round(6 * years)
        pool = active_by_month[(y, m)]
        open_days = [d for d in days(first, last) if d.weekday() < 5] or [last]
        answered = sorted([rng.choice(open_days) for _ in range(n - 1)] + [last])
        for d in answered:
            r = rng.random()
            if r < promoters:
                score = 10 if rng.random() < 0.42 else 9
            elif r < 1 - detractors:
                score = 8 if rng.random() < 0.55 else 7
            else:
                score = rng.choice((2, 3, 4, 5, 5, 6, 6, 6))
            rows.append((d.isoformat(), rng.choice(pool), score))
    return write("nps.csv", ("answered_at", "respondent", "score"), rows)


# --------------------------------------------------------------------------- social networks
NETWORKS = (
    # network, followers at start, daily net gain, reach per follower, engagement rate
    ("LinkedIn", 4200.0, 4.6, 0.45, 0.042),
    ("Instagram", 1150.0, 1.0, 0.30, 0.055),
    ("Facebook", 2300.0, 0.35, 0.16, 0.021),
    ("X", 1800.0, -0.12, 0.22, 0.012),
)


def gen_social(rng: random.Random) -> int:
    rows = []
    followers = {name: start for name, start, *_ in NETWORKS}
    for d in days():
        for name, _start, gain, reach_rate, engage in NETWORKS:
            followers[name] = max(0.0, followers[name] + gain * SEASON[d.month] * rng.uniform(0.2, 1.8))
            f = round(followers[name])
            reach = round(f * reach_rate * WEEKDAY[d.weekday()] * SEASON[d.month] * rng.uniform(0.6, 1.5))
            engagements = round(reach * engage * rng.uniform(0.7, 1.3))
            rows.append((d.isoformat(), name, f, reach, engagements))
    return write("social.csv", ("date", "network", "followers", "reach", "engagements"), rows)


# --------------------------------------------------------------------------- main
def main() -> None:
    master = random.Random(SEED)
    names = ("web", "crm", "orders", "spend", "emails", "bank", "nps", "social")
    rngs = {name: random.Random(master.getrandbits(64)) for name in names}
    counts = {}
    counts["web_traffic.csv"] = gen_web(rngs["web"])
    leads = gen_leads(rngs["crm"])
    counts["crm_leads.csv"] = write_leads(leads)
    counts["orders.csv"], active = gen_orders(rngs["orders"], leads)
    counts["marketing_spend.csv"] = gen_spend(rngs["spend"])
    counts["email_campaigns.csv"] = gen_emails(rngs["emails"])
    counts["bank_balance.csv"] = gen_bank(rngs["bank"])
    counts["nps.csv"] = gen_nps(rngs["nps"], active)
    counts["social.csv"] = gen_social(rngs["social"])
    for name, n in counts.items():
        print(f"{DATA / name}: {n} rows")


if __name__ == "__main__":
    main()
