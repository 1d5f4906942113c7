"""What a dataset job folder holds, read for its page and JSON twin (DIGITS' shape)."""

from __future__ import annotations

import os
from typing import Any

from digits.folders.dataset import LABELS, MEAN, SPLITS, read_labels, read_stats
from digits.job import Job
from digits.status import Status

SPLIT_TITLES = {"train": "train", "val": "val", "test": "test"}


def skipped_files(stats: dict[str, Any]) -> list[dict[str, str]]:
    out = [{**item, "stage": "parse"} for item in stats.get("parse", {}).get("skipped", [])]
    for split in SPLITS:
        out += [{**item, "stage": f"create_db_{split}"} for item in stats.get(split, {}).get("skipped", [])]
    return out


def dataset_json(job: Job, job_dir: str) -> dict[str, Any]:
    stats = read_stats(job_dir)
    image = job.extra.get("image", {})
    parse = stats.get("parse", {})
    counts = parse.get("counts", {})
    parse_task = job.tasks[0]
    db_tasks = [t for t in job.tasks if t.kind == "dataset.create_db"]
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
        "ParseFolderTasks": [
            {
                "name": "Parse Folder" if job.form.get("method", "folder") == "folder" else "Parse Lists",
                "status": parse_task.status.value,
                "label_count": len(parse.get("labels", [])),
                "train_count": counts.get("train", 0),
                "val_count": counts.get("val", 0),
                "test_count": counts.get("test", 0),
            }
        ],
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
            }
            for t in db_tasks
        ],
        "skipped": skipped_files(stats),
        "dropped_classes": parse.get("dropped_classes", []),
        "stats": stats,
        "history": job.history.to_list(),
    }
