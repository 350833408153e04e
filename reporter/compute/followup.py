"""The life of an objective's actions, from its status period by period and the owners' check-ins.

An action with an ``id`` is *opened* in the first period whose status its ``when`` matches, and
then stays open, period after period, until a check-in marks it ``done`` or ``dropped``, or the
objective is back on track: a later period whose status is ``on_track`` and whose check-in says
nothing of the action closes it as ``not_needed`` (the status that called for it is gone, and
nobody said it is still under way; a check-in marking it ``open`` in that period keeps it
open). Closed, it is shown in the period that closed it, then no more; it opens again when its
``when`` newly matches (the status left it and came back). An action for ``always``
recurs: each period opens it afresh, and only that period's check-in speaks of it. A check-in
may also mark an action ``open`` by hand. Its ``age`` is the number of periods since the one
that opened it (0: opened this period); its due date is counted from the end of that period,
and an open action whose due date is before the end of the reported period is ``overdue``.

The life is followed over the report's 12 periods (the reported one and the 11 before it).
An action without an id has no life: it is shown while its ``when`` matches, as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from reporter.config.checkins import Checkins
from reporter.config.labels import Labels
from reporter.config.model import Action, Objective
from reporter.periods import Period
from reporter.results import ActionResult, ActionState, ObjectiveResult, Status


def follow_up(
    obj: Objective,
    result: ObjectiveResult,
    periods: Sequence[Period],
    statuses: Mapping[str, Status],
    checkins: Checkins,
    names: Labels,
) -> None:
    """Set ``result``'s note and actions (in place) for the last of ``periods`` (oldest first)."""
    period = periods[-1]
    entry = checkins.objective(period.label, obj.id)
    result.note = (names.text(entry.note) or "") if entry is not None else ""
    actions: list[ActionResult] = []
    for action in obj.actions:
        if action.id is None:
            if action.when in (result.status, "always"):
                actions.append(_plain(action, obj, period, names))
            continue
        found = _life(action, obj, periods, statuses, checkins, names)
        if found is not None:
            actions.append(found)
    result.actions = actions


def _plain(action: Action, obj: Objective, period: Period, names: Labels) -> ActionResult:
    return ActionResult(
        when=action.when,
        do=names.text(action.do) or "",
        owner=names.text(action.owner) or names.text(obj.owner) or "",
        due=_due(action, period),
    )


def _due(action: Action, opened: Period) -> str | None:
    if action.due_in_days is None:
        return None
    return (opened.end + dt.timedelta(days=action.due_in_days)).isoformat()


def _life(
    action: Action,
    obj: Objective,
    periods: Sequence[Period],
    statuses: Mapping[str, Status],
    checkins: Checkins,
    names: Labels,
) -> ActionResult | None:
    if action.when == "always":  # a recurring action: each period opens it afresh
        periods = periods[-1:]
    state: ActionState | None = None  # None: never opened in the periods followed
    opened: Period | None = None
    closed_in: str | None = None
    comment = ""
    matched_before = False
    for p in periods:
        matched = action.when == "always" or statuses.get(p.label) == action.when
        if matched and state != "open" and (state is None or not matched_before):
            state, opened, comment = "open", p, ""
        entry = checkins.objective(p.label, obj.id)
        told = entry.actions.get(str(action.id)) if entry is not None else None
        if (
            state == "open"
            and told is None
            and opened is not None
            and opened.label != p.label
            and action.when != "on_track"
            and statuses.get(p.label) == "on_track"
        ):  # back on track for a whole period, and no check-in keeps it open: no longer needed
            state, closed_in, comment = "not_needed", p.label, ""
        if told is not None:
            if told.state == "open" and state != "open":
                state, opened = "open", p
            elif told.state in ("done", "dropped"):
                state, closed_in = told.state, p.label
                opened = opened or p
            comment = told.comment
        matched_before = matched
    period = periods[-1]
    if state is None or opened is None:
        return None
    if state != "open" and closed_in != period.label:
        return None
    result = _plain(action, obj, opened, names)
    return dataclasses.replace(
        result,
        id=action.id,
        state=state,
        comment=comment,
        since=opened.label,
        age=_between(opened, period),
        overdue=state == "open" and result.due is not None and result.due < period.end.isoformat(),
    )


def _between(first: Period, last: Period) -> int:
    n = 0
    p = first
    while p.start < last.start:
        p = p.shift(1)
        n += 1
    return n
