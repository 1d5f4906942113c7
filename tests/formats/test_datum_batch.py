"""digits.formats.datum_batch: a whole split of Datum records decoded into one array, on threads or with child
processes, record for record what datum_to_array gives, and a bad record named by its index."""

from __future__ import annotations

import numpy as np
import pytest

from digits.formats.caffe_pb import array_to_datum, datum_to_array
from digits.formats.datum_batch import DECODE_CHUNK, RecordError, decode_records
from digits.formats.images import encode_image
from digits.formats.lmdb_io import LmdbReader, LmdbWriter, record_key

# More records than two cores' first chunks, so that two-core decoding has records left for a child process.
MANY = 2 * DECODE_CHUNK + 90


def image(i: int, shape: tuple[int, int, int]) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, size=shape, dtype=np.uint8)


def write_split(path, n: int, shape=(6, 5, 1), encoding: str = "png", odd: dict[int, bytes] | None = None) -> str:
    """An LMDB of n records (label i % 7); `odd` replaces some records' bytes."""
    writer = LmdbWriter(str(path))
    records = []
    for i in range(n):
        arr = image(i, shape)
        raw = array_to_datum(arr, i % 7, encode_image(arr, encoding))
        records.append((record_key(i), (odd or {}).get(i, raw)))
    writer.put_many(records)
    writer.close()
    return str(path)


def read(path: str) -> tuple[list[bytes], list[bytes]]:
    with LmdbReader(path) as db:
        items = list(db.items())
    return [k for k, _ in items], [v for _, v in items]


def one_by_one(raws: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    arrays, labels = zip(*(datum_to_array(raw) for raw in raws), strict=True)
    return np.stack(arrays), np.asarray(labels, dtype=np.int64)


@pytest.mark.parametrize(
    ("shape", "encoding"), [((6, 5, 1), "png"), ((4, 7, 3), "png"), ((4, 7, 3), "none"), ((8, 8, 3), "jpg")]
)
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_split_decodes_to_what_each_record_decodes_to(tmp_path, shape, encoding, processes):
    db = write_split(tmp_path / "db", MANY, shape, encoding)
    keys, raws = read(db)
    # payoff 0: whatever the first chunks took, the rest goes to a child process as well
    images, labels = decode_records(db, keys, raws, cores=2, payoff_s=0 if processes else float("inf"))
    expected_images, expected_labels = one_by_one(raws)
    assert images.shape == (MANY, *shape) and images.dtype == np.uint8
    assert np.array_equal(images, expected_images)
    assert np.array_equal(labels, expected_labels) and labels.dtype == np.int64


def test_a_split_smaller_than_a_chunk_decodes_on_this_process(tmp_path):
    db = write_split(tmp_path / "db", 3)
    images, labels = decode_records(db, *read(db), cores=4, payoff_s=0)
    assert images.shape == (3, 6, 5, 1) and labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("where", [5, MANY - 3], ids=["in-the-first-chunk", "in-a-child-process"])
def test_a_record_of_another_size_is_named(tmp_path, where):
    big = array_to_datum(image(0, (9, 9, 1)), 0, encode_image(image(0, (9, 9, 1)), "png"))
    db = write_split(tmp_path / "db", MANY, odd={where: big})
    message = rf"record {where} is 9x9 with 1 channel, but the split's first record is 5x6 with 1 channel$"
    with pytest.raises(RecordError, match=message):
        decode_records(db, *read(db), cores=2, payoff_s=0)


@pytest.mark.parametrize("where", [0, 7, MANY - 1], ids=["first", "in-the-first-chunk", "in-a-child-process"])
def test_an_undecodable_record_is_named(tmp_path, where):
    broken = array_to_datum(image(0, (6, 5, 1)), 0, b"\x89PNG not really")
    db = write_split(tmp_path / "db", MANY, odd={where: broken})
    with pytest.raises(RecordError, match=rf"record {where} cannot be decoded"):
        decode_records(db, *read(db), cores=2, payoff_s=0)


def test_no_records_is_an_error(tmp_path):
    with pytest.raises(RecordError, match="no records"):
        decode_records(str(tmp_path), [], [])
