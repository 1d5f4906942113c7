"""A sweep's group: the models one New Model form made (DIGITS' lists or our random search), their swept settings,
status, final and best results, and the validation curves the group page overlays (torch-free, Flask-free)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from digits.job import Job
from digits.model.metric_history import SeriesHistory, decimate, metric_history
from digits.offload import off_loop

GROUP_ID = re.compile(r"^[0-9a-f]{1,32}$")
# The curves the group page overlays, one of each per model: (phase, name).
CURVES = (("val", "loss"), ("val", "accuracy"))
# The latest value of each of these is a model's "final" result.
FINAL = (("val", "accuracy"), ("val", "loss"), ("train", "loss"))


def group_members(store, group: str) -> list[Job]:
    """The models of sweep `group`, in the order they were made (empty for an unknown group)."""
    if not GROUP_ID.match(group):
        return []
    members = [j for j in store.all() if j.category == "model" and j.extra.get("sweep_group") == group]
    return sorted(members, key=lambda j: (j.extra.get("sweep_index", 0), j.id))


def _best(s: SeriesHistory | None, highest: bool) -> dict[str, float] | None:
    if s is None:
        return None
    x, y = s.chart()
    if not len(y):
        return None
    i = int(np.argmax(y) if highest else np.argmin(y))
    return {"value": float(y[i]), "epoch": float(x[i])}


def model_results(
    series: dict[Any, SeriesHistory], points: int, x0: float | None, x1: float | None, curves=CURVES
) -> dict[str, Any]:
    """A model's final and best results and its `curves` ((phase, name) pairs) decimated to about `points` each
    (CPU work on arrays: run off the event loop)."""
    final = {}
    for key in FINAL:
        s = series.get(key)
        if s is not None and len(s):
            epoch, value = s.last()
            final[f"{key[0]} {key[1]}"] = {"value": value, "epoch": epoch}
    drawn = {}
    for phase, name in curves:
        s = series.get((phase, name))
        if s is None:
            continue
        x, y = s.chart()
        if not len(x):
            continue
        a = x[0] if x0 is None else x0
        b = x[-1] if x1 is None else x1
        xs, ys, decimated = decimate(x, y, a, b, max(1, points // 2))
        drawn[f"{phase}/{name}"] = {
            "count": len(x),
            "decimated": decimated,
            "points": np.column_stack([xs, ys]).tolist(),
        }
    return {
        "final": final,
        "best": {
            "val accuracy": _best(series.get(("val", "accuracy")), highest=True),
            "val loss": _best(series.get(("val", "loss")), highest=False),
        },
        "curves": drawn,
    }


def group_json(
    store, group: str, jobs: list[Job], points: int, x0: float | None = None, x1: float | None = None
) -> dict[str, Any]:
    """The group page's data: what was searched and, per model, its swept values, status, results and curves.
    Each model's metrics are parsed off the event loop (metric_history), and its results computed there too."""
    models = []
    for job in jobs:
        series = dict(metric_history(store.job_dir(job.id)).series)
        train = job.tasks[0] if job.tasks else None
        models.append(
            {
                "id": job.id,
                "name": job.name,
                "owner": job.owner,
                "status": job.status.value,
                "progress": round(job.progress, 4),
                "epoch": train.epoch if train else None,
                "sweep": job.extra.get("sweep", {}),
                **off_loop(model_results, series, points, x0, x1),
            }
        )
    first = jobs[0] if jobs else None
    return {
        "group": group,
        "name": first.form.get("model_name", first.name) if first else group,
        "search": first.extra.get("sweep_search", {}) if first else {},
        "fields": list(first.extra.get("sweep", {})) if first else [],
        "points": points,
        "models": models,
    }


def sweep_label(swept: dict[str, Any]) -> str:
    """A model's swept values as the legend and table name them: "learning_rate 0.01 · batch_size 8"."""
    return " · ".join(
        f"{field} {value:g}" if isinstance(value, float) else f"{field} {value}" for field, value in swept.items()
    )
