"""A split as DIGITS 6 writes it with backend=hdf5: a folder holding `list.txt` and the `.h5` files it names.

Each file holds `data` (N x C x H x W float32 pixels 0..255, RGB or gray: no channel swap, unlike a Datum) and
`label` (N float32), chunked and optionally gzip-compressed; a file holds at most DIGITS' dataset limit of
2^31 values, the next file starts where it is full, and is named by the count of records before it ("0.h5",
"4096.h5", ...). list.txt names the files in order, relative to the folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import h5py
import numpy as np

LIST_FILE = "list.txt"
COMPRESSIONS = ("none", "gzip")
DSET_LIMIT = 2**31  # values per file (DIGITS' --hdf5_dset_limit default)
DTYPE = "float32"  # DIGITS' Hdf5Writer.DTYPE, for data and labels alike
# Whole images per chunk, about this many bytes (at least one image): reading a record or a batch reads (and
# decompresses) whole chunks, and h5py's own guess cuts images into pieces.
CHUNK_BYTES = 1 << 18


class Hdf5Error(ValueError):
    """An HDF5 split that cannot be read as one; the message names the file and what is wrong."""


def is_hdf5_split(path: str) -> bool:
    """Whether the split folder at `path` is an HDF5 one (a list.txt of .h5 files) rather than an LMDB."""
    return os.path.isfile(os.path.join(path, LIST_FILE))


class Hdf5Writer:
    """Appends batches of HxWxC uint8 images and their labels to a split folder, a new file when one is full."""

    def __init__(self, path: str, shape: tuple[int, int, int], compression: str = "none", dset_limit: int = DSET_LIMIT):
        if compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r} (known: {', '.join(COMPRESSIONS)})")
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.shape = tuple(int(v) for v in shape)  # C, H, W
        self.compression = None if compression == "none" else compression
        self.per_file = max(1, dset_limit // int(np.prod(self.shape)))
        self.count = 0
        self.files: list[str] = []
        self._file: h5py.File | None = None

    def _new_file(self) -> None:
        self._close_file()
        name = f"{self.count}.h5"
        self._file = h5py.File(os.path.join(self.path, name), "w")
        per_chunk = max(1, min(self.per_file, CHUNK_BYTES // (4 * int(np.prod(self.shape)))))
        self._file.create_dataset(
            "data",
            (0, *self.shape),
            maxshape=(self.per_file, *self.shape),
            chunks=(per_chunk, *self.shape),
            compression=self.compression,
            dtype=DTYPE,
        )
        self._file.create_dataset(
            "label", (0,), maxshape=(self.per_file,), chunks=True, compression=self.compression, dtype=DTYPE
        )
        self.files.append(name)
        with open(os.path.join(self.path, LIST_FILE), "w", encoding="utf-8") as fh:
            fh.writelines(f"{n}\n" for n in self.files)

    def write(self, images: list[np.ndarray], labels: list[int]) -> None:
        """Append HxWxC (or HxW) uint8 images, stored channels first."""
        done = 0
        while done < len(images):
            if self._file is None or len(self._file["label"]) >= self.per_file:
                self._new_file()
            data, label = self._file["data"], self._file["label"]
            start = len(label)
            take = min(len(images) - done, self.per_file - start)
            batch = np.stack([_chw(a) for a in images[done : done + take]]).astype(DTYPE)
            data.resize(start + take, axis=0)
            label.resize(start + take, axis=0)
            data[start:] = batch
            label[start:] = np.asarray(labels[done : done + take], dtype=DTYPE)
            done += take
            self.count += take

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        if not self.files:
            self._new_file()  # an empty split is still a readable folder
        self._close_file()


def _chw(image: np.ndarray) -> np.ndarray:
    return (image[:, :, None] if image.ndim == 2 else image).transpose(2, 0, 1)


def split_files(path: str) -> list[str]:
    """The .h5 files list.txt names, in order, each inside the split folder (a name leading out of it is refused:
    what a dataset folder says must not make a reader open files elsewhere)."""
    folder = os.path.realpath(path)
    out = []
    try:
        with open(os.path.join(path, LIST_FILE), encoding="utf-8") as fh:
            lines = [line.strip() for line in fh]
    except (OSError, UnicodeDecodeError) as e:
        raise Hdf5Error(f"{os.path.basename(path)}/{LIST_FILE} cannot be read: {e}") from None
    for number, name in enumerate(lines, start=1):
        if not name:
            continue
        full = os.path.realpath(os.path.join(folder, name))
        if os.path.dirname(full) != folder:
            raise Hdf5Error(f"{os.path.basename(path)}/{LIST_FILE} line {number}: {name} is not a file of the split")
        out.append(full)
    return out


def to_pixels(data: np.ndarray, where: str) -> np.ndarray:
    """N x C x H x W values 0..255 (whole numbers, as DIGITS writes them) -> N x H x W x C uint8."""
    if data.dtype != np.uint8:
        if data.size and (np.nanmin(data) < 0 or np.nanmax(data) > 255 or not np.array_equal(data, np.rint(data))):
            raise Hdf5Error(f"{where}: data holds values that are not pixels 0 to 255 (whole numbers)")
        data = data.astype(np.uint8)
    return np.ascontiguousarray(data.transpose(0, 2, 3, 1))


class Hdf5Reader:
    """Random and sequential access to an HDF5 split's records, as HxWxC uint8 images and int labels.

    Files are opened here, by the process that reads them (an h5py handle must not cross a fork)."""

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path.rstrip(os.sep))
        self.files: list[h5py.File] = []
        try:
            for file in split_files(path):
                self.files.append(h5py.File(file, "r"))
            for f in self.files:
                if "data" not in f or "label" not in f:
                    raise Hdf5Error(f"{self.name}/{os.path.basename(f.filename)} has no data or no label dataset")
                if f["data"].ndim != 4 or len(f["data"]) != len(f["label"]):
                    raise Hdf5Error(
                        f"{self.name}/{os.path.basename(f.filename)}: data is {f['data'].shape}, label "
                        f"{f['label'].shape}; expected N x C x H x W and N"
                    )
        except OSError as e:
            self.close()
            raise Hdf5Error(f"{self.name}: {e}") from None
        except Hdf5Error:
            self.close()
            raise
        sizes = [len(f["label"]) for f in self.files]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int, int, int] | None:
        """C, H, W of the records (None when there are none)."""
        return tuple(self.files[0]["data"].shape[1:]) if self.files else None

    def labels(self) -> np.ndarray:
        parts = [f["label"][:] for f in self.files]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def read(self, indices) -> np.ndarray:
        """The records at `indices` (any order, repeats allowed) as N x H x W x C uint8."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"{self.name} has records 0 to {len(self) - 1}")
        which = np.searchsorted(self.starts, indices, side="right") - 1
        out = None
        for k in np.unique(which):
            mask = which == k
            local = indices[mask] - self.starts[k]
            wanted, back = np.unique(local, return_inverse=True)  # h5py reads increasing, distinct indices
            data = to_pixels(self.files[k]["data"][wanted], self._where(k))
            if out is not None and data.shape[1:] != out.shape[1:]:
                raise Hdf5Error(f"{self._where(k)}: records are {data.shape[1:]}, other files' {out.shape[1:]}")
            if out is None:
                out = np.empty((len(indices), *data.shape[1:]), np.uint8)
            out[mask] = data[back]
        return out if out is not None else np.zeros((0, 0, 0, 0), np.uint8)

    def get(self, index: int) -> tuple[np.ndarray, int]:
        """One record: (HxWxC uint8, label)."""
        k = int(np.searchsorted(self.starts, index, side="right") - 1)
        image = self.read([index])[0]
        return image, int(self.files[k]["label"][index - self.starts[k]])

    def read_all(self, step: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Every record: (N x H x W x C uint8, int64 labels), read `step` records at a time (the stored floats
        take four times the pixels' memory)."""
        shape = self.shape
        if shape is None:
            return np.zeros((0, 0, 0, 0), np.uint8), self.labels()
        images = np.empty((len(self), shape[1], shape[2], shape[0]), np.uint8)
        for k, f in enumerate(self.files):
            data = f["data"]
            if tuple(data.shape[1:]) != shape:
                raise Hdf5Error(f"{self._where(k)}: records are {data.shape[1:]}, the first file's {shape}")
            for a in range(0, len(data), step):
                b = min(a + step, len(data))
                start = self.starts[k]
                images[start + a : start + b] = to_pixels(data[a:b], self._where(k))
        return images, self.labels()

    def _where(self, k: int) -> str:
        return f"{self.name}/{os.path.basename(self.files[k].filename)}"

    def batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The records in order, `size` at a time: (N x H x W x C uint8, labels)."""
        labels = self.labels()
        for start in range(0, len(self), size):
            idx = np.arange(start, min(start + size, len(self)))
            yield self.read(idx), labels[idx]

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files = []

    def __enter__(self) -> Hdf5Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
