"""digits.engine.data: a split decoded for training (what each record decodes to, a bad record named with its
split), and the validation split loaded at its first use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digits.engine.data import LazySplit, decode_split
from digits.engine.trainer import Split
from digits.formats.caffe_pb import array_to_datum, datum_to_array
from digits.formats.images import encode_image
from digits.formats.lmdb_io import LmdbReader, LmdbWriter, record_key
from digits.worker_runtime import TaskFailed


def write_split(path, n: int, shape=(5, 4, 3), broken: int | None = None) -> str:
    writer = LmdbWriter(str(path))
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
        encoded = b"not an image" if i == broken else encode_image(arr, "png")
        records.append((record_key(i), array_to_datum(arr, i % 3, encoded)))
    writer.put_many(records)
    writer.close()
    return str(path)


def test_a_split_is_its_records_channels_first(tmp_path):
    db = write_split(tmp_path / "train_db", 40)
    images, labels = decode_split(db)
    with LmdbReader(db) as reader:
        decoded = [datum_to_array(raw) for _, raw in reader.items()]
    assert images.dtype == torch.uint8 and images.shape == (40, 3, 5, 4) and images.is_contiguous()
    assert labels.dtype == torch.int64 and labels.tolist() == [label for _, label in decoded]
    for i, (arr, _) in enumerate(decoded):
        assert np.array_equal(images[i].numpy(), arr.transpose(2, 0, 1)), i


def test_a_bad_record_fails_the_task_naming_split_and_record(tmp_path):
    db = write_split(tmp_path / "val_db", 12, broken=9)
    with pytest.raises(TaskFailed, match=r"^val_db: record 9 cannot be decoded"):
        decode_split(db)


def test_an_empty_split_fails_the_task(tmp_path):
    db = write_split(tmp_path / "train_db", 0)
    with pytest.raises(TaskFailed, match="train_db holds no records"):
        decode_split(db)
    with pytest.raises(TaskFailed, match="train_db holds no records"):
        LazySplit(db, lambda: pytest.fail("an empty split is not loaded"))


def test_a_lazy_split_knows_its_size_and_loads_at_its_first_use(tmp_path):
    db = write_split(tmp_path / "val_db", 7)
    loads = []

    def load() -> Split:
        loads.append(db)
        images, labels = decode_split(db)
        return Split(images, labels)

    split = LazySplit(db, load)
    assert len(split) == 7 and loads == []
    assert split.device == torch.device("cpu") and not split.transformed
    x, y = split.take(torch.tensor([6, 0]))
    assert loads == [db]  # once
    images, labels = decode_split(db)
    assert torch.equal(x, images[[6, 0]]) and torch.equal(y, labels[[6, 0]])
