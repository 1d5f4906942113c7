"""A model's training settings: what the form produces and the training worker, inference and downloads read.

They are kept once in job.json, as the arguments of the model's train task (schema_version 2; version 1 also
copied them into extra["settings"], and jobs written so are upgraded when they load). Torch-free.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from digits.folders.model import NETWORK_FILES
from digits.job import Job, register_migration

TRAIN_TASK = "train"
CAFFE_ENGINES = ("torch", "pycaffe")
DEFAULT_LR_POLICY = {"policy": "step", "lr_step_size": 33.0, "lr_step_gamma": 0.1}


@dataclass
class TrainSettings:
    """Everything the training worker needs besides the network text and the dataset, with the form's defaults."""

    framework: str = "caffe"
    # What runs a Caffe network: "torch" (our PyTorch compilation) or "pycaffe" (real Caffe, where it is built).
    # Jobs from before the choice existed trained on torch.
    caffe_engine: str = "torch"
    network_file: str = ""  # NETWORK_FILES[framework] unless given
    epochs: int = 30
    snapshot_interval: float = 1.0
    val_interval: float = 1.0
    seed: int = 0
    batch_size: int | None = None  # None: the network's own, or 64
    batch_accumulation: int = 1
    solver_type: str = "SGD"
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    rms_decay: float = 0.99
    lr_policy: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_LR_POLICY))
    shuffle: bool = True
    crop_size: int | None = None  # None: the network's own, or no crop
    use_mean: str = "image"
    augmentation: dict[str, Any] = field(default_factory=dict)
    # Weights to start from: a path relative to the job folder (a previous model's snapshot) or a server path.
    pretrained: str | None = None
    # Layers whose weights stay as they start (names or name prefixes; the form's "Frozen layers").
    frozen_layers: list[str] = field(default_factory=list)
    # Best epoch (digits/model/best_epoch.py): the validation value watched ("val_loss", "val_accuracy"; "" none),
    # and whether the run stops once `patience` validations did not improve on the best by more than min_delta.
    best_monitor: str = ""
    early_stopping: bool = False
    patience: int = 5
    min_delta: float = 0.0
    # The server's quotas when the job was submitted (workers do not read the server's settings).
    max_model_params: int | None = None
    max_snapshot_bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.network_file:
            self.network_file = NETWORK_FILES.get(self.framework, NETWORK_FILES["caffe"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrainSettings:
        """Settings from job.json; keys it does not know are left out, missing ones take the defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


def model_settings(job: Job) -> TrainSettings:
    """The settings a model job trains (or trained) with."""
    for task in job.tasks:
        if task.name == TRAIN_TASK:
            return TrainSettings.from_dict(task.args)
    return TrainSettings()


def input_shape(image: dict[str, Any], crop_size: int | None) -> tuple[int, int, int]:
    """(C, H, W) the network sees: the dataset's images, cropped when a crop size is set."""
    channels, height, width = int(image["channels"]), int(image["height"]), int(image["width"])
    if crop_size:
        return channels, crop_size, crop_size
    return channels, height, width


def iterations_per_epoch(entries: int, batch_size: int) -> int:
    """Iterations of one epoch: every training image once, in batches (the last one may be short)."""
    return max(1, math.ceil(entries / batch_size))


def _settings_once(d: dict) -> dict:
    """schema_version 1 -> 2: extra["settings"] (with extra's framework and network file) into the train task's
    arguments, where the worker read them anyway; its dataset_dir becomes extra's dataset_id alone."""
    extra = dict(d.get("extra") or {})
    kept = dict(extra.pop("settings", None) or {})
    for name in ("framework", "network_file"):
        if name in extra:
            kept.setdefault(name, extra.pop(name))
    tasks = []
    for task in d.get("tasks") or []:
        task = dict(task)
        if task.get("name") == TRAIN_TASK:
            args = {**kept, **(task.get("args") or {})}
            dataset_dir = args.pop("dataset_dir", None)
            if dataset_dir and not extra.get("dataset_id"):
                extra["dataset_id"] = os.path.basename(os.path.normpath(dataset_dir))
            task["args"] = args
        tasks.append(task)
    return {**d, "extra": extra, "tasks": tasks}


def register_migrations(model_type: str) -> None:
    register_migration(model_type, 1, _settings_once)
