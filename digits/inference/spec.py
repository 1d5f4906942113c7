"""What a worker needs to load a model job's snapshot, resolved in the web process (torch-free)."""

from __future__ import annotations

import os
from typing import Any

from digits.datapaths import allowed_roots
from digits.errors import Conflict, NotFound
from digits.folders import file_in
from digits.folders.dataset import LABELS, read_labels
from digits.folders.model import RESULTS_DIR, Snapshot, epochs_text, model_dataset_dir, pick_snapshot, snapshots
from digits.job import Job, is_job_id
from digits.model.settings import model_settings
from digits.sandbox import ConfinementError


def choose_snapshot(job: Job, job_dir: str, wanted: str | None) -> Snapshot:
    """The snapshot for `wanted` (an epoch; empty: the latest). 404 listing the epochs when there is none."""
    snaps = snapshots(job, job_dir)
    if not snaps:
        raise Conflict(f"model {job.id} has no snapshot yet (it is {job.status.value})")
    snap = pick_snapshot(snaps, wanted)
    if snap is None:
        raise NotFound(f"model {job.id} has no snapshot for epoch {wanted!s:.40} (epochs: {epochs_text(snaps)})")
    return snap


def dataset_dir(job: Job, job_dir: str) -> str:
    """Where the model's labels, image settings and mean are read: its own copy (digits/folders/model.py
    DATASET_COPY), else its dataset's folder beside it."""
    folder = model_dataset_dir(job_dir, job.extra.get("dataset_id", ""))
    if folder is None:
        raise NotFound(f"model {job.id} names no dataset")
    return folder


def records_dir(job: Job, job_dir: str) -> str:
    """The dataset job's own folder beside the model's ("" when the model names none)."""
    dataset_id = job.extra.get("dataset_id", "")
    return os.path.join(os.path.dirname(os.path.normpath(job_dir)), dataset_id) if is_job_id(dataset_id) else ""


def dataset_labels(folder: str) -> list[str]:
    """The class names of a model's dataset folder; 404 when the dataset is gone."""
    labels = read_labels(folder)
    if not labels:
        raise NotFound(f"the model's dataset ({os.path.basename(folder)}) is gone: it has no {LABELS}")
    return labels


def model_spec(job: Job, job_dir: str, wanted_epoch: str | None) -> dict[str, Any]:
    """The request's "model": which snapshot, network, dataset folder and preprocessing settings to load.

    The key names the weights exactly (job, epoch and the snapshot file's mtime), so a worker that holds
    the key holds these weights.
    """
    snap = choose_snapshot(job, job_dir, wanted_epoch)
    settings = model_settings(job)
    path = os.path.join(job_dir, snap.name)
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        raise NotFound(f"model {job.id}: snapshot {snap.name} is gone") from None
    network = file_in(job_dir, settings.network_file)
    if network is None:
        raise NotFound(f"model {job.id}: its network file is gone")
    return {
        "key": f"{job.id}@{snap.label}@{mtime}",
        "job_id": job.id,
        "epoch": snap.epoch,
        "epoch_label": snap.label,
        "snapshot": path,
        "framework": settings.framework,
        "network_file": network,
        "dataset_dir": dataset_dir(job, job_dir),
        # The dataset's own folder, for what only it holds: the split records (the hardest-records pass).
        "records_dir": records_dir(job, job_dir),
        "use_mean": settings.use_mean,
        "crop_size": settings.crop_size,
    }


def worker_policy(workspace, spec: dict[str, Any]) -> dict[str, Any]:
    """What the worker serving a model may touch (digits/sandbox.py): the model's folder and its dataset's to
    read, the model's results folder to write, and the server paths classify-many may name. Decided from the
    server's records, not from the model's job.json."""
    store = workspace.store
    job = store.get(spec.get("job_id") or "")
    if job is None or job.category != "model":
        raise ConfinementError(f"no model {spec.get('job_id')!r}")
    job_dir = store.job_dir(job.id)
    datasets = [
        store.job_dir(d) for d in job.depends_on if (dep := store.get(d)) is not None and dep.category == "dataset"
    ]
    roots = allowed_roots(workspace.settings)
    return workspace.confiner.policy(
        write=[os.path.join(job_dir, RESULTS_DIR)],
        read_jobs=[job_dir, *datasets],
        data=[None] if roots is None else roots,
    )
