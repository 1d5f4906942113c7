"""A generic dataset's folder (numeric features and a label or target per row, DIGITS' "generic" datasets).

    generic.json              problem (classification or regression), feature names, target name, the training
                              split's feature mean and std (the model normalizes with them), rows per split
    labels.txt                classification: the class names, in label order (label i is line i)
    features_<split>.npy      float32 rows x features
    targets_<split>.npy       int64 labels (classification) or float32 targets (regression)
    stats.json                rows, class counts or target range and histogram (by split)
    upload/                   the uploaded CSV or NumPy files

Torch-free: the web process reads it for the dataset page, the training and inference workers for the data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digits.folders.dataset import LABELS, read_labels, read_stats
from digits.job import is_job_id
from digits.store import write_json_atomic

GENERIC_JSON = "generic.json"
GENERIC_DATASET_TYPE = "generic-dataset"
PROBLEMS = ("classification", "regression")


def features_name(split: str) -> str:
    return f"features_{split}.npy"


def targets_name(split: str) -> str:
    return f"targets_{split}.npy"


class GenericFolderError(Exception):
    """A folder that is no generic dataset; the message names the missing or broken file."""


@dataclass
class GenericDataset:
    """An opened generic dataset folder."""

    path: str
    problem: str
    feature_names: list[str]
    target_name: str
    mean: list[float]
    std: list[float]
    rows: dict[str, int] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def num_outputs(self) -> int:
        """What the network's last layer gives: one score per class, or the one predicted value."""
        return len(self.labels) if self.problem == "classification" else 1

    def has(self, split: str) -> bool:
        return os.path.isfile(os.path.join(self.path, features_name(split)))

    def load(self, split: str, mmap: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(features, targets) of a split; GenericFolderError when it is missing or damaged."""
        mode = "r" if mmap else None
        try:
            x = np.load(os.path.join(self.path, features_name(split)), mmap_mode=mode, allow_pickle=False)
            y = np.load(os.path.join(self.path, targets_name(split)), mmap_mode=mode, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise GenericFolderError(f"the {split} split of generic dataset {self.path} cannot be read: {e}") from None
        if x.ndim != 2 or x.shape[1] != self.num_features or len(y) != len(x):
            raise GenericFolderError(
                f"the {split} split of generic dataset {self.path} does not match its {GENERIC_JSON}"
            )
        return x, y

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """Features as the network sees them: minus the training mean, over the training std (float32)."""
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32)

    def to_meta(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "features": self.feature_names,
            "target": self.target_name,
            "mean": self.mean,
            "std": self.std,
            "rows": self.rows,
        }


def is_generic_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, GENERIC_JSON))


def write_meta(folder: str, dataset: GenericDataset) -> None:
    write_json_atomic(os.path.join(folder, GENERIC_JSON), dataset.to_meta())


def open_generic(path: str) -> GenericDataset:
    """Read a generic dataset folder's generic.json (and labels.txt for classification)."""
    try:
        with open(os.path.join(path, GENERIC_JSON), encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as e:
        raise GenericFolderError(f"{path} has no readable {GENERIC_JSON} ({e})") from None
    try:
        dataset = GenericDataset(
            path=path,
            problem=str(meta["problem"]),
            feature_names=[str(n) for n in meta["features"]],
            target_name=str(meta.get("target", "")),
            mean=[float(v) for v in meta["mean"]],
            std=[float(v) for v in meta["std"]],
            rows={str(k): int(v) for k, v in (meta.get("rows") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as e:
        raise GenericFolderError(f"{path}/{GENERIC_JSON} is missing or has a bad field: {e}") from None
    if dataset.problem not in PROBLEMS:
        raise GenericFolderError(f"{path}/{GENERIC_JSON}: problem must be one of {', '.join(PROBLEMS)}")
    if dataset.problem == "classification":
        dataset.labels = read_labels(path)
        if len(dataset.labels) < 2:
            raise GenericFolderError(f"{path} has no {LABELS} with at least 2 classes")
    return dataset


def generic_summary(path: str) -> dict[str, Any]:
    """What the dataset page and its JSON twin show (an empty dict while the folder is being built)."""
    try:
        dataset = open_generic(path)
    except GenericFolderError:
        return {}
    return {
        **{k: v for k, v in dataset.to_meta().items() if k not in ("mean", "std")},
        "feature stats": [
            {"name": n, "mean": m, "std": s}
            for n, m, s in zip(dataset.feature_names, dataset.mean, dataset.std, strict=True)
        ],
        "labels": dataset.labels,
        "stats": read_stats(path),
    }


# ---- models over generic data ----------------------------------------------------------------------------------
GENERIC_MODEL_TYPE = "generic-model"
# A model's own copy of what it needs of its generic dataset (generic.json, labels.txt), made when training
# starts, so prediction keeps working when the dataset folder is gone (the image models' dataset/ copy).
GENERIC_COPY = "generic_dataset"


def copy_generic_essentials(dataset: GenericDataset, job_dir: str) -> str:
    """Write the dataset's generic.json (and labels.txt) into the model folder's generic_dataset/."""
    target = os.path.join(job_dir, GENERIC_COPY)
    os.makedirs(target, exist_ok=True)
    if dataset.labels:
        with open(os.path.join(target, LABELS), "w", encoding="utf-8") as fh:
            fh.writelines(label + "\n" for label in dataset.labels)
    write_meta(target, dataset)  # atomic, and written last: a reader that sees it sees the labels
    return target


def model_generic_dir(job_dir: str, dataset_id: str) -> str | None:
    """Where a generic model's feature names, normalization and labels are read: its own copy, else its dataset's
    folder beside it (None when it names none)."""
    own = os.path.join(job_dir, GENERIC_COPY)
    if is_generic_folder(own) and not os.path.islink(own):
        return own
    if not is_job_id(dataset_id or ""):
        return None
    beside = os.path.join(os.path.dirname(os.path.normpath(job_dir)), dataset_id)
    return beside if is_generic_folder(beside) else None
