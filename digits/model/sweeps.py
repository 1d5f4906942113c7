"""Sweeps on New Model. DIGITS 6's: a list of values in Base learning rate or Batch size, e.g. "[0.01, 0.02]", makes
one model per combination. Ours beside it, random search: `sweep_count` combinations drawn from ranges (a learning
rate log-uniform between two values, batch sizes from a list or a range), reproducible by `sweep_seed`. Either way
each combination is checked as a whole form before any job is made, and at most MAX_SWEEP_JOBS are made.

Flask-free and torch-free: the view reads the request and makes the jobs; this module only expands and checks.
"""

from __future__ import annotations

import itertools
import math
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from digits.errors import FieldErrors
from digits.forms import FormReader
from digits.model.forms import FIELD_LABELS, MAX_SEED, ModelForm

# The fields DIGITS 6 sweeps, in the order it names them in each job's name (the first varies fastest).
SWEPT_FIELDS = ("learning_rate", "batch_size")
MAX_SWEEP_JOBS = 64
_SWEPT_SETTING = {"learning_rate": "learning_rate", "batch_size": "batch_size"}
# Random search's fields (New Model's "Random search"); none of them is kept in a model's own form.
RANDOM_FIELDS = ("sweep_random", "sweep_count", "sweep_seed", "sweep_lr_min", "sweep_lr_max", "sweep_batch_sizes")
LR_DIGITS = 3  # significant digits a drawn learning rate keeps: 0.00347, not 0.0034712893
MAX_BATCH = 65536


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


Check = Callable[[dict[str, str]], tuple[ModelForm | None, Mapping[str, list[str]]]]


@dataclass
class Plan:
    """What a submitted New Model form makes: its combinations (one for a plain form), the swept fields named in
    job names, how the values were chosen (`search`, kept with each job of a sweep), and the errors (then no
    combination)."""

    combos: list[Combination]
    named: tuple[str, ...]
    errors: FieldErrors
    search: dict[str, Any]


def plan(values: Mapping[str, str], check: Check) -> Plan:
    """The models a New Model form asks for: random search when `sweep_random` is on, else DIGITS' lists (or one
    plain model). Every combination is checked by `check` before this returns; CPU-bound for a big sweep, so the
    web process calls it off the event loop."""
    reader = FormReader(values, FIELD_LABELS)
    if reader.boolean("sweep_random"):
        return expand_random(values, check)
    combos, named, errors = expand({k: v for k, v in values.items() if k not in RANDOM_FIELDS}, check)
    return Plan(combos, named, errors, {"method": "grid"} if named else {})


@dataclass
class RandomSearch:
    """Random search's settings, read from the form: how many combinations, the seed, and what is drawn."""

    count: int
    seed: int
    lr_range: tuple[float, float] | None
    batch_sizes: list[int] | None  # draw one of these
    batch_range: tuple[int, int] | None  # or a whole number in this range (both ends included)

    def as_dict(self) -> dict[str, Any]:
        batch = None
        if self.batch_sizes is not None:
            batch = {"choices": self.batch_sizes}
        elif self.batch_range is not None:
            batch = {"range": list(self.batch_range)}
        return {
            "method": "random",
            "count": self.count,
            "seed": self.seed,
            "learning_rate": {"log_uniform": list(self.lr_range)} if self.lr_range else None,
            "batch_size": batch,
        }

    def space(self) -> int | None:
        """How many distinct combinations can be drawn, when that is small enough to matter (no learning rate
        range); None otherwise."""
        if self.lr_range is not None:
            return None
        if self.batch_sizes is not None:
            return len(self.batch_sizes)
        if self.batch_range is not None:
            return self.batch_range[1] - self.batch_range[0] + 1
        return 0

    def draw(self) -> list[dict[str, Any]]:
        """`count` distinct combinations, by field (learning_rate, batch_size), in the order drawn; the same seed
        draws the same ones. Fewer when the ranges hold fewer distinct ones (space() says how many)."""
        rng = random.Random(self.seed)
        drawn: list[dict[str, Any]] = []
        seen: set[tuple] = set()
        for _ in range(self.count * 200):
            if len(drawn) == self.count:
                break
            combo: dict[str, Any] = {}
            if self.lr_range is not None:
                lo, hi = (math.log(v) for v in self.lr_range)
                combo["learning_rate"] = float(f"{math.exp(lo + rng.random() * (hi - lo)):.{LR_DIGITS}g}")
            if self.batch_sizes is not None:
                combo["batch_size"] = rng.choice(self.batch_sizes)
            elif self.batch_range is not None:
                combo["batch_size"] = rng.randint(*self.batch_range)
            key = tuple(sorted(combo.items()))
            if key not in seen:
                seen.add(key)
                drawn.append(combo)
        return drawn


def _batch_choices(r: FormReader, raw: str) -> tuple[list[int] | None, tuple[int, int] | None]:
    """Batch sizes to draw from: "16, 32, 64" (a list, brackets allowed) or "8-64" (every whole number between)."""
    field = "sweep_batch_sizes"
    text = raw.strip().removeprefix("[").removesuffix("]").strip()
    if "-" in text and "," not in text:
        low, _, high = (part.strip() for part in text.partition("-"))
        try:
            a, b = int(low), int(high)
        except ValueError:
            r.error(field, f"A range is two whole numbers like 8-64 (got {raw!r}).")
            return None, None
        if not 1 <= a < b <= MAX_BATCH:
            r.error(
                field, f"A range goes from a smaller to a larger batch size, between 1 and {MAX_BATCH} (got {raw!r})."
            )
            return None, None
        return None, (a, b)
    items = [item.strip() for item in text.split(",")]
    if not text or any(not item for item in items):
        r.error(
            field, f"List batch sizes separated by commas, like 16, 32, 64, or give a range like 8-64 (got {raw!r})."
        )
        return None, None
    sizes: list[int] = []
    for item in items:
        try:
            size = int(item)
        except ValueError:
            r.error(field, f"{item}: expected a whole number.")
            return None, None
        if not 1 <= size <= MAX_BATCH:
            r.error(field, f"{item}: a batch size is from 1 to {MAX_BATCH}.")
            return None, None
        if size in sizes:
            r.error(field, f"The list holds {item} more than once.")
            return None, None
        sizes.append(size)
    return sizes, None


def read_random_search(values: Mapping[str, str]) -> tuple[RandomSearch | None, FieldErrors]:
    """Random search's fields checked, each error under its field (named by its label); a seed left empty is drawn
    here, so the search is still reproducible from what its jobs keep."""
    r = FormReader(values, FIELD_LABELS)
    count = r.integer("sweep_count", None, minimum=2, maximum=MAX_SWEEP_JOBS, required=True)
    seed = r.integer("sweep_seed", None, minimum=0, maximum=MAX_SEED)
    low = r.number("sweep_lr_min", None, minimum=0.0, exclusive_minimum=True, maximum=10.0)
    high = r.number("sweep_lr_max", None, minimum=0.0, exclusive_minimum=True, maximum=10.0)
    lr_range = None
    if (r.raw("sweep_lr_min") or "") and not (r.raw("sweep_lr_max") or ""):
        r.error("sweep_lr_max", "Give both ends of the learning rate range (or neither).")
    elif (r.raw("sweep_lr_max") or "") and not (r.raw("sweep_lr_min") or ""):
        r.error("sweep_lr_min", "Give both ends of the learning rate range (or neither).")
    elif low is not None and high is not None:
        if not high > low:
            r.error("sweep_lr_max", f"Must be greater than {FIELD_LABELS['sweep_lr_min']} ({low:g}).")
        else:
            lr_range = (low, high)
    sizes, batch_range = None, None
    raw_sizes = r.raw("sweep_batch_sizes") or ""
    if raw_sizes:
        sizes, batch_range = _batch_choices(r, raw_sizes)
    elif not r.errors and lr_range is None:
        r.error("sweep_lr_min", "Random search needs a learning rate range, batch sizes to draw from, or both.")
    for field in SWEPT_FIELDS:
        raw = str(values.get(field) or "")
        if "," in raw or "[" in raw:
            r.error(field, "A list here and random search at once: use one or the other.")
    if r.errors:
        return None, r.errors
    search = RandomSearch(count, secrets.randbelow(2**31) if seed is None else seed, lr_range, sizes, batch_range)
    space = search.space()
    if space is not None and space < search.count:
        r.error(
            "sweep_count",
            f"Only {space} distinct combinations can be drawn from these ranges; ask for at most {space}.",
        )
        return None, r.errors
    return search, r.errors


def expand_random(values: Mapping[str, str], check: Check) -> Plan:
    """Random search: `sweep_count` combinations drawn from the ranges, each checked by `check` as a whole form
    (its drawn values in Base learning rate and Batch size); with any error, none."""
    search, errors = read_random_search(values)
    if search is None:
        return Plan([], (), errors, {})
    drawn = search.draw()
    if len(drawn) < search.count:
        errors.setdefault("sweep_count", []).append(
            f"Only {len(drawn)} distinct combinations could be drawn from these ranges; ask for fewer or widen them."
        )
        return Plan([], (), errors, {})
    base = {k: v for k, v in values.items() if k not in RANDOM_FIELDS}
    fields = tuple(f for f in SWEPT_FIELDS if f in drawn[0])
    combos: list[Combination] = []
    for chosen in drawn:
        combo_values = {**base, **{f: str(v) for f, v in chosen.items()}}
        form, problems = check(combo_values)
        _merge(errors, problems, chosen)
        if form is not None:
            swept = {f: getattr(form.settings, _SWEPT_SETTING[f]) for f in fields}
            combos.append(Combination(combo_values, form, swept))
    if errors:
        return Plan([], (), errors, {})
    return Plan(combos, fields, errors, search.as_dict())


def _merge(errors: FieldErrors, problems: Mapping[str, list[str]], chosen: Mapping[str, Any]) -> None:
    """One combination's errors added to the sweep's, each message once, a swept field's led by its value."""
    errors.labels.update(getattr(problems, "labels", {}))
    for field, messages in problems.items():
        for message in messages:
            text = f"{chosen[field]}: {message}" if field in chosen else message
            if text not in errors.get(field, []):
                errors.setdefault(field, []).append(text)


def expand(values: Mapping[str, str], check: Check) -> tuple[list[Combination], tuple[str, ...], FieldErrors]:
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
        _merge(errors, problems, chosen)
        if form is not None:
            swept = {f: getattr(form.settings, _SWEPT_SETTING[f]) for f in fields}
            combos.append(Combination(combo_values, form, swept))
    if errors:
        return [], (), errors
    named = tuple(f for f in fields if len(lists[f]) > 1)
    return combos, named, errors
