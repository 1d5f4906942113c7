"""The charts' query (?points=N&from=EPOCH&to=EPOCH) read and checked, for every route that serves a chart's points
(a model's, an external run's, a comparison's). Flask-free: a view hands it request.args."""

from __future__ import annotations

import math
from collections.abc import Mapping

from digits.errors import FormErrors
from digits.model.info import CHART_POINTS, CHART_POINTS_RANGE

CHART_ARGS = {"from": "From (epoch)", "to": "To (epoch)", "points": "Points"}


def chart_args(args: Mapping[str, str]) -> tuple[int, float | None, float | None]:
    """(points, from, to) of a chart's query, checked: FormErrors names each bad parameter by its label."""
    errors: dict[str, list[str]] = {}
    low, high = CHART_POINTS_RANGE
    points = CHART_POINTS
    raw = args.get("points")
    if raw is not None:
        try:
            points = int(raw)
            if not low <= points <= high:
                errors["points"] = [f"must be from {low} to {high}"]
        except ValueError:
            errors["points"] = ["must be a whole number"]
    bounds = {}
    for name in ("from", "to"):
        raw = args.get(name)
        if raw is None or raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            errors[name] = ["must be a number (an epoch)"]
        bounds[name] = value
    x0, x1 = bounds.get("from"), bounds.get("to")
    if not errors and x0 is not None and x1 is not None and not x1 > x0:
        errors["to"] = ["must be greater than From"]
    if errors:
        raise FormErrors(errors, CHART_ARGS)
    return points, x0, x1
