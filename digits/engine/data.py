"""The dataset as the training worker sees it: records decoded from the LMDBs, the mean, and batches on the device.

The folder itself (its files, labels, image settings) is digits.folders.dataset.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from digits.folders.dataset import MEAN, DatasetFolder, db_labels_path
from digits.formats.caffe_pb import datum_label, datum_to_array, datums_to_arrays, read_mean
from digits.formats.lmdb_io import LmdbReader
from digits.worker_runtime import TaskFailed

# Splits up to this size are decoded once and kept in memory (the fastest way to feed a CPU or one GPU);
# larger ones are streamed from their LMDB. DIGITS_PRELOAD_LIMIT_BYTES changes it for a machine's memory.
PRELOAD_LIMIT_BYTES = int(os.environ.get("DIGITS_PRELOAD_LIMIT_BYTES", 8 << 30))
DECODE_CHUNK = 512


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


def split_bytes(db_path: str, shape: tuple[int, int, int]) -> int:
    with LmdbReader(db_path) as db:
        return len(db) * int(np.prod(shape))


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
