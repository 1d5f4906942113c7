"""The worker task that builds a generic dataset folder (digits.folders.generic) from a CSV or NumPy source:
`python -m digits.dataset.generic_task JOB_DIR --task build_generic`.

Reading, splitting and the statistics run here, never on the web process's event loop.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from digits.dataset.generic_read import (
    GenericSourceError,
    Table,
    class_names,
    label_indices,
    numeric_targets,
    read_source,
)
from digits.dataset.parse import read_rules
from digits.folders.dataset import update_stats, write_labels
from digits.folders.generic import GenericDataset, features_name, targets_name, write_meta
from digits.worker_runtime import TaskFailed, WorkerContext, run_worker

HISTOGRAM_BINS = 20
GENERIC_KIND = "dataset.generic"
TASK_NAME = "build_generic"


def _read(ctx: WorkerContext, which: str) -> Table:
    args = ctx.args
    source, shown = args[which], args[f"{which}_name"]
    if os.path.isabs(source):
        if not read_rules(args, ctx.job_dir).allows(os.path.realpath(source)):
            raise TaskFailed(f"{shown} does not exist or is outside the data roots")
        path = source
    else:
        path = ctx.path(source)
    try:
        return read_source(path, shown, args.get("target") or None, args.get("features_key"), args.get("labels_key"))
    except GenericSourceError as e:
        raise TaskFailed(str(e)) from None


def _split(table: Table, percent: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of (train, val): `percent` of the rows, drawn at random (seeded), for validation."""
    n = len(table.features)
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * percent / 100.0))
    if percent > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _subset(table: Table, rows: np.ndarray) -> Table:
    lines = [table.lines[i] for i in rows] if table.lines is not None else None
    targets = [table.targets[i] for i in rows]
    return Table(table.features[rows], targets, table.feature_names, table.target_name, lines)


def target_stats(y: np.ndarray) -> dict:
    """A regression target's range and histogram (for the dataset page)."""
    counts, edges = np.histogram(y, bins=HISTOGRAM_BINS)
    return {
        "min": float(y.min()),
        "max": float(y.max()),
        "mean": float(y.mean()),
        "std": float(y.std()),
        "histogram": {"counts": counts.tolist(), "edges": [float(e) for e in edges]},
    }


def run_build(ctx: WorkerContext) -> str | None:
    args = ctx.args
    started = time.perf_counter()
    problem = args["problem"]
    train = _read(ctx, "train")
    ctx.reporter.progress(0.3)
    if args.get("val"):
        val = _read(ctx, "val")
        if val.features.shape[1] != train.features.shape[1] or (
            val.lines is not None and train.lines is not None and val.feature_names != train.feature_names
        ):
            raise TaskFailed(
                f"{args['val_name']}: its feature columns ({', '.join(val.feature_names[:10])}) are not the training "
                f"file's ({', '.join(train.feature_names[:10])})"
            )
        sources = {"train": args["train_name"], "val": args["val_name"]}
    else:
        train_rows, val_rows = _split(train, float(args.get("val_percent") or 0), int(args.get("seed") or 0))
        val = _subset(train, val_rows) if len(val_rows) else None
        train = _subset(train, train_rows)
        sources = {"train": args["train_name"], "val": f"{args['val_percent']:g}% of {args['train_name']}"}
    if ctx.abort_requested:
        return "Aborted"
    splits = {"train": train, **({"val": val} if val is not None else {})}
    labels: list[str] = []
    targets: dict[str, np.ndarray] = {}
    try:
        if problem == "classification":
            labels = class_names(train.targets, args["train_name"])
        for split, table in splits.items():
            shown = args["val_name"] if split == "val" and args.get("val") else args["train_name"]
            if problem == "classification":
                targets[split] = label_indices(table, labels, shown)
            else:
                targets[split] = numeric_targets(table, shown)
    except GenericSourceError as e:
        raise TaskFailed(str(e)) from None
    ctx.reporter.progress(0.6)
    x = train.features.astype(np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-12] = 1.0  # a constant feature: left as it is, minus its mean
    for split, table in splits.items():
        np.save(ctx.path(features_name(split)), table.features.astype(np.float32), allow_pickle=False)
        np.save(ctx.path(targets_name(split)), targets[split], allow_pickle=False)
    if labels:
        write_labels(ctx.job_dir, labels)
    dataset = GenericDataset(
        path=ctx.job_dir,
        problem=problem,
        feature_names=train.feature_names,
        target_name=train.target_name,
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
        rows={split: len(table.features) for split, table in splits.items()},
    )
    for split in splits:
        y = targets[split]
        section = {"entries": int(len(y)), "source": sources[split]}
        if problem == "classification":
            section["per_class"] = np.bincount(y, minlength=len(labels)).tolist()
        else:
            section["target"] = target_stats(y)
        update_stats(ctx.job_dir, split, section)
    write_meta(ctx.job_dir, dataset)  # last: its presence says the folder is complete
    seconds = time.perf_counter() - started
    print(
        f"generic dataset: {dataset.rows} rows, {dataset.num_features} features, {problem} in {seconds:.2f}s",
        file=sys.stderr,
    )
    ctx.reporter.progress(1.0)
    return None


if __name__ == "__main__":
    run_worker(run_build)
