"""The dataset as the training worker sees it: records decoded from its splits, the mean, and batches on the device.

A split is an LMDB of Datum records or DIGITS' HDF5 files (digits.formats.hdf5_io): each function here takes
either, told apart by the split folder's files. The folder itself (its files, labels, image settings) is
digits.folders.dataset.
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
from digits.formats.hdf5_io import Hdf5Error, Hdf5Reader, is_hdf5_split
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
    """All records of a split as (uint8 N x C x H x W, int64 labels). LMDB records are decoded on threads here,
    and on child processes that import no torch when the split is large enough to pay for them
    (digits.formats.datum_batch); HDF5 files hold the pixels already."""
    name = os.path.basename(db_path)
    if is_hdf5_split(db_path):
        try:
            with Hdf5Reader(db_path) as db:
                images, labels = db.read_all()
        except Hdf5Error as e:
            raise TaskFailed(str(e)) from None
        if not len(labels):
            raise TaskFailed(f"{name} holds no records")
    else:
        keys, raws = read_records(db_path)
        if not raws:
            raise TaskFailed(f"{name} holds no records")
        try:
            images, labels = decode_records(db_path, keys, raws, cores)
        except RecordError as e:
            raise TaskFailed(f"{name}: {e}") from None
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))), torch.from_numpy(labels)


class _LmdbRecords:
    """An LMDB split's records by index, decoded on a pool of threads (LMDB reads and Pillow's decoders release
    the GIL)."""

    def __init__(self, db_path: str, threads: int | None = None):
        self.db = LmdbReader(db_path)
        self.keys = [key for key, _ in self.db.items()]
        self.pool = ThreadPoolExecutor(threads or os.cpu_count() or 1)
        self.db_path = db_path

    def labels(self) -> np.ndarray:
        path = db_labels_path(self.db_path)  # written by our create-db; other tools' DBs are scanned once
        if os.path.exists(path):
            labels = np.fromfile(path, dtype=np.int32)
            if len(labels) == len(self.keys):
                return labels.astype(np.int64)
        return np.array([datum_label(raw) for _, raw in self.db.items()], dtype=np.int64)

    def _decode(self, index: int) -> np.ndarray:
        return datum_to_array(self.db.get(self.keys[index]))[0]

    def read(self, indices: tuple[int, ...]) -> np.ndarray:
        return np.stack(list(self.pool.map(self._decode, indices)))


class _Hdf5Records:
    """An HDF5 split's records by index, its files opened in this (the training) process."""

    def __init__(self, db_path: str):
        try:
            self.db = Hdf5Reader(db_path)
        except Hdf5Error as e:
            raise TaskFailed(str(e)) from None

    def labels(self) -> np.ndarray:
        return self.db.labels()

    def read(self, indices: tuple[int, ...]) -> np.ndarray:
        try:
            return self.db.read(indices)
        except Hdf5Error as e:
            raise TaskFailed(str(e)) from None


class StreamingSplit:
    """A split read from its LMDB or HDF5 files batch by batch, for datasets too big for memory.

    The training loop asks for the next batch while it computes the current one. On a GPU the batch is copied
    from pinned memory without blocking.
    """

    transformed = False

    def __init__(self, db_path: str, device: torch.device, threads: int | None = None):
        self.records = _Hdf5Records(db_path) if is_hdf5_split(db_path) else _LmdbRecords(db_path, threads)
        self.labels_cpu = torch.from_numpy(self.records.labels())
        self.labels = self.labels_cpu.to(device)
        self.device = device
        # Prefetches whole batches. Separate from the LMDB decoding pool: a batch job waiting on decode jobs
        # queued behind it in the same pool would deadlock once every thread held one.
        self.loader = ThreadPoolExecutor(1)
        self._pending: dict[tuple[int, ...], Future] = {}

    def __len__(self) -> int:
        return len(self.labels_cpu)

    def _load(self, indices: tuple[int, ...]) -> torch.Tensor:
        batch = torch.from_numpy(self.records.read(indices).transpose(0, 3, 1, 2).copy())
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
    """How many records a split holds."""
    if is_hdf5_split(db_path):
        try:
            with Hdf5Reader(db_path) as db:
                return len(db)
        except Hdf5Error as e:
            raise TaskFailed(str(e)) from None
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
