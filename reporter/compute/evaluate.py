"""Targets, attainment and status (docs/numbers.md), as pure functions of numbers."""

from __future__ import annotations

import math

from reporter.results import Status


def change(value: float | None, base: float | None) -> float | None:
    """(value − base) / |base|; null when either is null or base is 0."""
    if value is None or base is None or base == 0:
        return None
    result = (value - base) / abs(base)
    return result if math.isfinite(result) else None


def change_points(value: float | None, base: float | None) -> float | None:
    """A rate's change in points, as a fraction: value − base (0.189 − 0.131 = 0.058, +5.8
    points); null when either is null."""
    if value is None or base is None:
        return None
    result = value - base
    return result if math.isfinite(result) else None


def attainment(value: float | None, target: float | None, direction: str) -> float | None:
    """1 + s × (value − target) / |target|, s = +1 up, −1 down; null for a null or 0 target."""
    if value is None or target is None or target == 0:
        return None
    sign = -1.0 if direction == "down" else 1.0
    result = 1.0 + sign * (value - target) / abs(target)
    return result if math.isfinite(result) else None


def status(
    value: float | None,
    target: float | None,
    direction: str,
    on_track: float = 1.0,
    at_risk: float = 0.9,
) -> Status:
    if value is None:
        return "no_data"
    if target is None:
        return "no_target"
    if target == 0:
        right_side = value >= 0 if direction != "down" else value <= 0
        return "on_track" if right_side else "off_track"
    att = attainment(value, target, direction)
    if att is None:  # the ratio overflowed (a target near 0): judge by the side of the target
        better = value >= target if direction != "down" else value <= target
        return "on_track" if better else "off_track"
    if att >= on_track:
        return "on_track"
    if att >= at_risk:
        return "at_risk"
    return "off_track"


def period_target(
    kind: str,
    amount: float | dict[str, float],
    label: str,
    previous: float | None,
    prior_year: float | None,
) -> float | None:
    """One period's target for a target of ``kind``."""
    if kind == "value":
        assert isinstance(amount, float | int)
        return float(amount)
    if kind == "by_period":
        assert isinstance(amount, dict)
        found = amount.get(label)
        return None if found is None else float(found)
    assert isinstance(amount, float | int)
    base = prior_year if kind == "change_vs_prior_year" else previous
    return None if base is None else base * (1.0 + float(amount))


def cumulative_target(targets: list[float | None]) -> float | None:
    """The sum of the year's per-period targets; null when any period has none."""
    if not targets or any(t is None for t in targets):
        return None
    return float(sum(t for t in targets if t is not None))
