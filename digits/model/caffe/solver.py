"""A Caffe solver.prototxt read into the New Model form's fields (torch-free, no pycaffe).

Caffe counts in iterations; DIGITS' form counts the learning-rate schedule in percents of the whole training run
(digits/model/lr_policy.py converts the other way when a job starts). So a solver's schedule carries over as it
is, relative to its own `max_iter`; how many epochs that many iterations are depends on the dataset and batch
size, which a solver file does not know: the notes say so, with the file's iteration counts.
"""

from __future__ import annotations

from digits.model.caffe.errors import TextFormatError
from digits.model.caffe.textformat import Message, parse

__all__ = ["MAX_SOLVER_BYTES", "SolverFileError", "solver_form"]

MAX_SOLVER_BYTES = 1_000_000
# Caffe's SolverParameter.type strings and the old solver_type enum, to the form's Solver type choices.
SOLVER_TYPES = {
    "SGD": "SGD",
    "NESTEROV": "NESTEROV",
    "ADAGRAD": "ADAGRAD",
    "RMSPROP": "RMSPROP",
    "ADADELTA": "ADADELTA",
    "ADAM": "ADAM",
}
POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")
# Fields a solver may hold that the form has no place for, and why they are not used.
NOT_USED = {
    "net": "the network is chosen on this page",
    "train_net": "the network is chosen on this page",
    "test_net": "the network is chosen on this page",
    "test_iter": "DIGITS validates on the whole validation split",
    "test_interval": "set Validate every (epochs)",
    "display": "DIGITS charts every iteration's reports",
    "snapshot_prefix": "snapshots are kept in the model's folder",
    "solver_mode": "DIGITS chooses the device",
    "device_id": "choose GPUs on this page",
    "iter_size": "set Batch accumulation",
    "clip_gradients": "not supported by the form",
    "average_loss": "not used",
}


class SolverFileError(ValueError):
    """A solver file that cannot be read; the message names the line where it can."""


def _number(msg: Message, name: str) -> float | None:
    value = msg.first(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        line, _ = msg.where(name)
        raise SolverFileError(f"line {line}: {name} must be a number (got {value!r})")
    return float(value)


def _text(value: float) -> str:
    """A number as the form shows it: up to 6 significant digits, no trailing zeros."""
    return f"{value:.6g}"


def _percent(iterations: float, max_iter: float) -> str:
    return _text(100.0 * iterations / max_iter)


def solver_form(text: str) -> tuple[dict[str, str], list[str]]:
    """The form fields a solver.prototxt sets ({field: value as the form takes it}) and notes for the person:
    what was converted, what the form cannot take and why. Raises SolverFileError for an unreadable file."""
    if len(text.encode("utf-8", "replace")) > MAX_SOLVER_BYTES:
        raise SolverFileError(f"a solver file is at most {MAX_SOLVER_BYTES:,} bytes")
    try:
        msg = parse(text)
    except TextFormatError as e:
        raise SolverFileError(str(e)) from None
    fields: dict[str, str] = {}
    notes: list[str] = []

    base_lr = _number(msg, "base_lr")
    if base_lr is not None:
        fields["learning_rate"] = _text(base_lr)
    for name, field in (("momentum", "momentum"), ("weight_decay", "weight_decay"), ("rms_decay", "rms_decay")):
        value = _number(msg, name)
        if value is not None:
            fields[field] = _text(value)
    seed = msg.first("random_seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
        fields["random_seed"] = str(seed)

    kind = msg.first("type", msg.first("solver_type"))
    if kind is not None:
        chosen = SOLVER_TYPES.get(str(kind).upper())
        if chosen is None:
            notes.append(
                f"Solver type {kind!s} is not one DIGITS trains with ({', '.join(SOLVER_TYPES)}); kept as it was."
            )
        else:
            fields["solver_type"] = chosen

    max_iter = _number(msg, "max_iter")
    policy = msg.first("lr_policy")
    if policy is not None:
        policy = str(policy).lower()
        if policy not in POLICIES:
            notes.append(f"Learning rate policy {policy!r} is not one of {', '.join(POLICIES)}; kept as it was.")
        elif policy != "fixed" and policy != "poly" and not max_iter:
            notes.append(f"The {policy} schedule needs max_iter to be read as percents of training; kept as it was.")
        else:
            fields["lr_policy"] = policy
            fields.update(_schedule(msg, policy, max_iter or 1.0))
    if max_iter:
        notes.append(
            f"max_iter is {int(max_iter):,} iterations: set Training epochs for your dataset (an epoch is the "
            "training images divided by the batch size); the learning rate schedule is kept in percents of training."
        )
    snapshot = _number(msg, "snapshot")
    if snapshot:
        notes.append(f"snapshot every {int(snapshot):,} iterations: set Snapshot every (epochs).")
    for name, why in NOT_USED.items():
        if msg.first(name) is not None and name != "snapshot":
            notes.append(f"{name} is not used: {why}.")
    return fields, notes


def _schedule(msg: Message, policy: str, max_iter: float) -> dict[str, str]:
    """The form's schedule fields: Caffe's per-iteration values made percents of training (the inverse of
    digits.model.lr_policy.LRPolicy.from_form)."""
    scale = max_iter / 100.0
    gamma = _number(msg, "gamma")
    power = _number(msg, "power")
    out: dict[str, str] = {}
    if policy == "step":
        stepsize = _number(msg, "stepsize")
        if stepsize:
            out["lr_step_size"] = _percent(stepsize, max_iter)
        if gamma is not None:
            out["lr_step_gamma"] = _text(gamma)
    elif policy == "multistep":
        steps = [float(v) for v in msg.get("stepvalue", []) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if steps:
            out["lr_multistep_values"] = ",".join(_percent(v, max_iter) for v in steps)
        if gamma is not None:
            out["lr_multistep_gamma"] = _text(gamma)
    elif policy == "exp" and gamma is not None and gamma > 0:
        out["lr_exp_gamma"] = _text(gamma**scale)  # Caffe's gamma per iteration, DIGITS' per 1% of training
    elif policy == "inv":
        if gamma is not None:
            out["lr_inv_gamma"] = _text(gamma * scale)
        if power is not None:
            out["lr_inv_power"] = _text(power)
    elif policy == "poly" and power is not None:
        out["lr_poly_power"] = _text(power)
    elif policy == "sigmoid":
        stepsize = _number(msg, "stepsize")
        if stepsize:
            out["lr_sigmoid_step"] = _percent(stepsize, max_iter)
        if gamma is not None:
            out["lr_sigmoid_gamma"] = _text(-gamma * scale)
    return out
