"""A model's metrics as TensorBoard event files (torch-free): one run per phase (train, val, ...), one scalar tag
per metric (loss, accuracy, learning_rate, ...), every point of metrics.jsonl at its training iteration.

    <name>-tensorboard/train/events.out.tfevents.<seconds>.digits
    <name>-tensorboard/val/events.out.tfevents.<seconds>.digits

`tensorboard --logdir <name>-tensorboard` shows them (add `--samples_per_plugin scalars=0` to draw every point:
TensorBoard samples a long series down to 1,000 by default).

The step of a point is the iteration its worker reported. The learning rate is reported by epoch only: its step
is that epoch times the iterations per epoch that the job's other points show, which gives back the iteration of
the loss it was reported with. A job with no iteration anywhere counts each series' points 0, 1, 2, ...
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from digits.folders.model import metric_lines
from digits.formats.tfevents import event_file, event_file_name
from digits.model.download_archive import Member


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _iterations_per_epoch(points: list[dict[str, Any]]) -> float | None:
    """The last ratio iteration / epoch among points that carry both (a resumed run keeps the same ratio)."""
    ratio = None
    for m in points:
        iteration, epoch = _number(m.get("iteration")), _number(m.get("epoch"))
        if iteration is not None and epoch is not None and epoch > 0 and math.isfinite(iteration / epoch):
            ratio = iteration / epoch
    return ratio


def run_name(phase: str) -> str:
    """A phase as a folder name: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", phase).strip("._") or "run"


def metric_runs(points: list[dict[str, Any]]) -> dict[str, list[tuple[str, int, float, float]]]:
    """metrics.jsonl's points as {run: [(tag, step, value, wall_time), ...]} in the order they were reported;
    points without a numeric value are left out."""
    ratio = _iterations_per_epoch(points)
    counts: dict[tuple[str, str], int] = {}
    runs: dict[str, list[tuple[str, int, float, float]]] = {}
    for m in points:
        value = _number(m.get("value"))
        if value is None:
            continue
        phase, tag = str(m.get("phase", "train")), str(m.get("name", "?"))
        ordinal = counts[(phase, tag)] = counts.get((phase, tag), -1) + 1
        iteration, epoch = _number(m.get("iteration")), _number(m.get("epoch"))
        if iteration is not None and math.isfinite(iteration):
            step = round(iteration)
        elif ratio is not None and epoch is not None and math.isfinite(epoch):
            step = round(epoch * ratio)
        else:
            step = ordinal
        wall_time = _number(m.get("time")) or 0.0
        runs.setdefault(run_name(phase), []).append((tag, step, value, wall_time))
    return runs


def tensorboard_members(job_dir: str, created: float | None = None) -> list[Member]:
    """The event files of a model folder's metrics, one per run, as archive members (read and encoded here: call
    it off the event loop). Empty when the model reported no metric."""
    created = time.time() if created is None else created
    runs = metric_runs(metric_lines(job_dir))
    return [
        Member.from_bytes(f"{run}/{event_file_name(created)}", event_file(points, created), mode=0o644)
        for run, points in sorted(runs.items())
    ]
