"""A comparison of any models (or a sweep's group): the training settings that differ between them, each model's
final and best results and its train/val loss and val accuracy curves, as the page, its JSON twin and CSV read
them (torch-free, Flask-free)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from digits.job import Job
from digits.model.forms import CAFFE_ENGINE_TITLES, FIELD_LABELS
from digits.model.lr_policy import FORM_DEFAULTS
from digits.model.metric_history import metric_history
from digits.model.settings import TRAIN_TASK, TrainSettings
from digits.model.sweep_group import model_results
from digits.offload import off_loop

# How many models one comparison takes: each is a metrics file read and a few curves drawn.
MAX_MODELS = 50
# The curves overlaid, one of each per model: (phase, name).
CURVES = (("train", "loss"), ("val", "loss"), ("val", "accuracy"))
# One colour per model, in the order chosen (sweep.js's palette; a golden-angle hue past its end).
PALETTE = ("#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#d63384", "#795548", "#0dcaf0", "#6c757d")
# The results columns of the table and the CSV: (column title, results section, series, "value" or "epoch").
RESULTS = (
    ("Best val accuracy", "best", "val accuracy", "value"),
    ("Best val accuracy epoch", "best", "val accuracy", "epoch"),
    ("Lowest val loss", "best", "val loss", "value"),
    ("Lowest val loss epoch", "best", "val loss", "epoch"),
    ("Final val accuracy", "final", "val accuracy", "value"),
    ("Final val loss", "final", "val loss", "value"),
    ("Final train loss", "final", "train loss", "value"),
)


@dataclass(frozen=True)
class Setting:
    """One training setting a comparison can show: its field, its label on the New Model form, whether it sorts
    as a number, and how to read it from a model (the value shown, or None when the model does not say)."""

    field: str
    label: str
    kind: str  # "number" or "text"
    read: Callable[[Job, TrainSettings, Any], Any]


def _lr_policy(s: TrainSettings) -> str:
    """The policy and the parameters it reads (the form keeps every policy's): "step (Step size ... 33, ...)"."""
    name = s.lr_policy.get("policy", "")
    used = [(k, s.lr_policy[k]) for k in FORM_DEFAULTS.get(name, {}) if k in s.lr_policy]
    params = ", ".join(
        f"{FIELD_LABELS.get(k, k)} {v:g}" if isinstance(v, float) else f"{FIELD_LABELS.get(k, k)} {v}" for k, v in used
    )
    return f"{name} ({params})" if params else name


def _framework(s: TrainSettings) -> str:
    if s.framework != "caffe":
        return s.framework
    return f"caffe on {CAFFE_ENGINE_TITLES.get(s.caffe_engine, s.caffe_engine)}"


def _augmentation(s: TrainSettings) -> str:
    used = {k: v for k, v in s.augmentation.items() if v not in (None, "", False, 0, "none")}
    return ", ".join(f"{k} {v}" for k, v in sorted(used.items())) or "none"


SETTINGS = (
    Setting(
        "dataset", "Dataset", "text", lambda job, s, dataset: dataset.name if dataset else job.extra.get("dataset_id")
    ),
    Setting("network", "Network", "text", lambda job, s, d: job.extra.get("network_name") or job.form.get("method")),
    Setting("framework", "Framework", "text", lambda job, s, d: _framework(s)),
    Setting("epochs", FIELD_LABELS["train_epochs"], "number", lambda job, s, d: s.epochs),
    Setting("batch_size", FIELD_LABELS["batch_size"], "number", lambda job, s, d: s.batch_size),
    Setting("batch_accumulation", FIELD_LABELS["batch_accumulation"], "number", lambda job, s, d: s.batch_accumulation),
    Setting("solver_type", FIELD_LABELS["solver_type"], "text", lambda job, s, d: s.solver_type),
    Setting("learning_rate", FIELD_LABELS["learning_rate"], "number", lambda job, s, d: s.learning_rate),
    Setting("momentum", FIELD_LABELS["momentum"], "number", lambda job, s, d: s.momentum),
    Setting("weight_decay", FIELD_LABELS["weight_decay"], "number", lambda job, s, d: s.weight_decay),
    Setting("lr_policy", FIELD_LABELS["lr_policy"], "text", lambda job, s, d: _lr_policy(s)),
    Setting("seed", FIELD_LABELS["random_seed"], "number", lambda job, s, d: s.seed),
    Setting("crop_size", FIELD_LABELS["crop_size"], "number", lambda job, s, d: s.crop_size),
    Setting("use_mean", FIELD_LABELS["use_mean"], "text", lambda job, s, d: s.use_mean),
    Setting("shuffle", "Shuffle", "text", lambda job, s, d: "yes" if s.shuffle else "no"),
    Setting("augmentation", "Data augmentation", "text", lambda job, s, d: _augmentation(s)),
    Setting("val_interval", FIELD_LABELS["val_interval"], "number", lambda job, s, d: s.val_interval),
    Setting("pretrained", "Start weights", "text", lambda job, s, d: s.pretrained),
    Setting("frozen_layers", "Frozen layers", "text", lambda job, s, d: ", ".join(s.frozen_layers) or None),
)


def trained_settings(job: Job) -> TrainSettings | None:
    """The settings a model trained with; None for a model DIGITS did not train (an uploaded one)."""
    for task in job.tasks:
        if task.name == TRAIN_TASK and task.kind == "model.train":
            return TrainSettings.from_dict(task.args)
    return None


def colour(index: int) -> str:
    return PALETTE[index] if index < len(PALETTE) else f"hsl({round(index * 137.5) % 360} 60% 40%)"


def _key(setting: Setting, job: Job, value: Any) -> Any:
    """What two models are compared by: a dataset by its job, not its name (two datasets may share one)."""
    return job.extra.get("dataset_id") if setting.field == "dataset" else json.dumps(value, sort_keys=True)


def _labels(jobs: list[Job]) -> dict[str, str]:
    """The name each model goes by in the legend: its own, with its id when another chosen model has that name."""
    names = [j.name for j in jobs]
    return {j.id: j.name if names.count(j.name) == 1 else f"{j.name} ({j.id})" for j in jobs}


def compare_json(
    store, jobs: list[Job], points: int, x0: float | None = None, x1: float | None = None
) -> dict[str, Any]:
    """The comparison of `jobs`: every model's settings, status, results and curves (metrics parsed and results
    computed off the event loop), the settings that differ between them and those they share."""
    labels = _labels(jobs)
    values: dict[str, dict[str, Any]] = {}
    keys: dict[str, set] = {s.field: set() for s in SETTINGS}
    models = []
    for index, job in enumerate(jobs):
        settings = trained_settings(job)
        dataset = store.get(job.extra.get("dataset_id") or "") if job.extra.get("dataset_id") else None
        shown = {}
        for s in SETTINGS:
            value = s.read(job, settings, dataset) if settings is not None else None
            shown[s.field] = value
            if value is not None:
                keys[s.field].add(_key(s, job, value))
        values[job.id] = shown
        series = dict(metric_history(store.job_dir(job.id)).series)
        train = job.tasks[0] if job.tasks else None
        models.append(
            {
                "id": job.id,
                "name": job.name,
                "label": labels[job.id],
                "colour": colour(index),
                "owner": job.owner,
                "status": job.status.value,
                "progress": round(job.progress, 4),
                "epoch": train.epoch if train else None,
                "settings": shown,
                **off_loop(model_results, series, points, x0, x1, CURVES),
            }
        )
    differing = [s for s in SETTINGS if len(keys[s.field]) > 1]
    same = [s for s in SETTINGS if len(keys[s.field]) == 1]
    known = {s.field: next(v for j in jobs if (v := values[j.id][s.field]) is not None) for s in same}
    return {
        "models": models,
        "differing": [{"field": s.field, "label": s.label, "type": s.kind} for s in differing],
        "same": [{"field": s.field, "label": s.label, "value": known[s.field]} for s in same],
        "results": [title for title, *_ in RESULTS],
        # The table's columns: (title, how it sorts).
        "columns": [
            ("Model", "text"),
            ("Status", "text"),
            ("Progress", "number"),
            *((s.label, s.kind) for s in differing),
            *((title, "number") for title, *_ in RESULTS),
        ],
        "points": points,
    }


def result_value(model: dict[str, Any], column: int) -> float | None:
    """A results column's number for one model (RESULTS[column]), or None when it has not reported it."""
    _, section, series, part = RESULTS[column]
    found = model[section].get(series)
    return found[part] if found else None


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ or a control character gets a quote."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text and text[0] in "=+-@\t\r" else text


def compare_csv(info: dict[str, Any]) -> str:
    """The comparison's table as CSV: a model a row; its id, name and status, the settings that differ, results."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    differing = info["differing"]
    writer.writerow(["id", "name", "status", *(s["label"] for s in differing), *info["results"]])
    for m in info["models"]:
        settings = [_cell(m["settings"][s["field"]]) for s in differing]
        results = [_cell(result_value(m, i)) for i in range(len(RESULTS))]
        writer.writerow([m["id"], _cell(m["name"]), m["status"], *settings, *results])
    return out.getvalue()
