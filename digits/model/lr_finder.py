"""The LR finder (torch-free): a short exponential learning-rate ramp on the New Model form's network and dataset,
run by a worker (digits/engine/lr_finder.py) as a job of its own kind, and its answer: (lr, smoothed loss) points
and a suggested rate.

An LR finder job is a job like any other for the scheduler (a CPU slot or the GPUs the form asks for, confinement,
abort, delete), in the category "tool": the console and DIGITS' job lists leave it out. It reads its dataset's
folder (the server's record of which, never job.json's); it does not depend on the dataset job, so a dataset
stays deletable. Each person keeps their latest finder only: starting one deletes their finished ones, and one
still running refuses another.

The ramp: from START_LR to END_LR over min(iterations of one epoch, MAX_STEPS) steps, so it never costs more
than one epoch; it stops early once the smoothed loss passes DIVERGE_FACTOR times its lowest. The suggestion is
the rate where the smoothed loss falls fastest against log(lr), before its minimum (the steepest descent), but no
more than a tenth of the rate of the lowest loss (the steepest point of a short ramp can sit near the edge); when
the ramp has too few points before its minimum to tell, that tenth.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from digits.folders import file_in
from digits.job import Job, Task, is_job_id
from digits.model.settings import TrainSettings

LR_FINDER_TYPE = "lr-finder"
LR_FINDER_CATEGORY = "tool"
LR_FINDER_KIND = "model.lr_finder"
LR_FINDER_TASK = "lr_finder"
RESULT_FILE = "lr_finder.json"
START_LR = 1e-7
END_LR = 10.0
MAX_STEPS = 100
DIVERGE_FACTOR = 4.0
MIN_DESCENT_POINTS = 5


def ramp_steps(iters_per_epoch: int) -> int:
    """Steps of the ramp: one epoch's iterations, at most MAX_STEPS."""
    return max(2, min(iters_per_epoch, MAX_STEPS))


def smoothing(steps: int) -> float:
    """The moving average's weight for a ramp of `steps`: fastai's 0.98 at 100 steps and beyond, less for shorter
    ramps, whose average would otherwise lag the loss by a large part of the ramp (and suggest too high a rate)."""
    return min(0.98, max(0.5, 1 - 2 / max(steps, 1)))


def suggest_lr(points: list[list[float]]) -> float | None:
    """The suggested learning rate for (lr, smoothed loss) points of a ramp (see the module's docstring), to two
    significant digits; None without points."""
    points = [p for p in points if p[0] > 0 and math.isfinite(p[1])]
    if not points:
        return None
    losses = [p[1] for p in points]
    lowest = losses.index(min(losses))
    if lowest + 1 >= MIN_DESCENT_POINTS:
        logs = [math.log(p[0]) for p in points[: lowest + 1]]
        slopes = [
            ((losses[i + 1] - losses[i - 1]) / (logs[i + 1] - logs[i - 1]), i)
            for i in range(1, lowest)
            if logs[i + 1] > logs[i - 1]
        ]
        if slopes and min(slopes)[0] < 0:
            return float(f"{min(points[min(slopes)[1]][0], points[lowest][0] / 10):.2g}")
    return float(f"{points[lowest][0] / 10:.2g}")


def build_lr_finder_job(job_id: str, owner: str, settings: TrainSettings, dataset_id: str, resources: dict) -> Job:
    """The job that runs one ramp for these settings (start weights are not loaded: the ramp is about the rate)."""
    args = {**settings.to_dict(), "pretrained": None, "start_lr": START_LR, "end_lr": END_LR}
    return Job(
        id=job_id,
        type=LR_FINDER_TYPE,
        category=LR_FINDER_CATEGORY,
        name="LR finder",
        owner=owner,
        tasks=[Task(LR_FINDER_TASK, LR_FINDER_KIND, args, resources)],
        extra={"dataset_id": dataset_id},
    )


def is_lr_finder(job: Job | None) -> bool:
    return job is not None and job.type == LR_FINDER_TYPE


def lr_finder_access(workspace, job: Job, task: Task) -> dict:
    """What the finder's worker reads besides its own folder: its dataset's folder, from the server's record."""
    dataset_id = job.extra.get("dataset_id", "")
    dataset = workspace.store.get(dataset_id) if is_job_id(dataset_id) else None
    folders = [workspace.store.job_dir(dataset_id)] if dataset is not None and dataset.category == "dataset" else []
    return {"read_jobs": folders, "read_files": [], "data": []}


def read_result(job_dir: str) -> dict[str, Any]:
    """lr_finder.json as the route answers it: points [[lr, loss]...], suggestion, stopped, done, seconds.
    Read defensively (the worker may run a member's network code): only finite numbers come out."""
    path = file_in(job_dir, RESULT_FILE)
    empty = {"points": [], "suggestion": None, "stopped": None, "done": False, "seconds": None, "steps": None}
    if path is None or os.path.getsize(path) > 1 << 20:
        return empty
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, ValueError):
        return empty
    if not isinstance(raw, dict):
        return empty

    def number(value) -> float | None:
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    points = []
    for p in raw.get("points") if isinstance(raw.get("points"), list) else []:
        if isinstance(p, list) and len(p) == 2 and number(p[0]) is not None and number(p[1]) is not None:
            points.append([float(p[0]), float(p[1])])
    stopped = raw.get("stopped")
    return {
        "points": points,
        "suggestion": number(raw.get("suggestion")),
        "stopped": str(stopped)[:300] if stopped else None,
        "done": raw.get("done") is True,
        "seconds": number(raw.get("seconds")),
        "steps": raw["steps"] if isinstance(raw.get("steps"), int) else None,
    }
