"""The dataset as the training worker sees it: records decoded from the LMDBs, the mean, and batches on the device.

The folder itself (its files, labels, image settings) is digits.folders.dataset.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from digits.engine.trainer import Split
from digits.folders.dataset import MEAN, DatasetFolder, db_labels_path
from digits.formats.caffe_pb import datum_label, datum_to_array, read_mean
from digits.formats.datum_batch import RecordError, decode_records
from digits.formats.lmdb_io import LmdbReader
from digits.worker_runtime import TaskFailed

# Splits up to this size are decoded once and kept in memory (the fastest way to feed a CPU or one GPU);
# larger ones are streamed from their LMDB. DIGITS_PRELOAD_LIMIT_BYTES changes it for a machine's memory.
PRELOAD_LIMIT_BYTES = int(os.environ.get("DIGITS_PRELOAD_LIMIT_BYTES", 8 << 30))


def read_records(db_path: str) -> tuple[list[bytes], list[bytes]]:
    """The split's keys and records, in order."""
    with LmdbReader(db_path) as db:
        items = list(db.items())
    return [key for key, _ in items], [raw for _, raw in items]


def decode_split(db_path: str, cores: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All records of a split as (uint8 N x C x H x W, int64 labels): on threads here, and on child processes
    that import no torch when the split is large enough to pay for them (digits.formats.datum_batch)."""
    keys, raws = read_records(db_path)
    if not raws:
        raise TaskFailed(f"{os.path.basename(db_path)} holds no records")
    try:
        images, labels = decode_records(db_path, keys, raws, cores)
    except RecordError as e:
        raise TaskFailed(f"{os.path.basename(db_path)}: {e}") from None
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))), torch.from_numpy(labels)


class StreamingSplit:
    """A split read from its LMDB batch by batch, for datasets too big for memory.

    Records are decoded on a pool of threads (LMDB reads and Pillow's decoders release the GIL), and the
    training loop asks for the next batch while it computes the current one. On a GPU the batch is copied
    from pinned memory without blocking.
    """

    transformed = False

    def __init__(self, db_path: str, device: torch.device, threads: int | None = None):
        self.db = LmdbReader(db_path)
        self.keys = [key for key, _ in self.db.items()]
        self.labels_cpu = self._labels(db_path)
        self.labels = self.labels_cpu.to(device)
        self.device = device
        self.pool = ThreadPoolExecutor(threads or os.cpu_count() or 1)  # decodes records
        # Prefetches whole batches. Separate from the decoding pool: a batch job waiting on decode jobs queued
        # behind it in the same pool would deadlock once every thread held one.
        self.loader = ThreadPoolExecutor(1)
        self._pending: dict[tuple[int, ...], Future] = {}

    def _labels(self, db_path: str) -> torch.Tensor:
        path = db_labels_path(db_path)  # written by our create-db; other tools' DBs are scanned once
        if os.path.exists(path):
            labels = np.fromfile(path, dtype=np.int32)
            if len(labels) == len(self.keys):
                return torch.from_numpy(labels.astype(np.int64))
        return torch.tensor([datum_label(raw) for _, raw in self.db.items()], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def _decode(self, index: int) -> np.ndarray:
        return datum_to_array(self.db.get(self.keys[index]))[0]

    def _load(self, indices: tuple[int, ...]) -> torch.Tensor:
        arrays = list(self.pool.map(self._decode, indices))
        batch = torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).copy())
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch

    def prefetch(self, idx: torch.Tensor) -> None:
        key = tuple(idx.tolist())
        if key not in self._pending:
            self._pending[key] = self.loader.submit(self._load, key)

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = tuple(idx.tolist())
        future = self._pending.pop(key, None)
        images = future.result() if future is not None else self._load(key)
        return images, self.labels.index_select(0, idx.to(self.labels.device))


def split_records(db_path: str) -> int:
    with LmdbReader(db_path) as db:
        return len(db)


def split_bytes(db_path: str, shape: tuple[int, int, int]) -> int:
    return split_records(db_path) * int(np.prod(shape))


class LazySplit:
    """A split loaded at its first use. The validation split is not needed before the first validation, so
    training (and its first metric) does not wait for it; its size is known from the start."""

    def __init__(self, db_path: str, load: Callable[[], Split | StreamingSplit]):
        self.size = split_records(db_path)
        if not self.size:
            raise TaskFailed(f"{os.path.basename(db_path)} holds no records")
        self._load = load
        self._split: Split | StreamingSplit | None = None

    def __len__(self) -> int:
        return self.size

    @property
    def loaded(self) -> Split | StreamingSplit:
        if self._split is None:
            self._split = self._load()
        return self._split

    @property
    def transformed(self) -> bool:
        return self.loaded.transformed

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.loaded.take(idx)

    def prefetch(self, idx: torch.Tensor) -> None:
        self.loaded.prefetch(idx)


def load_mean(dataset: DatasetFolder, use_mean: str) -> torch.Tensor | None:
    """The mean to subtract, C x H x W (image) or C x 1 x 1 (pixel), in 0..255 pixel units; None for 'none'."""
    if use_mean == "none":
        return None
    if dataset.mean is None:
        raise TaskFailed(f"use_mean={use_mean} but the dataset has no {MEAN}")
    mean = torch.from_numpy(read_mean(dataset.mean)).permute(2, 0, 1).contiguous()
    if use_mean == "pixel":
        mean = mean.mean(dim=(1, 2), keepdim=True)
    return mean
