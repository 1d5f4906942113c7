"""The model wing: image classification models trained on the PyTorch engine."""

import os

from digits.datapaths import PathRefused, check_server_path, inside
from digits.model.lr_finder import LR_FINDER_KIND, lr_finder_access
from digits.model.settings import register_migrations
from digits.sandbox import ConfinementError
from digits.task_kinds import register_task_kind

MODEL_TYPE = "image-classification-model"
# A model made from uploaded weights (digits/model/pretrained.py): its one task imports them, nothing trains.
IMPORT_KIND = "model.import"
GENERIC_TRAIN_KIND = "model.generic_train"


def train_access(workspace, job, task) -> dict:
    """What a training worker reads besides its own folder: its dataset's folder and, when it starts from
    weights, that one file. Decided from the server's records and settings, not from the worker's folder."""
    store = workspace.store
    datasets = [d for d in job.depends_on if (dep := store.get(d)) is not None and dep.category == "dataset"]
    access = {"read_jobs": [store.job_dir(d) for d in datasets], "read_files": [], "data": []}
    pretrained = (task.args or {}).get("pretrained")
    if pretrained:
        path = os.path.realpath(os.path.join(store.job_dir(job.id), pretrained))
        if inside(path, os.path.realpath(store.jobs_dir)):
            access["read_files"].append(path)  # a previous model's snapshot; the confiner checks it is one file
        else:
            try:
                access["data"].append(check_server_path(path, workspace.settings, want_dir=False))
            except PathRefused as e:
                raise ConfinementError(f"the pretrained weights cannot be read: {e}") from None
    return access


register_task_kind("model.train", "digits.engine.train_worker", train_access)
# Models over generic (tabular) data: digits/model/generic_views.py makes them, this worker trains them.
register_task_kind(GENERIC_TRAIN_KIND, "digits.engine.generic_train", train_access)
register_task_kind(LR_FINDER_KIND, "digits.engine.lr_finder", lr_finder_access)  # digits/model/lr_finder.py
register_task_kind(IMPORT_KIND, "digits.engine.import_worker")  # reads its own folder only (the uploads)
register_migrations(MODEL_TYPE)
