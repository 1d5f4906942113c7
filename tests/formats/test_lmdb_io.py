"""digits.formats.lmdb_io: batched writes that grow the map, ordered reads."""

from __future__ import annotations

import os

import lmdb
import pytest

from digits.formats.lmdb_io import INITIAL_MAP_SIZE, LmdbReader, LmdbWriter, record_key


def value_for(i: int, size: int = 16) -> bytes:
    return (f"v{i}:".encode() * size)[:size]


def write_db(path: str, n: int, batch: int = 10, size: int = 16, **kw) -> LmdbWriter:
    writer = LmdbWriter(path, **kw)
    for start in range(0, n, batch):
        writer.put_many((record_key(i), value_for(i, size)) for i in range(start, min(n, start + batch)))
    writer.close()
    return writer


def test_record_key_is_zero_padded():
    assert record_key(0) == b"00000000"
    assert record_key(42) == b"00000042"
    assert record_key(12345678) == b"12345678"
    keys = [record_key(i) for i in (0, 9, 10, 99, 100, 1000, 99999)]
    assert sorted(keys) == keys  # byte order is index order


def test_initial_map_size():
    assert INITIAL_MAP_SIZE == 64 * 1024 * 1024


def test_writer_creates_folder_and_counts(tmp_path):
    path = str(tmp_path / "a" / "b" / "train_db")
    writer = write_db(path, 25, batch=7)
    assert os.path.isdir(path)
    assert os.path.exists(os.path.join(path, "data.mdb"))
    assert writer.count == 25


def test_reader_len_get_and_items(tmp_path):
    path = str(tmp_path / "db")
    write_db(path, 120, batch=13)
    with LmdbReader(path) as reader:
        assert len(reader) == 120
        assert reader.get(record_key(0)) == value_for(0)
        assert reader.get(record_key(119)) == value_for(119)
        assert reader.get(record_key(120)) is None
        assert reader.get(b"nope") is None
        items = list(reader.items())
        assert [k for k, _ in items] == [record_key(i) for i in range(120)]
        assert all(v == value_for(i) for i, (_, v) in enumerate(items))
        assert all(type(k) is bytes and type(v) is bytes for k, v in items)


def test_items_start_and_limit(tmp_path):
    path = str(tmp_path / "db")
    write_db(path, 30)
    with LmdbReader(path) as reader:
        got = list(reader.items(start=record_key(5), limit=3))
        assert got == [(record_key(i), value_for(i)) for i in (5, 6, 7)]
        assert [k for k, _ in reader.items(limit=2)] == [record_key(0), record_key(1)]
        assert [k for k, _ in reader.items(start=record_key(27))] == [record_key(i) for i in (27, 28, 29)]
        # start between keys: the next key at or after it
        assert [k for k, _ in reader.items(start=b"000000105", limit=2)] == [record_key(11), record_key(12)]
        assert list(reader.items(start=record_key(30))) == []
        assert list(reader.items(limit=0)) == []
        assert len(list(reader.items(limit=1000))) == 30


def test_items_order_is_index_order_when_written_out_of_order(tmp_path):
    path = str(tmp_path / "db")
    writer = LmdbWriter(path)
    order = [7, 3, 100, 0, 12, 1, 1000, 9]
    writer.put_many((record_key(i), value_for(i)) for i in order)
    writer.close()
    with LmdbReader(path) as reader:
        assert [k for k, _ in reader.items()] == [record_key(i) for i in sorted(order)]


def test_put_many_overwrites_existing_key(tmp_path):
    path = str(tmp_path / "db")
    writer = LmdbWriter(path)
    writer.put_many([(record_key(1), b"old")])
    writer.put_many([(record_key(1), b"new")])
    writer.close()
    with LmdbReader(path) as reader:
        assert len(reader) == 1
        assert reader.get(record_key(1)) == b"new"


def test_put_many_empty_batch(tmp_path):
    writer = LmdbWriter(str(tmp_path / "db"))
    writer.put_many([])
    assert writer.count == 0
    writer.close()
    with LmdbReader(str(tmp_path / "db")) as reader:
        assert len(reader) == 0
        assert list(reader.items()) == []


def test_writer_grows_full_map(tmp_path):
    path = str(tmp_path / "db")
    map_size = 64 * 1024
    # Sanity check of the premise: a plain lmdb env this small cannot take one of these batches
    probe = lmdb.open(str(tmp_path / "probe"), map_size=map_size)
    with pytest.raises(lmdb.MapFullError):
        with probe.begin(write=True) as txn:
            for i in range(20):
                txn.put(record_key(i), value_for(i, 10_000))
    probe.close()

    n, size = 200, 10_000  # ~2 MB
    writer = LmdbWriter(path, map_size=map_size)
    for start in range(0, n, 20):
        writer.put_many((record_key(i), value_for(i, size)) for i in range(start, start + 20))
    assert writer.count == n
    grown = writer.env.info()["map_size"]
    assert grown > 2_000_000
    assert grown % map_size == 0 and (grown // map_size).bit_count() == 1  # doubled, not stepped
    writer.close()
    with LmdbReader(path) as reader:
        assert len(reader) == n
        for i in (0, 57, 199):
            assert reader.get(record_key(i)) == value_for(i, size)
        assert [k for k, _ in reader.items()] == [record_key(i) for i in range(n)]


def test_writer_grows_for_one_huge_batch(tmp_path):
    # A single transaction far bigger than the map: the map must double repeatedly until it fits
    path = str(tmp_path / "db")
    writer = LmdbWriter(path, map_size=64 * 1024)
    writer.put_many((record_key(i), value_for(i, 20_000)) for i in range(100))
    writer.close()
    with LmdbReader(path) as reader:
        assert len(reader) == 100
        assert reader.get(record_key(99)) == value_for(99, 20_000)


def test_reopen_and_append(tmp_path):
    path = str(tmp_path / "db")
    write_db(path, 10)
    writer = LmdbWriter(path)
    writer.put_many((record_key(i), value_for(i)) for i in range(10, 15))
    writer.close()
    with LmdbReader(path) as reader:
        assert len(reader) == 15
        assert reader.get(record_key(3)) == value_for(3)
        assert reader.get(record_key(14)) == value_for(14)


def test_reader_reopens_after_close_and_iterates_while_getting(tmp_path):
    # py-lmdb allows one open Environment per path per process, so readers are used one after another
    path = str(tmp_path / "db")
    write_db(path, 5)
    with LmdbReader(path) as a:
        it = a.items()
        assert next(it)[0] == record_key(0)
        assert a.get(record_key(4)) == value_for(4)  # a get while an items() iteration is open
        assert next(it)[0] == record_key(1)
        it.close()
    with LmdbReader(path) as b:
        assert len(b) == 5


def test_reader_is_read_only(tmp_path):
    path = str(tmp_path / "db")
    write_db(path, 3)
    with LmdbReader(path) as reader:
        with pytest.raises(lmdb.ReadonlyError):
            with reader.env.begin(write=True) as txn:
                txn.put(b"x", b"y")
