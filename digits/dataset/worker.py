"""The dataset worker: `python -m digits.dataset.worker JOB_DIR --task NAME` parses lists or builds a split's DB."""

from __future__ import annotations

import os
import sys

from digits.dataset.create_db import ImageSettings, build_db, disk_problem, save_mean
from digits.dataset.import_task import run_import
from digits.dataset.parse import parse_folders, parse_textfiles, write_lists
from digits.folders.dataset import db_name, list_name, read_labels, read_list, update_stats
from digits.formats.images import set_max_pixels
from digits.worker_runtime import TaskFailed, WorkerContext, run_worker


def run_parse(ctx: WorkerContext) -> str | None:
    args = ctx.args
    if args["method"] == "textfile":
        result = parse_textfiles(args, ctx.job_dir)
    else:
        result = parse_folders(args, ctx.job_dir)
    write_lists(ctx.job_dir, result)
    for item in result.skipped:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    update_stats(
        ctx.job_dir,
        "parse",
        {
            "labels": result.labels,
            "counts": result.counts(),
            "per_class": result.per_class(),
            "skipped": result.skipped,
            "dropped_classes": result.dropped_classes,
            "sources": result.sources,
        },
    )
    ctx.reporter.progress(1.0)
    return None


def run_create_db(ctx: WorkerContext) -> str | None:
    split = ctx.args["split"]
    settings = ImageSettings.from_dict(ctx.args["image"])
    set_max_pixels(ctx.args.get("max_image_pixels"))  # a larger image is skipped, named, before it is decoded
    entries = read_list(ctx.path(list_name(split)))
    n_labels = len(read_labels(ctx.job_dir))
    result = build_db(
        entries,
        ctx.path(db_name(split)),
        settings,
        n_labels,
        with_mean=split == "train",
        progress=ctx.reporter.progress,
        should_abort=lambda: ctx.abort_requested,
    )
    if result is None:
        return "Aborted"
    for item in result.skipped:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    if result.mean is not None:
        save_mean(ctx.job_dir, result.mean)
    update_stats(
        ctx.job_dir,
        split,
        {
            "entries": result.entries,
            "per_class": result.per_class,
            "skipped": result.skipped,
            "sizes": result.sizes,
            "seconds": round(result.seconds, 3),
            "images_per_second": round(len(entries) / result.seconds, 1) if result.seconds else None,
        },
    )
    print(
        f"{db_name(split)}: {result.entries} records in {result.seconds:.1f}s, {len(result.skipped)} skipped",
        file=sys.stderr,
    )
    return None


TASKS = {"dataset.parse": run_parse, "dataset.create_db": run_create_db, "dataset.import_lmdb": run_import}


def main(ctx: WorkerContext) -> str | None:
    try:
        return TASKS[ctx.task["kind"]](ctx)
    except OSError as e:
        name = e.filename if isinstance(e.filename, str) else None
        what = os.path.relpath(name, os.path.dirname(ctx.job_dir)) if name else "the dataset's files"
        problem = disk_problem(e, ctx.job_dir, what)
        if problem is None:
            raise
        raise TaskFailed(problem) from None


if __name__ == "__main__":
    run_worker(main)
