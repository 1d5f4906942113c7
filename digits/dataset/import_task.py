"""The worker task that imports one split of a Caffe LMDB (digits.dataset.lmdb_import) into a dataset folder.

The training split's task runs first: it names the classes (from the labels file, or "0".."N-1" after the
highest label found) and writes the mean; the validation split's task then holds its labels to those classes.
"""

from __future__ import annotations

import collections
import os
import sys

import lmdb

from digits.dataset.create_db import disk_problem, save_mean, size_summary
from digits.dataset.forms import FIELD_LABELS
from digits.dataset.lmdb_import import ImportProblem, LabelOutOfRange, RecordShape, import_split, read_class_names
from digits.dataset.parse import read_rules
from digits.folders.dataset import db_name, list_name, read_labels, update_stats, write_labels
from digits.formats.images import set_max_pixels
from digits.worker_runtime import TaskFailed, WorkerContext

LABELS_FIELD = FIELD_LABELS["lmdb_labels_file"]


def _class_names(ctx: WorkerContext) -> list[str] | None:
    """The labels file's names (uploaded into the job folder, or a server path still allowed), or None."""
    given = ctx.args.get("labels_file")
    if not given:
        return None
    path = given if os.path.isabs(given) else ctx.path(given)
    if os.path.isabs(given) and not read_rules(ctx.args, ctx.job_dir).allows(os.path.realpath(given)):
        raise TaskFailed(f"{LABELS_FIELD}: {given} does not exist or is outside the data roots")
    try:
        names = read_class_names(path)
    except OSError as e:
        raise TaskFailed(f"{LABELS_FIELD}: cannot read it: {e.strerror or e}") from None
    if len(names) < 2:
        raise TaskFailed(
            f"{LABELS_FIELD}: it names {len(names)} class{'' if len(names) == 1 else 'es'}; a classification "
            "dataset needs at least 2 (one name per line, line i naming label i)"
        )
    return names


def _label_problem(e: LabelOutOfRange, what: str, n_labels: int | None, from_file: bool) -> str:
    if e.label < 0:
        return f"{what}: record {e.key} has label {e.label}; labels are whole numbers from 0"
    if from_file:
        return (
            f"{LABELS_FIELD}: it names {n_labels} classes (labels 0 to {n_labels - 1}), but record {e.key} of the "
            f"{what} has label {e.label}; give a labels file with a name for every label"
        )
    return (
        f"{what}: record {e.key} has label {e.label}, but the training LMDB's labels go from 0 to {n_labels - 1}; "
        f"give a labels file ({LABELS_FIELD}) naming every class when validation has classes training lacks"
    )


def run_import(ctx: WorkerContext) -> str | None:
    args = ctx.args
    split = args["split"]
    what = FIELD_LABELS[f"lmdb_{split}"]
    source = args["source"]
    if not read_rules(args, ctx.job_dir).allows(os.path.realpath(source)):
        raise TaskFailed(f"{what}: {source} does not exist or is outside the data roots")
    set_max_pixels(args.get("max_image_pixels"))
    image = args["image"]
    shape = RecordShape(int(image["channels"]), int(image["height"]), int(image["width"]))
    names = _class_names(ctx) if split == "train" else None
    from_file = bool(args.get("labels_file"))
    n_labels = len(names) if names is not None else (None if split == "train" else len(read_labels(ctx.job_dir)))
    try:
        result = import_split(
            source,
            ctx.path(db_name(split)),
            ctx.path(list_name(split)),
            shape,
            args["first_key"],
            n_labels,
            with_mean=split == "train",
            progress=ctx.reporter.progress,
            should_abort=lambda: ctx.abort_requested,
        )
    except LabelOutOfRange as e:
        raise TaskFailed(_label_problem(e, what, n_labels, from_file)) from None
    except ImportProblem as e:
        raise TaskFailed(f"{what}: {e}") from None
    except lmdb.Error as e:
        problem = disk_problem(e, ctx.job_dir, db_name(split))
        raise TaskFailed(problem or f"{what}: {source} cannot be read as an LMDB: {e}") from None
    if result is None:
        return "Aborted"
    if split == "train":
        if names is None:
            if result.highest_label < 1:
                raise TaskFailed(f"{what}: every record has label 0; a classification dataset needs at least 2 classes")
            names = [str(i) for i in range(result.highest_label + 1)]
        write_labels(ctx.job_dir, names)
        if result.mean is not None:
            save_mean(ctx.job_dir, result.mean)
    update_stats(
        ctx.job_dir,
        split,
        {
            "entries": result.entries,
            "per_class": result.per_class,
            "skipped": [],
            "sizes": size_summary(collections.Counter({(shape.width, shape.height): result.entries})),
            "seconds": round(result.seconds, 3),
            "images_per_second": round(result.entries / result.seconds, 1) if result.seconds else None,
            "source": source,
        },
    )
    print(
        f"{db_name(split)}: {result.entries} records imported from {source} in {result.seconds:.1f}s", file=sys.stderr
    )
    ctx.reporter.progress(1.0)
    return None
