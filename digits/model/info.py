"""What a model job folder holds, read for its page and JSON twin (DIGITS' keys), torch-free."""

from __future__ import annotations

import json
import os
from typing import Any

from digits.folders.dataset import LABELS, MEAN
from digits.folders.model import read_metrics, snapshots
from digits.job import Job
from digits.model.settings import model_settings
from digits.store import METRICS_FILE


def latest_metrics(metrics: dict[str, dict[str, list[list[float]]]]) -> dict[str, float]:
    return {
        f"{phase} {name}": series[-1][1] for phase, names in metrics.items() for name, series in names.items() if series
    }


def model_json(job: Job, job_dir: str, dataset: Job | None) -> dict[str, Any]:
    image = job.extra.get("image", {})
    snaps = snapshots(job, job_dir)
    settings = model_settings(job)
    train = job.tasks[0] if job.tasks else None
    return {
        "id": job.id,
        "job id": job.id,
        "name": job.name,
        "status": job.status.value,
        "type": "Image Classification Model",
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
        "progress": round(job.progress, 4),
        "epoch": train.epoch if train else None,
        "solver": settings.to_dict(),
        "metrics": read_metrics(job_dir),
        "history": job.history.to_list(),
        "elapsed": job.elapsed(),
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
