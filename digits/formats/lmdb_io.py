"""LMDB databases of records keyed by zero-padded index ("00000042"), as DIGITS and Caffe's tools write them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import lmdb

INITIAL_MAP_SIZE = 1 << 26  # 64 MiB; doubled whenever a write does not fit


def record_key(index: int) -> bytes:
    return f"{index:08d}".encode()


class LmdbWriter:
    """Writes records in batched transactions, growing the map as the database grows."""

    def __init__(self, path: str, map_size: int = INITIAL_MAP_SIZE):
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.env = lmdb.open(
            path, map_size=map_size, subdir=True, lock=True, writemap=False, meminit=False, map_async=True, sync=False
        )
        self.count = 0

    def put_many(self, records: Iterable[tuple[bytes, bytes]]) -> None:
        records = list(records)
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in records:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
        self.count += len(records)

    def close(self) -> None:
        self.env.sync(True)
        self.env.close()


class LmdbReader:
    """Random and sequential access to an LMDB's records."""

    def __init__(self, path: str):
        self.path = path
        self.env = lmdb.open(path, readonly=True, lock=False, readahead=False, subdir=True, max_readers=512)

    def __len__(self) -> int:
        return self.env.stat()["entries"]

    def get(self, key: bytes) -> bytes | None:
        with self.env.begin() as txn:
            return txn.get(key)

    def items(self, start: bytes | None = None, limit: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        with self.env.begin() as txn:
            cursor = txn.cursor()
            if start is None:
                ok = cursor.first()
            else:
                ok = cursor.set_range(start)
            n = 0
            while ok and (limit is None or n < limit):
                yield bytes(cursor.key()), bytes(cursor.value())
                n += 1
                ok = cursor.next()

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> LmdbReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
