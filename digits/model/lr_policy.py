"""Learning-rate policies as DIGITS offered them: form values in percent of training, Caffe's formulas per iteration.

DIGITS let people describe a schedule relative to the whole run ("drop at 33%") and turned that into Caffe
solver values for the actual number of iterations. `LRPolicy.from_form` does the same conversion once, and
the object keeps the per-iteration values so a job trained months ago reads back exactly from job.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")

# The DIGITS form fields each policy reads, with DIGITS' defaults. Percents are of the whole training run.
FORM_DEFAULTS: dict[str, dict[str, Any]] = {
    "fixed": {},
    "step": {"lr_step_size": 33.0, "lr_step_gamma": 0.1},
    "multistep": {"lr_multistep_values": "50,85", "lr_multistep_gamma": 0.5},
    "exp": {"lr_exp_gamma": 0.95},
    "inv": {"lr_inv_gamma": 0.1, "lr_inv_power": 0.5},
    "poly": {"lr_poly_power": 3.0},
    "sigmoid": {"lr_sigmoid_step": 50.0, "lr_sigmoid_gamma": 0.1},
}
FORM_FIELDS = frozenset(name for fields in FORM_DEFAULTS.values() for name in fields)


@dataclass(frozen=True)
class LRPolicy:
    """A learning-rate schedule in Caffe's per-iteration terms, plus the DIGITS form values it came from."""

    policy: str
    base_lr: float
    max_iter: int
    gamma: float = 1.0
    power: float = 1.0
    stepsize: int = 1
    stepvalues: tuple[int, ...] = ()
    form: dict[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_form(cls, policy: str, base_lr: float, max_iter: int, **params: Any) -> LRPolicy:
        """Convert DIGITS form values (percents of training) into a schedule for `max_iter` iterations.

        Fields that belong to other policies are ignored, because the form always sends all of them.
        """
        policy = str(policy).strip().lower()
        if policy not in POLICIES:
            raise ValueError(f"Unknown learning rate policy {policy!r} (known: {', '.join(POLICIES)}).")
        unknown = sorted(set(params) - FORM_FIELDS)
        if unknown:
            raise TypeError(f"unknown learning rate field(s): {', '.join(unknown)}")
        base_lr = _number("base_lr", base_lr)
        if base_lr <= 0:
            raise ValueError(f"The learning rate must be greater than 0 (got {base_lr:g}).")
        if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 1:
            raise ValueError(f"The number of iterations must be a positive integer (got {max_iter!r}).")
        max_iter = int(max_iter)

        form: dict[str, Any] = {}
        for name, default in FORM_DEFAULTS[policy].items():
            value = params.get(name)
            if value is None:
                value = default
            form[name] = _multistep_values(value) if name == "lr_multistep_values" else _number(name, value)

        # DIGITS scaled percents by max_iter / 100; exact fractions keep ceil() from rounding 55.000000001 up.
        scale = max_iter / 100
        values: dict[str, Any] = {}
        if policy == "step":
            if form["lr_step_size"] <= 0:
                raise ValueError("The step size must be greater than 0% of training.")
            values = {"stepsize": _ceil_percent(form["lr_step_size"], max_iter), "gamma": form["lr_step_gamma"]}
        elif policy == "multistep":
            steps = tuple(_ceil_percent(v, max_iter) for v in form["lr_multistep_values"])
            values = {"stepvalues": steps, "gamma": form["lr_multistep_gamma"]}
        elif policy == "exp":
            if form["lr_exp_gamma"] <= 0:
                raise ValueError("The exponential gamma must be greater than 0.")
            values = {"gamma": form["lr_exp_gamma"] ** (1 / scale)}
        elif policy == "inv":
            values = {"gamma": form["lr_inv_gamma"] / scale, "power": form["lr_inv_power"]}
        elif policy == "poly":
            values = {"power": form["lr_poly_power"]}
        elif policy == "sigmoid":
            values = {
                "gamma": -form["lr_sigmoid_gamma"] / scale,
                "stepsize": _ceil_percent(form["lr_sigmoid_step"], max_iter),
            }
        return cls(policy=policy, base_lr=base_lr, max_iter=max_iter, form=form, **values)

    def lr_at(self, iteration: int) -> float:
        """The learning rate Caffe's solver would use at `iteration` (0-based)."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0 (got {iteration})")
        it = iteration
        if self.policy == "fixed":
            return self.base_lr
        if self.policy == "step":
            return self.base_lr * self.gamma ** (it // self.stepsize)
        if self.policy == "multistep":
            return self.base_lr * self.gamma ** sum(1 for v in self.stepvalues if v <= it)
        if self.policy == "exp":
            return self.base_lr * self.gamma**it
        if self.policy == "inv":
            return self.base_lr * (1 + self.gamma * it) ** (-self.power)
        if self.policy == "poly":
            # Past the end Caffe would raise a negative number to a fractional power; the schedule has ended at 0.
            return self.base_lr * (1 - min(it, self.max_iter) / self.max_iter) ** self.power
        if self.policy == "sigmoid":
            return self.base_lr * _logistic(self.gamma * (it - self.stepsize))
        raise ValueError(f"Unknown learning rate policy {self.policy!r} (known: {', '.join(POLICIES)}).")

    def curve(self, points: int = 100) -> list[tuple[float, float]]:
        """`points` samples (percent of training, lr) from 0% to 100%, for the form's preview chart."""
        if points < 2:
            raise ValueError(f"a curve needs at least 2 points (got {points})")
        samples = []
        for i in range(points):
            it = round(i * self.max_iter / (points - 1))
            samples.append((100.0 * it / self.max_iter, self.lr_at(it)))
        return samples

    def caffe_solver_fields(self) -> dict[str, Any]:
        """The solver.prototxt fields this schedule sets (lr_policy, base_lr, gamma, stepsize, ...)."""
        fields: dict[str, Any] = {"lr_policy": self.policy, "base_lr": self.base_lr, "max_iter": self.max_iter}
        if self.policy in ("step", "multistep", "exp", "inv", "sigmoid"):
            fields["gamma"] = self.gamma
        if self.policy in ("inv", "poly"):
            fields["power"] = self.power
        if self.policy in ("step", "sigmoid"):
            fields["stepsize"] = self.stepsize
        if self.policy == "multistep":
            fields["stepvalue"] = list(self.stepvalues)
        return fields

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` gives back an equal policy."""
        return {
            "policy": self.policy,
            "base_lr": self.base_lr,
            "max_iter": self.max_iter,
            "gamma": self.gamma,
            "power": self.power,
            "stepsize": self.stepsize,
            "stepvalues": list(self.stepvalues),
            "form": {k: list(v) if isinstance(v, tuple) else v for k, v in self.form.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRPolicy:
        """Rebuild a policy stored by `to_dict`, without recomputing it (the stored values are what trained)."""
        policy = data["policy"]
        if policy not in POLICIES:
            raise ValueError(f"Unknown learning rate policy {policy!r} (known: {', '.join(POLICIES)}).")
        form = dict(data.get("form", {}))
        if "lr_multistep_values" in form:
            form["lr_multistep_values"] = tuple(float(v) for v in form["lr_multistep_values"])
        return cls(
            policy=policy,
            base_lr=float(data["base_lr"]),
            max_iter=int(data["max_iter"]),
            gamma=float(data.get("gamma", 1.0)),
            power=float(data.get("power", 1.0)),
            stepsize=int(data.get("stepsize", 1)),
            stepvalues=tuple(int(v) for v in data.get("stepvalues", ())),
            form=form,
        )


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (got {value!r}).") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number (got {value!r}).")
    return number


def _multistep_values(value: str | Sequence[float]) -> tuple[float, ...]:
    """Parse "50,85" (or a list of numbers) into increasing percents, with messages a form can show."""
    items = value.split(",") if isinstance(value, str) else list(value)
    if isinstance(value, str) and items and not items[-1].strip():
        items = items[:-1]  # tolerate a trailing comma
    if not items:
        raise ValueError("Give at least one step, as percents of training separated by commas (e.g. 50,85).")
    percents: list[float] = []
    for item in items:
        try:
            percent = float(item.strip() if isinstance(item, str) else item)
        except (TypeError, ValueError):
            raise ValueError(
                f"Multistep values must be numbers separated by commas (got {str(item).strip()!r})."
            ) from None
        if not 0 <= percent <= 100:  # also rejects NaN
            raise ValueError(f"Multistep values are percents of training, from 0 to 100 (got {percent:g}).")
        if percents and percent <= percents[-1]:
            raise ValueError(f"Multistep values must increase ({percent:g} comes after {percents[-1]:g}).")
        percents.append(percent)
    return tuple(percents)


def _ceil_percent(percent: float, max_iter: int) -> int:
    # str() gives the decimal the person typed, so 50% of 110 iterations is 55 and not ceil(55.00000000000001).
    return math.ceil(Fraction(str(percent)) * max_iter / 100)


def _logistic(z: float) -> float:
    # Two forms so exp() never overflows for a steep sigmoid far from its midpoint.
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)
