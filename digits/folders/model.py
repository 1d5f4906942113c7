"""A model job folder: what training, inference, downloads and pages read and write there (torch-free).

    network.prototxt | network.py      the network as written (Caffe prototxt, or PyTorch source)
    snapshot_epoch_<E>.pt              weights, optimizer, scheduler and RNG state at epoch E (torch.save)
    snapshot_epoch_<E>.caffemodel      a job trained on real Caffe (pycaffe): Caffe's weights and solver state at
    snapshot_epoch_<E>.solverstate     epoch E (the .pt beside them holds the same weights for our engine)
    train.prototxt, val.prototxt,      what such a job gave Caffe: the network's train and val stages, fed from
    solver.prototxt                    Python (an Input layer in place of the data layer), and its solver
    deploy_epoch_<E>.ts / .json        the network traced for deployment, and how to feed it
    metrics.jsonl                      every metric the worker reported (the store's, for every job)
    metrics.cache.npz                  metrics.jsonl as parsed by the web server up to an offset (rebuilt when unsure)
    started_from.json                  what training started from, written by the worker before its first step:
                                       the start weights' file, each layer loaded, new (and why) or frozen
    best_epoch.json                    the best validation so far when the settings watch one (model/best_epoch.py):
                                       monitor, value, epoch, its snapshot, and why the run stopped early
    results/                           pictures made by classify-many (confusion matrices)
    dataset/                           what the model needs of its dataset, copied when training starts: labels.txt,
                                       image.json (size, channels, resize mode), mean.binaryproto and mean.png, so
                                       classify and download keep working when the dataset folder is gone

E is the epoch label: "3" at the end of an epoch, "1.73" between epochs (an abort, a fractional interval).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from digits.folders import file_in
from digits.folders.dataset import IMAGE_JSON, LABELS, MEAN, MEAN_PNG, DatasetFolder, read_labels
from digits.job import Job, is_job_id
from digits.store import METRICS_FILE, write_json_atomic

NETWORK_FILES = {"caffe": "network.prototxt", "torch": "network.py"}
SNAPSHOT_RE = re.compile(r"^snapshot_epoch_(\d+(?:\.\d+)?)\.pt$")
CAFFE_STATE_RE = re.compile(r"^snapshot_epoch_(\d+(?:\.\d+)?)\.solverstate$")
CAFFE_NETS = {"train": "train.prototxt", "val": "val.prototxt", "solver": "solver.prototxt"}
RESULTS_DIR = "results"
DATASET_COPY = "dataset"
METRICS_CACHE = "metrics.cache.npz"
START_RECORD = "started_from.json"
BEST_RECORD = "best_epoch.json"


def epoch_label(epoch: float) -> str:
    """3.0 -> "3", 1.7333 -> "1.73", 0.9956 -> "0.9956": how an epoch is written in file names and shown to people.

    Two decimals, unless they would round a partial epoch to a whole one (a fractional snapshot interval ends just
    short of the epoch): then up to four, so the label never reads as the epoch's end nor collides with its snapshot.
    """
    epoch = float(epoch)
    if epoch.is_integer():
        return str(int(epoch))
    for places in (2, 4):
        text = f"{epoch:.{places}f}".rstrip("0")
        if not text.endswith("."):
            return text
    return f"{epoch:.6f}".rstrip("0").rstrip(".")


def snapshot_name(epoch: float) -> str:
    return f"snapshot_epoch_{epoch_label(epoch)}.pt"


def caffe_snapshot_names(label: str) -> tuple[str, str]:
    """(weights, solver state) that real Caffe's snapshot of this epoch label is kept as."""
    return f"snapshot_epoch_{label}.caffemodel", f"snapshot_epoch_{label}.solverstate"


def latest_solverstate(job_dir: str) -> str | None:
    """The real-Caffe solver state with the most training in it (what a resumed pycaffe run restores)."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(job_dir), "snapshot_epoch_*.solverstate")):
        m = CAFFE_STATE_RE.match(os.path.basename(path))
        if m:
            found.append((float(m.group(1)), path))
    return max(found)[1] if found else None


def deploy_names(label: str) -> tuple[str, str]:
    """(traced network, its description) exported for the snapshot of this epoch label."""
    return f"deploy_epoch_{label}.ts", f"deploy_epoch_{label}.json"


def label_of(snapshot: str) -> str | None:
    """The epoch label of a snapshot file name; None for any other name."""
    m = SNAPSHOT_RE.match(os.path.basename(snapshot))
    return m.group(1) if m else None


@dataclass(frozen=True)
class Snapshot:
    """A snapshot of a model: the epoch its worker reported (a whole number at the end of an epoch) and its file
    in the job folder."""

    epoch: int | float
    name: str
    best: bool = False  # the snapshot of the model's best validation (best_epoch.json)

    @property
    def label(self) -> str:
        return label_of(self.name) or epoch_label(self.epoch)


def snapshots(job: Job, job_dir: str) -> list[Snapshot]:
    """The snapshots the job recorded that are on disk, oldest first; the best one (best_epoch.json) says so."""
    found: dict[str, Snapshot] = {}
    best = (read_best_record(job_dir) or {}).get("snapshot")
    for task in job.tasks:
        for snap in task.snapshots:
            if file_in(job_dir, snap.get("path")):
                found[snap["path"]] = Snapshot(snap["epoch"], snap["path"], best=snap["path"] == best)
    return sorted(found.values(), key=lambda s: s.epoch)


def default_snapshot(snaps: list[Snapshot]) -> Snapshot | None:
    """What classify, downloads and a new model's start use when no epoch is asked for: the best, else the latest."""
    return next((s for s in snaps if s.best), snaps[-1] if snaps else None)


def pick_snapshot(snaps: list[Snapshot], wanted: str | None) -> Snapshot | None:
    """The snapshot for `wanted` (an epoch as a person types it: "3", "1.73" or the exact 1.7333); the best (else
    the latest) when nothing is wanted; None when there is no such snapshot."""
    if not snaps:
        return None
    if not wanted:
        return default_snapshot(snaps)
    try:
        value = float(wanted)
    except ValueError:
        return None
    for snap in snaps:
        if abs(float(snap.label) - value) < 1e-6 or abs(snap.epoch - value) < 1e-6:
            return snap
    return None


def epochs_text(snaps: Iterable[Snapshot]) -> str:
    return ", ".join(s.label for s in snaps)


def snapshots_on_disk(job_dir: str) -> list[tuple[float, str]]:
    """(epoch, path) of every snapshot file in the folder, oldest first (what a resumed run looks for)."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(job_dir), "snapshot_epoch_*.pt")):
        label = label_of(path)
        if label is not None:
            found.append((float(label), path))
    return sorted(found)


def latest_snapshot(job_dir: str) -> str | None:
    """The snapshot file with the most training in it."""
    found = snapshots_on_disk(job_dir)
    return found[-1][1] if found else None


def read_metrics(job_dir: str) -> dict[str, dict[str, list[list[float]]]]:
    """metrics.jsonl as {phase: {name: [[epoch, value], ...]}}, in the order they were reported."""
    out: dict[str, dict[str, list[list[float]]]] = {}
    for m in metric_lines(job_dir):
        series = out.setdefault(m.get("phase", "train"), {}).setdefault(m.get("name", "?"), [])
        series.append([m.get("epoch"), m.get("value")])
    return out


def metric_lines(job_dir: str) -> list[dict[str, Any]]:
    """Every line of metrics.jsonl that is a JSON object."""
    out = []
    try:
        with open(os.path.join(job_dir, METRICS_FILE), encoding="utf-8") as fh:
            for line in fh:
                try:
                    m = json.loads(line)
                except ValueError:
                    continue
                if isinstance(m, dict):
                    out.append(m)
    except OSError:
        pass
    return out


START_RECORD_MAX_BYTES = 4 << 20  # a network of thousands of layers fits; a file a worker filled with junk does not


def read_start_record(job_dir: str) -> dict[str, Any] | None:
    """started_from.json as the page and the JSON twin show it: {"source": {"path", "file", "format", "model_id"}
    or None, "loaded": [{"layer", "tensors"}], "new": [{"layer", "reason", "shapes"}], "frozen": [{"layer", "by"}],
    "unused": [layer names]}. None when the model recorded nothing (no start weights, nothing frozen) or the file
    is not such a record. The worker that wrote it may run a member's code: the file is read through file_in and
    only the expected fields, of the expected types, come out."""
    path = file_in(job_dir, START_RECORD)
    if path is None or os.path.getsize(path) > START_RECORD_MAX_BYTES:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None

    def entries(key: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
        items = raw.get(key)
        out = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("layer"), str):
                out.append({f: item.get(f) for f in ("layer", *fields)})
        return out

    source = raw.get("source")
    if isinstance(source, dict):
        source = {k: str(source[k]) for k in ("path", "file", "format", "model_id") if source.get(k) is not None}
    else:
        source = None
    new = entries("new", ("reason", "shapes"))
    for item in new:
        shapes = item["shapes"] if isinstance(item["shapes"], list) else []
        item["shapes"] = [
            {"blob": str(s.get("blob")), "file": _dims(s.get("file")), "network": _dims(s.get("network"))}
            for s in shapes
            if isinstance(s, dict)
        ]
        item["reason"] = str(item["reason"] or "")
    unused = raw.get("unused")
    return {
        "source": source,
        "loaded": [
            {**e, "tensors": e["tensors"] if isinstance(e["tensors"], int) else None}
            for e in entries("loaded", ("tensors",))
        ],
        "new": new,
        "frozen": [{**e, "by": str(e["by"] or "")} for e in entries("frozen", ("by",))],
        "unused": [u for u in unused if isinstance(u, str)] if isinstance(unused, list) else [],
    }


def read_best_record(job_dir: str) -> dict[str, Any] | None:
    """best_epoch.json as {"monitor", "mode", "value", "epoch", "snapshot", "early_stopping", "patience",
    "min_delta", "stopped": {"epoch", "reason"} or None}; None when the model watches no value, has not validated
    yet, or the file is not such a record. Read defensively, as started_from.json (a member's code may run in the
    worker that writes it): only the expected fields, of the expected types."""
    path = file_in(job_dir, BEST_RECORD)
    if path is None or os.path.getsize(path) > 64 << 10:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("value"), int | float):
        return None
    if not isinstance(raw.get("epoch"), int | float) or raw.get("monitor") not in ("val_loss", "val_accuracy"):
        return None
    stopped = raw.get("stopped")
    if isinstance(stopped, dict) and isinstance(stopped.get("epoch"), int | float):
        stopped = {"epoch": stopped["epoch"], "reason": str(stopped.get("reason") or "")[:500]}
    else:
        stopped = None
    snapshot = raw.get("snapshot")
    return {
        "monitor": raw["monitor"],
        "mode": "min" if raw["monitor"] == "val_loss" else "max",
        "value": float(raw["value"]),
        "epoch": float(raw["epoch"]),
        "snapshot": snapshot if isinstance(snapshot, str) and SNAPSHOT_RE.match(snapshot) else None,
        "early_stopping": bool(raw.get("early_stopping")),
        "patience": raw["patience"] if isinstance(raw.get("patience"), int) else None,
        "min_delta": float(raw["min_delta"]) if isinstance(raw.get("min_delta"), int | float) else 0.0,
        "stopped": stopped,
    }


def remove_snapshot_files(job_dir: str, label: str) -> None:
    """Remove the snapshot of this epoch label and what was exported beside it (deploy_epoch_<E>.*)."""
    doomed = [os.path.join(job_dir, f"snapshot_epoch_{label}.pt")]
    doomed += glob.glob(os.path.join(glob.escape(job_dir), glob.escape(f"deploy_epoch_{label}.") + "*"))
    for path in doomed:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _dims(shape: Any) -> list[int] | None:
    if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
        return shape
    return None


# ---- the model's own copy of what it needs of its dataset -----------------------------------------------------
def copy_dataset_essentials(dataset: DatasetFolder, job_dir: str) -> str:
    """Copy labels, image settings and mean image of `dataset` into the model folder's dataset/ (replacing an
    older copy as a whole: a reader sees the old set or the new one). Returns the copy's folder."""
    target = os.path.join(job_dir, DATASET_COPY)
    staging = os.path.join(job_dir, f".{DATASET_COPY}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    with open(os.path.join(staging, LABELS), "w", encoding="utf-8") as fh:
        fh.writelines(label + "\n" for label in dataset.labels)
    write_json_atomic(os.path.join(staging, IMAGE_JSON), dataset.image)
    for name in (MEAN, MEAN_PNG):
        source = file_in(dataset.path, name)
        if source:
            shutil.copyfile(source, os.path.join(staging, name))
    old = os.path.join(job_dir, f".{DATASET_COPY}.old.{os.getpid()}")
    if os.path.isdir(target):
        os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def own_dataset_copy(job_dir: str) -> str | None:
    """The model folder's dataset/ when it holds the labels and image settings (models trained before this
    copy existed have none)."""
    folder = os.path.join(job_dir, DATASET_COPY)
    if os.path.isdir(folder) and not os.path.islink(folder) and read_labels(folder):
        if file_in(folder, IMAGE_JSON):
            return folder
    return None


def model_dataset_dir(job_dir: str, dataset_id: str) -> str | None:
    """Where a model's labels, image settings and mean are read: its own copy, else its dataset's folder beside
    it (None when it names no dataset)."""
    own = own_dataset_copy(job_dir)
    if own:
        return own
    if not is_job_id(dataset_id or ""):
        return None
    return os.path.join(os.path.dirname(os.path.normpath(job_dir)), dataset_id)
