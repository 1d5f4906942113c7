"""The dataset as the training worker sees it: records decoded from the LMDBs, the mean, and batches on the device.

A dataset folder is the contract (labels.txt, <split>_db/, mean.binaryproto, image settings), so a dataset
made by our form, by `digits.tools.create_db` or by other tools that write the same files reads the same way.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from digits.formats.caffe_pb import datum_to_array, datums_to_arrays, read_mean
from digits.formats.lmdb_io import LmdbReader
from digits.worker_runtime import TaskFailed

# Datasets up to this size are decoded once and kept in memory (the fastest way to feed a CPU or one GPU);
# larger ones are streamed by DataLoader worker processes.
PRELOAD_LIMIT_BYTES = 8 << 30
DECODE_CHUNK = 512


@dataclass
class DatasetFolder:
    path: str
    labels: list[str]
    image: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int, int]:
        return int(self.image["channels"]), int(self.image["height"]), int(self.image["width"])

    def db(self, split: str) -> str | None:
        path = os.path.join(self.path, f"{split}_db")
        return path if os.path.isdir(path) else None


def open_dataset(path: str) -> DatasetFolder:
    """Read a dataset folder's labels and image settings (from its job.json, or image.json from the CLI tool)."""
    try:
        with open(os.path.join(path, "labels.txt"), encoding="utf-8") as fh:
            labels = [line.rstrip("\n") for line in fh if line.strip()]
    except OSError as e:
        raise TaskFailed(f"dataset folder {path} has no readable labels.txt ({e.strerror})") from None
    image = None
    for name in ("job.json", "image.json"):
        try:
            with open(os.path.join(path, name)) as fh:
                data = json.load(fh)
            image = data.get("extra", {}).get("image") if name == "job.json" else data
            if image:
                break
        except (OSError, ValueError):
            continue
    if not image:
        raise TaskFailed(f"dataset folder {path} does not say its image size (no job.json or image.json)")
    return DatasetFolder(path, labels, image)


def read_records(db_path: str) -> list[bytes]:
    with LmdbReader(db_path) as db:
        return [raw for _, raw in db.items()]


def decode_split(db_path: str, processes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All records of a split as (uint8 N x C x H x W, int64 labels), decoded on every core."""
    raws = read_records(db_path)
    if not raws:
        raise TaskFailed(f"{os.path.basename(db_path)} holds no records")
    chunks = [raws[i : i + DECODE_CHUNK] for i in range(0, len(raws), DECODE_CHUNK)]
    # spawn, not fork: this process already runs torch's threads, and a forked child can inherit a held lock.
    with multiprocessing.get_context("spawn").Pool(processes or os.cpu_count()) as pool:
        parts = pool.map(datums_to_arrays, chunks)
    images = np.concatenate([p[0] for p in parts]).transpose(0, 3, 1, 2)
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


class LmdbRecords(torch.utils.data.Dataset):
    """Records read one by one (for datasets too big to keep in memory); each worker opens its own LMDB."""

    def __init__(self, db_path: str):
        self.db_path = db_path
        with LmdbReader(db_path) as db:
            self.keys = [key for key, _ in db.items()]
        self._db: LmdbReader | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._db is None:
            self._db = LmdbReader(self.db_path)
        arr, label = datum_to_array(self._db.get(self.keys[index]))
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))), label


def split_bytes(db_path: str, shape: tuple[int, int, int]) -> int:
    with LmdbReader(db_path) as db:
        return len(db) * int(np.prod(shape))


def load_mean(dataset: DatasetFolder, use_mean: str) -> torch.Tensor | None:
    """The mean to subtract, C x H x W (image) or C x 1 x 1 (pixel), in 0..255 pixel units; None for 'none'."""
    if use_mean == "none":
        return None
    path = os.path.join(dataset.path, "mean.binaryproto")
    if not os.path.exists(path):
        raise TaskFailed(f"use_mean={use_mean} but the dataset has no mean.binaryproto")
    mean = torch.from_numpy(read_mean(path)).permute(2, 0, 1).contiguous()
    if use_mean == "pixel":
        mean = mean.mean(dim=(1, 2), keepdim=True)
    return mean
