"""What a dataset job folder holds, read for its page and JSON twin (DIGITS' shape)."""

from __future__ import annotations

import os
from typing import Any

from digits.folders.dataset import LABELS, MEAN, SPLITS, db_name, read_labels, read_stats
from digits.job import Job
from digits.status import Status

SPLIT_TITLES = {"train": "train", "val": "val", "test": "test"}


def skipped_files(stats: dict[str, Any]) -> list[dict[str, str]]:
    out = [{**item, "stage": "parse"} for item in stats.get("parse", {}).get("skipped", [])]
    for split in SPLITS:
        out += [{**item, "stage": f"create_db_{split}"} for item in stats.get(split, {}).get("skipped", [])]
    return out


def parse_folder_tasks(job: Job, parse: dict[str, Any]) -> list[dict[str, Any]]:
    """DIGITS' ParseFolderTasks: one per source folder (the training folder, then a separate validation or test
    folder), named by the splits it fills ("Parse Folder (train/val)", "Parse Folder (val)") with the images it
    gave each. Our job parses every folder in one task, whose status each entry shares. A dataset made from lists
    has none, as in DIGITS."""
    task = next((t for t in job.tasks if t.kind == "dataset.parse"), None)
    if task is None or task.args.get("method", "folder") != "folder":
        return []
    args = task.args
    fills = ["train"] + [s for s in ("val", "test") if float(args.get(f"pct_{s}") or 0) > 0]
    folders = [("train", "/".join(fills))] + [(s, s) for s in ("val", "test") if args.get(s)]
    found = {source["split"]: source for source in parse.get("sources", [])}
    if "sources" not in parse and parse:  # parsed before each folder's counts were kept: all on the first
        found["train"] = {"label_count": len(parse.get("labels", [])), "counts": parse.get("counts", {})}
    out = []
    for split, sets in folders:
        source = found.get(split, {})
        counts = source.get("counts", {})
        out.append(
            {
                "name": f"Parse Folder ({sets})",
                "status": task.status.value,
                "label_count": source.get("label_count", 0),
                "train_count": counts.get("train", 0),
                "val_count": counts.get("val", 0),
                "test_count": counts.get("test", 0),
            }
        )
    return out


def dataset_json(job: Job, job_dir: str) -> dict[str, Any]:
    stats = read_stats(job_dir)
    image = job.extra.get("image", {})
    parse = stats.get("parse", {})
    db_tasks = [t for t in job.tasks if t.kind in ("dataset.create_db", "dataset.import_lmdb")]  # built or imported
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status.value,
        "type": "Image Classification Dataset",
        "username": job.owner,
        "group": job.group,
        "creation time": job.created,
        "progress": round(job.progress, 4),
        "image": image,
        "labels": parse.get("labels") or read_labels(job_dir),
        "labels file": LABELS,
        "mean file": MEAN if os.path.exists(os.path.join(job_dir, MEAN)) else None,
        "ParseFolderTasks": parse_folder_tasks(job, parse),
        "CreateDbTasks": [
            {
                "name": f"Create DB ({t.args['split']})",
                "split": t.args["split"],
                "status": t.status.value,
                "entries": stats.get(t.args["split"], {}).get("entries") if t.status == Status.DONE else None,
                "image_width": image.get("width"),
                "image_height": image.get("height"),
                "image_channels": image.get("channels"),
                "backend": image.get("backend", "lmdb"),
                "encoding": image.get("encoding"),
                "compression": image.get("compression", "none"),
                "db_name": db_name(t.args["split"]),
                "mean_file": MEAN if t.args["split"] == "train" else None,
            }
            for t in db_tasks
        ],
        "skipped": skipped_files(stats),
        "dropped_classes": parse.get("dropped_classes", []),
        "stats": stats,
        "history": job.history.to_list(),
    }
