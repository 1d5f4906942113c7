"""Build one split's database: decode, convert, resize and encode on every core, write in batches.

The backend is DIGITS' choice: an LMDB of Datum records, or HDF5 files of raw pixels (digits.formats.hdf5_io).
"""

from __future__ import annotations

import array
import collections
import errno
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import lmdb
import numpy as np
from PIL import Image

from digits.folders.dataset import MEAN, MEAN_PNG, db_labels_path
from digits.formats.caffe_pb import array_to_datum, write_mean
from digits.formats.hdf5_io import Hdf5Writer
from digits.formats.images import ImageError, encode_image, load_for_network
from digits.formats.lmdb_io import LmdbWriter, record_key
from digits.store import free_bytes, is_disk_full, write_problem
from digits.worker_runtime import TaskFailed

CHUNK = 128
# LMDB reports a full disk as "mdb_txn_commit: Input/output error"; with less than this left, that is what it is.
NEARLY_FULL_BYTES = 16 * 1024 * 1024


def disk_problem(error: BaseException, folder: str, what: str) -> str | None:
    """'the disk holding the jobs folder is full: could not write <what>...' when that is why `error` happened."""
    if is_disk_full(error):
        return write_problem(what, error, folder)
    if isinstance(error, lmdb.Error) or (isinstance(error, OSError) and error.errno == errno.EIO):
        free = free_bytes(folder)
        if free is not None and free < NEARLY_FULL_BYTES:
            return write_problem(what, OSError(errno.ENOSPC, str(error)), folder)
    return None


@dataclass(frozen=True)
class ImageSettings:
    channels: int
    width: int
    height: int
    resize_mode: str = "squash"
    encoding: str = "png"
    backend: str = "lmdb"
    compression: str = "none"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSettings:
        return cls(
            int(d["channels"]),
            int(d["width"]),
            int(d["height"]),
            d.get("resize_mode", "squash"),
            d.get("encoding", "png"),
            d.get("backend", "lmdb"),
            d.get("compression", "none"),
        )


@dataclass
class ChunkResult:
    records: list[bytes] = field(default_factory=list)  # Datum records (LMDB)
    arrays: list[np.ndarray] = field(default_factory=list)  # the pixels themselves (HDF5)
    labels: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    pixel_sum: np.ndarray | None = None


@dataclass
class DbResult:
    entries: int
    per_class: list[int]
    skipped: list[dict[str, str]]
    sizes: dict[str, Any]
    seconds: float
    mean: np.ndarray | None = None


_worker_settings: tuple[ImageSettings, bool] | None = None


def _init_worker(settings: ImageSettings, with_mean: bool) -> None:
    global _worker_settings
    _worker_settings = (settings, with_mean)


def process_chunk(
    chunk: list[tuple[int, str, int]],
    settings: ImageSettings | None = None,
    with_mean: bool | None = None,
    with_datum: bool = True,
) -> ChunkResult:
    """Decode, convert, resize and encode a chunk of (index, path, label); broken files are listed, not raised."""
    if settings is None:
        settings, with_mean = _worker_settings
    out = ChunkResult()
    for index, path, label in chunk:
        try:
            arr, size = load_for_network(
                path, settings.channels, settings.height, settings.width, settings.resize_mode, seed=index
            )
        except ImageError as e:
            out.skipped.append((path, str(e)))
            continue
        except OSError as e:
            out.skipped.append((path, f"cannot read: {e.strerror or e}"))
            continue
        if settings.backend == "hdf5":
            out.arrays.append(arr)
        elif with_datum:
            out.records.append(array_to_datum(arr, label, encode_image(arr, settings.encoding)))
        out.labels.append(label)
        out.sizes.append(size)
        if with_mean:
            if out.pixel_sum is None:
                out.pixel_sum = np.zeros(arr.shape, dtype=np.float64)
            out.pixel_sum += arr
    return out


def chunks(entries: list[tuple[str, int]], size: int = CHUNK) -> list[list[tuple[int, str, int]]]:
    indexed = [(i, path, label) for i, (path, label) in enumerate(entries)]
    return [indexed[i : i + size] for i in range(0, len(indexed), size)]


def pool_results(
    entries: list[tuple[str, int]], settings: ImageSettings, with_mean: bool, processes: int | None = None
) -> tuple[Any, Iterable[ChunkResult]]:
    """A process pool over all cores and its in-order results."""
    pool = multiprocessing.get_context("fork").Pool(
        processes or os.cpu_count(), initializer=_init_worker, initargs=(settings, with_mean)
    )
    return pool, pool.imap(process_chunk, chunks(entries))


def size_summary(sizes: collections.Counter) -> dict[str, Any]:
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return {
        "most_common": [{"width": w, "height": h, "count": n} for (w, h), n in sizes.most_common(20)],
        "distinct": len(sizes),
        "min_width": min(widths, default=None),
        "max_width": max(widths, default=None),
        "min_height": min(heights, default=None),
        "max_height": max(heights, default=None),
    }


class _LmdbSplit:
    def __init__(self, path: str, settings: ImageSettings):
        self.writer = LmdbWriter(path)

    def add(self, start: int, result: ChunkResult) -> None:
        self.writer.put_many((record_key(start + i), rec) for i, rec in enumerate(result.records))

    def close(self) -> None:
        self.writer.close()


class _Hdf5Split:
    def __init__(self, path: str, settings: ImageSettings, dset_limit: int | None = None):
        shape = (settings.channels, settings.height, settings.width)
        limits = {"dset_limit": dset_limit} if dset_limit else {}
        self.writer = Hdf5Writer(path, shape, settings.compression, **limits)

    def add(self, start: int, result: ChunkResult) -> None:
        if result.arrays:
            self.writer.write(result.arrays, result.labels)

    def close(self) -> None:
        self.writer.close()


def build_db(
    entries: list[tuple[str, int]],
    db_path: str,
    settings: ImageSettings,
    n_labels: int,
    with_mean: bool = False,
    progress: Callable[[float], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
    processes: int | None = None,
    hdf5_dset_limit: int | None = None,
) -> DbResult | None:
    """Write `entries` into the split folder db_path, an LMDB or HDF5 files as settings.backend says (via
    db_path.partial, renamed at the end); None when aborted. hdf5_dset_limit: values per HDF5 file (DIGITS')."""
    started = time.perf_counter()
    partial = db_path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    per_class = [0] * n_labels
    skipped: list[dict[str, str]] = []
    sizes: collections.Counter = collections.Counter()
    labels = array.array("i")
    pixel_sum = None
    done = 0
    pool = None
    try:
        if settings.backend == "hdf5":
            writer = _Hdf5Split(partial, settings, hdf5_dset_limit)
        else:
            writer = _LmdbSplit(partial, settings)
        pool, results = pool_results(entries, settings, with_mean, processes)
        for result in results:
            if should_abort and should_abort():
                pool.terminate()
                writer.close()
                shutil.rmtree(partial, ignore_errors=True)
                return None
            writer.add(len(labels), result)
            labels.extend(result.labels)
            for label in result.labels:
                per_class[label] += 1
            skipped += [{"path": p, "reason": r} for p, r in result.skipped]
            sizes.update(result.sizes)
            if result.pixel_sum is not None:
                pixel_sum = result.pixel_sum if pixel_sum is None else pixel_sum + result.pixel_sum
            done += len(result.labels) + len(result.skipped)
            if progress:
                progress(done / max(1, len(entries)))
        pool.close()
        writer.close()
    except (lmdb.Error, OSError) as e:  # h5py reports its write failures as OSError
        if pool is not None:
            pool.terminate()
        shutil.rmtree(partial, ignore_errors=True)  # nothing half-written is kept
        name = os.path.basename(db_path)
        raise TaskFailed(disk_problem(e, os.path.dirname(db_path), name) or f"could not write {name}: {e}") from None
    finally:
        if pool is not None:
            pool.join()
    shutil.rmtree(db_path, ignore_errors=True)
    os.rename(partial, db_path)
    with open(db_labels_path(db_path), "wb") as fh:  # record index -> label, for the explorer
        labels.tofile(fh)
    mean = pixel_sum / len(labels) if pixel_sum is not None and len(labels) else None
    return DbResult(len(labels), per_class, skipped, size_summary(sizes), time.perf_counter() - started, mean)


def save_mean(job_dir: str, mean: np.ndarray) -> None:
    """mean.binaryproto (Caffe, BGR) and mean.png (for people) from the training split's mean image."""
    write_mean(os.path.join(job_dir, MEAN), mean)
    pixels = np.clip(np.round(mean), 0, 255).astype(np.uint8)
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(os.path.join(job_dir, MEAN_PNG))
