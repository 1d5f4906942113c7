"""digits.engine.data on DIGITS' HDF5 splits: decoded whole or streamed batch by batch across several files, files
written by DIGITS' own layout read the same, and what a split folder must not hold is a named failure."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import torch

from digits.engine.data import LazySplit, StreamingSplit, decode_split, split_records
from digits.formats.hdf5_io import Hdf5Writer
from digits.formats.split_io import SplitRecords
from digits.worker_runtime import TaskFailed

SHAPE = (3, 6, 5)  # C, H, W


def write_split(path, n: int, per_file: int = 7, compression: str = "gzip") -> tuple[str, np.ndarray, np.ndarray]:
    """A split of n random HxWxC images in files of per_file records: (folder, images N x H x W x C, labels)."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n, SHAPE[1], SHAPE[2], SHAPE[0]), dtype=np.uint8)
    labels = np.arange(n) % 3
    writer = Hdf5Writer(str(path), SHAPE, compression, dset_limit=per_file * int(np.prod(SHAPE)))
    for a in range(0, n, 4):  # batches that straddle the files' ends
        writer.write(list(images[a : a + 4]), labels[a : a + 4].tolist())
    writer.close()
    return str(path), images, labels


def test_a_split_in_several_files_decodes_whole_in_order(tmp_path):
    db, images, labels = write_split(tmp_path / "train_db", 30)
    with open(os.path.join(db, "list.txt")) as fh:
        assert fh.read().split() == ["0.h5", "7.h5", "14.h5", "21.h5", "28.h5"]
    got, got_labels = decode_split(db)
    assert got.dtype == torch.uint8 and got.shape == (30, *SHAPE) and got.is_contiguous()
    assert np.array_equal(got.numpy(), images.transpose(0, 3, 1, 2))
    assert got_labels.dtype == torch.int64 and got_labels.tolist() == labels.tolist()
    assert split_records(db) == 30


def test_a_streamed_split_takes_any_batch_across_files(tmp_path):
    db, images, labels = write_split(tmp_path / "train_db", 30, compression="none")
    split = StreamingSplit(db, torch.device("cpu"))
    assert len(split) == 30
    idx = torch.tensor([29, 0, 13, 13, 6, 7, 21])  # any order, repeats, both sides of each file's end
    split.prefetch(idx)
    batch, batch_labels = split.take(idx)
    assert np.array_equal(batch.numpy(), images[idx.numpy()].transpose(0, 3, 1, 2))
    assert batch_labels.tolist() == labels[idx.numpy()].tolist()
    lazy = LazySplit(db, lambda: StreamingSplit(db, torch.device("cpu")))
    assert len(lazy) == 30 and lazy.take(torch.tensor([3]))[1].tolist() == [labels[3]]


def test_a_split_written_as_digits_writes_it_reads_the_same(tmp_path):
    # DIGITS' Hdf5Writer: chunks=True, resizable to its dataset limit, float32 data and labels, list.txt of names.
    folder = tmp_path / "val_db"
    folder.mkdir()
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, size=(9, 1, 4, 4)).astype("float32")
    with h5py.File(folder / "0.h5", "w") as f:
        f.create_dataset("data", data.shape, maxshape=(None, 1, 4, 4), chunks=True, dtype="float32")[:] = data
        f.create_dataset("label", (9,), maxshape=(None,), chunks=True, dtype="float32")[:] = np.arange(9) % 2
    (folder / "list.txt").write_text("0.h5\n")
    images, labels = decode_split(str(folder))
    assert np.array_equal(images.numpy(), data.astype(np.uint8)) and labels.tolist() == [i % 2 for i in range(9)]
    with SplitRecords(str(folder)) as records:
        assert len(records) == 9
        first, label = next(iter(records))
        assert first.shape == (4, 4, 1) and label == 0 and np.array_equal(first[:, :, 0], data[0, 0])


def test_values_that_are_not_pixels_fail_naming_the_file(tmp_path):
    folder = tmp_path / "train_db"
    folder.mkdir()
    with h5py.File(folder / "0.h5", "w") as f:
        f["data"] = np.full((2, 1, 3, 3), 0.5, dtype="float32")  # normalized pixels: not what DIGITS wrote
        f["label"] = np.zeros(2, dtype="float32")
    (folder / "list.txt").write_text("0.h5\n")
    with pytest.raises(TaskFailed, match=r"^train_db/0.h5: data holds values that are not pixels 0 to 255"):
        decode_split(str(folder))


def test_a_list_naming_a_file_outside_the_split_is_refused(tmp_path):
    db, _, _ = write_split(tmp_path / "train_db", 8)
    os.rename(os.path.join(db, "0.h5"), tmp_path / "elsewhere.h5")
    with open(os.path.join(db, "list.txt"), "w") as fh:
        fh.write("../elsewhere.h5\n7.h5\n")
    with pytest.raises(TaskFailed, match=r"train_db/list.txt line 1: ../elsewhere.h5 is not a file of the split"):
        split_records(db)


def test_an_empty_split_fails_the_task(tmp_path):
    db, _, _ = write_split(tmp_path / "train_db", 0)
    with pytest.raises(TaskFailed, match="train_db holds no records"):
        decode_split(db)
    with pytest.raises(TaskFailed, match="train_db holds no records"):
        LazySplit(db, lambda: pytest.fail("an empty split is not loaded"))
