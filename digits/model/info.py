"""What a model job folder holds, read for its page and JSON twin (DIGITS' keys), torch-free."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from digits.folders.dataset import LABELS, MEAN
from digits.folders.generic import GENERIC_MODEL_TYPE
from digits.folders.model import read_best_record, read_start_record, snapshots
from digits.job import Job
from digits.model.metric_history import decimate, in_range, metric_history
from digits.model.settings import model_settings
from digits.store import METRICS_FILE


def latest_reported(job_dir: str) -> dict[str, Any]:
    """Each series' last value as reported, by "phase name" (the model page's "Latest metrics")."""
    return {f"{phase} {name}": s.last()[1] for (phase, name), s in metric_history(job_dir).series.items() if len(s)}


def model_json(job: Job, job_dir: str, dataset: Job | None, *, metrics: bool = True) -> dict[str, Any]:
    """The JSON twin of a model (DIGITS' keys); `metrics` False leaves the history out (an empty dict), for a
    page that draws it from the charts' route instead of holding 400,000 points."""
    image = job.extra.get("image", {})
    snaps = snapshots(job, job_dir)
    settings = model_settings(job)
    train = job.tasks[0] if job.tasks else None
    return {
        "id": job.id,
        "job id": job.id,
        "name": job.name,
        "status": job.status.value,
        "type": "Generic Model" if job.type == GENERIC_MODEL_TYPE else "Image Classification Model",
        "username": job.owner,
        "group": job.group,
        "creation time": job.created,
        "framework": settings.framework,
        "dataset_id": job.extra.get("dataset_id"),
        "dataset_name": dataset.name if dataset else None,
        "network": job.extra.get("network_name") or job.form.get("method"),
        "network file": settings.network_file,
        "image dimensions": [image.get("height"), image.get("width"), image.get("channels")],
        "image resize mode": image.get("resize_mode"),
        "labels file": LABELS,
        "mean file": MEAN if settings.use_mean != "none" else None,
        "snapshots": [s.epoch for s in snaps],
        "snapshot files": [s.name for s in snaps],
        # The best validation (settings best_monitor) and its snapshot, which classify and downloads default to.
        "best snapshot": next((s.epoch for s in snaps if s.best), None),
        "best epoch": read_best_record(job_dir),
        "progress": round(job.progress, 4),
        "epoch": train.epoch if train else None,
        "solver": settings.to_dict(),
        "metrics": metric_history(job_dir).as_dict() if metrics else {},  # parsed once, then what was appended
        "history": job.history.to_list(),
        "elapsed": job.elapsed(),
        "started from": read_start_record(job_dir),  # start weights' layers loaded / new, frozen layers
    }


CHART_POINTS = 2000  # points a series gets when the page does not say (about two a pixel column)
CHART_POINTS_RANGE = (16, 20000)


def chart_json(job: Job, job_dir: str, points: int, x0: float | None = None, x1: float | None = None) -> dict[str, Any]:
    """What the model page's charts draw: each series' points in [x0, x1] (its whole extent by default), at most
    about `points` of them (each column's minimum and maximum once there are more), and the run's state that the
    charts' progress line shows. A series' `count` is every point it holds; `decimated` says points were left out,
    so a closer look (a narrower range) has more to show."""
    settings = model_settings(job)
    train = job.tasks[0] if job.tasks else None
    series = []
    for (phase, name), s in metric_history(job_dir).series.items():
        x, y = s.chart()
        if not len(x):
            continue
        a = x[0] if x0 is None else x0
        b = x[-1] if x1 is None else x1
        xs, ys, decimated = decimate(x, y, a, b, max(1, points // 2))
        series.append(
            {
                "phase": phase,
                "name": name,
                "count": len(x),
                "in_range": in_range(x, a, b),
                "decimated": decimated,
                "points": np.column_stack([xs, ys]).tolist(),
            }
        )
    return {
        "id": job.id,
        "status": job.status.value,
        "progress": round(job.progress, 4),
        "epoch": train.epoch if train else None,
        "epochs": settings.epochs,
        "elapsed": job.elapsed(),
        "history": job.history.to_list(),
        "from": x0,
        "to": x1,
        "points": points,
        "series": series,
    }


_SPARK_CACHE: dict[str, tuple[float, dict[str, Any] | None]] = {}
SPARK_POINTS = 40
SPARK_TAIL_BYTES = 64 * 1024


def sparkline(job_dir: str) -> dict[str, Any] | None:
    """A model's val accuracy (or train loss before any validation) as ~40 points for the console, cached by mtime."""
    path = os.path.join(job_dir, METRICS_FILE)
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    cached = _SPARK_CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    accuracy, loss = [], []
    with open(path, "rb") as fh:  # the end of the file is enough, and a long run's history is megabytes
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - SPARK_TAIL_BYTES))
        lines = fh.read().decode("utf-8", errors="replace").splitlines()[1 if size > SPARK_TAIL_BYTES else 0 :]
    for line in lines:
        try:
            m = json.loads(line)
            value = float(m["value"])
        except (ValueError, KeyError, TypeError):
            continue
        if m.get("phase") == "val" and m.get("name") == "accuracy":
            accuracy.append(value)
        elif m.get("phase") == "train" and m.get("name") == "loss":
            loss.append(value)
    name, values = ("accuracy", accuracy) if accuracy else ("loss", loss)
    spark = None
    if values:
        spark = {"name": name, "latest": values[-1], "values": [round(v, 5) for v in values[-SPARK_POINTS:]]}
    _SPARK_CACHE[path] = (mtime, spark)
    return spark
