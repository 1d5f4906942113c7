"""A dataset job that imports Caffe LMDBs (the New Dataset form's "Import Caffe LMDB" method): the form's LMDBs
checked by their first record, and the job's tasks, one per split (digits.dataset.import_task)."""

from __future__ import annotations

from typing import Any

from digits.config import Settings
from digits.datapaths import path_rules
from digits.dataset.forms import FIELD_LABELS, DatasetForm
from digits.dataset.lmdb_import import ImportProblem, LmdbProbe, probe
from digits.job import Task
from digits.offload import native_lock

IMPORT_KIND = "dataset.import_lmdb"
# A process opens an LMDB once at a time (LMDB's rule); two people may name the same one together.
_LMDB_OPEN = native_lock()


def task_name(split: str) -> str:
    return f"import_db_{split}"


def _probe(path: str) -> LmdbProbe:
    with _LMDB_OPEN:
        return probe(path)


def probe_sources(form: DatasetForm) -> tuple[dict[str, LmdbProbe], dict[str, list[str]]]:
    """Read the first record of each LMDB the form names (run it off the event loop): ({split: probe}, {}) with the
    form's image settings set from the training LMDB's, or ({}, {field: [why]})."""
    probes, errors = {}, {}
    for split, path in form.lmdbs.items():
        try:
            probes[split] = _probe(path)
        except ImportProblem as e:
            errors[f"lmdb_{split}"] = [str(e)]
    if errors:
        return {}, errors
    first, val = probes["train"], probes.get("val")
    if val is not None and val.shape != first.shape:
        errors["lmdb_val"] = [
            f"its first record ({val.first_key}) is {val.shape.describe()}, but the {FIELD_LABELS['lmdb_train']}'s "
            f"({first.first_key}) is {first.shape.describe()}: a dataset's images are all one size"
        ]
        return {}, errors
    image = first.image_settings()
    form.channels, form.width, form.height = image["channels"], image["width"], image["height"]
    form.resize_mode, form.encoding, form.backend, form.compression = "squash", image["encoding"], "lmdb", "none"
    return probes, {}


def import_tasks(form: DatasetForm, probes: dict[str, LmdbProbe], settings: Settings) -> list[Task]:
    """One import task per split, validation after training (it takes the classes training found)."""
    tasks: list[Task] = []
    for split in form.splits:
        args: dict[str, Any] = {
            "split": split,
            "source": form.lmdbs[split],
            "first_key": probes["train"].first_key,
            "image": form.image_settings(),
            "labels_file": form.labels_file,
            "max_image_pixels": settings.max_image_pixels,
            **path_rules(settings).to_args(),
        }
        tasks.append(Task(task_name(split), IMPORT_KIND, args, depends_on=[tasks[-1].name] if tasks else []))
    return tasks


def import_extra(form: DatasetForm, probes: dict[str, LmdbProbe]) -> dict[str, Any]:
    """What the dataset page says about where an imported dataset came from (job.extra["import"])."""
    upload = form.uploads.get("lmdb_labels_file")
    return {
        "sources": dict(form.lmdbs),
        "entries": {split: p.entries for split, p in probes.items()},
        "labels_file": (upload[0].filename if upload else form.labels_file) or None,
    }
