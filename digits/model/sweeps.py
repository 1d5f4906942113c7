"""DIGITS 6's sweeps on New Model: a list of values in Base learning rate or Batch size, e.g. "[0.01, 0.02]", makes
one model per combination. Each combination is checked as a whole form before any job is made.

Flask-free and torch-free: the view reads the request and makes the jobs; this module only expands and checks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from digits.errors import FieldErrors
from digits.model.forms import FIELD_LABELS, ModelForm

# The fields DIGITS 6 sweeps, in the order it names them in each job's name (the first varies fastest).
SWEPT_FIELDS = ("learning_rate", "batch_size")
MAX_SWEEP_JOBS = 64
_SWEPT_SETTING = {"learning_rate": "learning_rate", "batch_size": "batch_size"}


@dataclass
class Combination:
    """One model of a sweep: the whole form's values, the checked form, and the values swept to (by field)."""

    values: dict[str, str]
    form: ModelForm
    swept: dict[str, Any]

    def name(self, base: str, named: tuple[str, ...]) -> str:
        """DIGITS' name for the job: the model name, then " learning_rate:0.01 batch_size:8" for each field the
        sweep lists several values of."""
        extra = ""
        for field in named:
            value = self.swept[field]
            extra += f" {field}:{value:d}" if isinstance(value, int) else f" {field}:{value}"
        return base + extra


def sweep_lists(values: Mapping[str, str], errors: FieldErrors) -> dict[str, list[str]]:
    """The swept fields' lists, by field: a value in brackets ("[0.01, 0.02]", as DIGITS reads it) or with commas
    ("0.01, 0.02") is a list; a plain value is a list of one. Malformed lists are reported in `errors`."""
    lists: dict[str, list[str]] = {}
    for field in SWEPT_FIELDS:
        raw = str(values.get(field) or "").strip()
        bracketed = raw.startswith("[") or raw.endswith("]")
        if not bracketed and "," not in raw:
            continue
        if bracketed and not (raw.startswith("[") and raw.endswith("]")):
            errors.setdefault(field, []).append(f"A sweep is a list in brackets, like [0.01, 0.02] (got {raw!r}).")
            continue
        inner = raw[1:-1] if bracketed else raw
        items = [item.strip() for item in inner.split(",")]
        if not inner.strip() or any(not item for item in items):
            errors.setdefault(field, []).append(
                f"A sweep lists values separated by commas, like [0.01, 0.02], none of them empty (got {raw!r})."
            )
            continue
        repeated = sorted({item for item in items if items.count(item) > 1})
        if repeated:
            errors.setdefault(field, []).append(f"The sweep lists {', '.join(repeated)} more than once.")
            continue
        lists[field] = items
    return lists


def expand(
    values: Mapping[str, str], check: Callable[[dict[str, str]], tuple[ModelForm | None, Mapping[str, list[str]]]]
) -> tuple[list[Combination], tuple[str, ...], FieldErrors]:
    """Every combination of the swept lists, each checked by `check` (read_model_form bound to the workspace).

    Returns (combinations, the fields named in job names, errors); with any error, no combination. A plain form
    (no lists) is one combination with nothing swept.
    """
    errors = FieldErrors(FIELD_LABELS)
    lists = sweep_lists(values, errors)
    if errors:
        return [], (), errors
    count = 1
    for items in lists.values():
        count *= len(items)
    if count > MAX_SWEEP_JOBS:
        sizes = " x ".join(f"{len(items)} {FIELD_LABELS[f]}" for f, items in lists.items())
        for field in lists:
            errors.setdefault(field, []).append(
                f"A sweep makes at most {MAX_SWEEP_JOBS} models; this one would make {count} ({sizes})."
            )
        return [], (), errors
    fields = tuple(f for f in SWEPT_FIELDS if f in lists)
    # DIGITS' order: the first field (learning rate) varies fastest.
    grid = itertools.product(*(lists[f] for f in reversed(fields)))
    combos: list[Combination] = []
    for picked in grid:
        chosen = dict(zip(reversed(fields), picked, strict=True))
        combo_values = {**values, **chosen}
        form, problems = check(combo_values)
        for field, messages in problems.items():
            for message in messages:
                text = f"{chosen[field]}: {message}" if field in chosen else message
                if text not in errors.get(field, []):
                    errors.setdefault(field, []).append(text)
        if form is not None:
            swept = {f: getattr(form.settings, _SWEPT_SETTING[f]) for f in fields}
            combos.append(Combination(combo_values, form, swept))
    if errors:
        return [], (), errors
    named = tuple(f for f in fields if len(lists[f]) > 1)
    return combos, named, errors
