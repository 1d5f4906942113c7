"""A dataset split's records in order, whatever its backend: an LMDB of Datum records or DIGITS' HDF5 files."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from digits.formats.caffe_pb import datum_to_array
from digits.formats.hdf5_io import Hdf5Reader, is_hdf5_split
from digits.formats.lmdb_io import LmdbReader

BATCH = 256  # HDF5 records read at a time


class SplitRecords:
    """Iterates a split folder's records as (HxWxC uint8 RGB or gray image, label); len() is their count."""

    def __init__(self, path: str):
        self.path = path
        self.reader: Hdf5Reader | LmdbReader = Hdf5Reader(path) if is_hdf5_split(path) else LmdbReader(path)

    def __len__(self) -> int:
        return len(self.reader)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        if isinstance(self.reader, Hdf5Reader):
            for images, labels in self.reader.batches(BATCH):
                yield from zip(images, (int(v) for v in labels), strict=True)
        else:
            for _, raw in self.reader.items():
                yield datum_to_array(raw)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> SplitRecords:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
