"""An LMDB of Caffe Datum records made without DIGITS (Caffe's convert_imageset), read, checked and copied into
a dataset folder so that models train on it as on a dataset built by the form.

convert_imageset keys its records "%08d_%s" % (index, file name) and stores either raw uint8 pixels
(channels x height x width, BGR) or, with --encoded, the image file itself (encoded=true; Caffe leaves the
Datum's channels, height and width unset then). The copy keys them by index as our databases are ("00000000"),
keeps each Datum's bytes (filling in the size of an encoded one, as ours carry it) and writes what our folder
has beside a database: the record labels, the split's list ("source key label"), the training mean.

DIGITS' users expect one image size per dataset, so a record of another size or channel count is refused with
its key named, never resized behind their back.
"""

from __future__ import annotations

import array
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import lmdb
import numpy as np
from google.protobuf.message import DecodeError

from digits.folders.dataset import db_labels_path
from digits.formats.caffe_pb import GRAY_MODES, Datum, array_to_datum
from digits.formats.images import ImageError, convert_image, encode_image, open_image
from digits.formats.lmdb_io import LmdbWriter, record_key

DATA_FILE = "data.mdb"
BATCH = 256  # records per write transaction and per progress report
KEPT_FORMATS = {"PNG": "png", "JPEG": "jpg"}  # encoded records kept as they are; others become PNG


class ImportProblem(ValueError):
    """A source LMDB or record that cannot be imported; the message names the record's key and what is wrong."""


class LabelOutOfRange(ImportProblem):
    """A record whose label has no class name (the caller knows which names there are and says so)."""

    def __init__(self, key: str, label: int):
        super().__init__(f"record {key} has label {label}")
        self.key = key
        self.label = label


@dataclass(frozen=True)
class RecordShape:
    channels: int
    height: int
    width: int

    def describe(self) -> str:
        kind = "gray" if self.channels == 1 else "color"
        return f"{self.width}x{self.height} {kind} ({self.channels} channel{'s' if self.channels != 1 else ''})"


@dataclass
class Record:
    """One checked record: the Datum to store, its pixels (HxWxC uint8, RGB or gray) and label."""

    datum: bytes
    pixels: np.ndarray
    label: int
    encoding: str  # "png", "jpg" or "none" (raw pixels)

    @property
    def shape(self) -> RecordShape:
        height, width, channels = self.pixels.shape
        return RecordShape(channels, height, width)


def shown_key(key: bytes) -> str:
    """A record's key as a message can show it: undecodable bytes and control characters escaped."""
    text = key.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def open_source(path: str) -> lmdb.Environment:
    """Open a source LMDB folder read-only (nothing is written to it, not even a lock)."""
    if not os.path.isfile(os.path.join(path, DATA_FILE)):
        raise ImportProblem(
            f"{path} is not an LMDB: it holds no {DATA_FILE} (convert_imageset writes a folder holding "
            f"{DATA_FILE} and lock.mdb; give that folder)"
        )
    try:
        return lmdb.open(path, readonly=True, lock=False, readahead=False, subdir=True, max_readers=4)
    except lmdb.Error as e:
        raise ImportProblem(f"{path} is not an LMDB: {e}") from None


def read_record(key: bytes, raw: bytes) -> Record:
    """Check one record: a Datum of a 1- or 3-channel uint8 image, raw or encoded; ImportProblem says why not."""
    name = shown_key(key)
    try:
        datum = Datum.FromString(raw)
    except DecodeError as e:
        raise ImportProblem(f"record {name} is not a Caffe Datum ({e})") from None
    if datum.float_data:
        raise ImportProblem(f"record {name} holds float_data; an image dataset's records hold uint8 pixels")
    if not datum.data:
        raise ImportProblem(f"record {name} is not a Caffe Datum of an image: it holds no data")
    if datum.encoded:
        return _encoded_record(name, datum, raw)
    channels, height, width = datum.channels, datum.height, datum.width
    if channels not in (1, 3) or height < 1 or width < 1:
        raise ImportProblem(
            f"record {name} is {channels}x{height}x{width} (channels x height x width); an image has 1 (gray) or "
            "3 (color) channels and a height and width of at least 1"
        )
    if len(datum.data) != channels * height * width:
        raise ImportProblem(
            f"record {name} is not a Caffe Datum of an image: {len(datum.data):,} bytes of pixels where "
            f"{channels}x{height}x{width} needs {channels * height * width:,}"
        )
    chw = np.frombuffer(datum.data, dtype=np.uint8).reshape(channels, height, width)
    if channels == 3:
        chw = chw[::-1]  # Caffe's BGR to RGB
    return Record(raw, np.ascontiguousarray(chw.transpose(1, 2, 0)), datum.label, "none")


def _encoded_record(name: str, datum: Any, raw: bytes) -> Record:
    try:
        image = open_image(datum.data)
    except ImageError as e:
        raise ImportProblem(f"record {name}: its encoded image cannot be read: {e}") from None
    kind = KEPT_FORMATS.get(image.format or "")
    channels = datum.channels if datum.channels in (1, 3) else (1 if image.mode in GRAY_MODES else 3)
    pixels = np.asarray(convert_image(image, channels))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, _ = pixels.shape
    said = (datum.channels, datum.height, datum.width)
    if any(said) and said != (channels, height, width):
        raise ImportProblem(
            f"record {name} says it is {datum.channels}x{datum.height}x{datum.width} (channels x height x width) "
            f"but its image is {channels}x{height}x{width}"
        )
    if kind is not None and all(said):
        return Record(raw, pixels, datum.label, kind)
    # Caffe leaves an encoded Datum's size unset; ours carry it (and hold PNG or JPEG, which the explorer shows).
    data = datum.data if kind is not None else encode_image(pixels, "png")
    return Record(array_to_datum(pixels, datum.label, data), pixels, datum.label, kind or "png")


@dataclass
class LmdbProbe:
    """What the first record of a source LMDB says about all of them."""

    entries: int
    first_key: str
    shape: RecordShape
    encoding: str

    def image_settings(self) -> dict[str, Any]:
        """The dataset's image settings, as a dataset built by the form has them."""
        return {
            "channels": self.shape.channels,
            "width": self.shape.width,
            "height": self.shape.height,
            "resize_mode": "squash",  # convert_imageset's --resize_* scale without keeping the aspect ratio
            "encoding": self.encoding,
            "backend": "lmdb",
            "compression": "none",
        }


def probe(path: str) -> LmdbProbe:
    """Open a source LMDB and check its first record (the one every other must match)."""
    env = open_source(path)
    try:
        entries = env.stat()["entries"]
        with env.begin() as txn:
            cursor = txn.cursor()
            if not entries or not cursor.first():
                raise ImportProblem(f"{path} is an LMDB without records")
            key, raw = bytes(cursor.key()), bytes(cursor.value())
    except lmdb.Error as e:
        raise ImportProblem(f"{path} cannot be read as an LMDB: {e}") from None
    finally:
        env.close()
    record = read_record(key, raw)
    return LmdbProbe(entries, shown_key(key), record.shape, record.encoding)


def _records(env: lmdb.Environment) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) in key order, one read transaction, never the whole database in memory."""
    with env.begin() as txn:
        for key, value in txn.cursor():
            yield bytes(key), bytes(value)


@dataclass
class ImportResult:
    entries: int
    per_class: list[int]
    highest_label: int
    seconds: float
    mean: np.ndarray | None = None


def import_split(
    source: str,
    db_path: str,
    list_path: str,
    shape: RecordShape,
    first_key: str,
    n_labels: int | None = None,
    with_mean: bool = False,
    progress: Callable[[float], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
) -> ImportResult | None:
    """Copy the source LMDB's records into db_path (via db_path.partial), their labels beside it and the list of
    their source keys into list_path; None when aborted. Every record must have `shape`; n_labels, when given,
    bounds the labels (LabelOutOfRange). Raises ImportProblem for the first record that cannot be imported."""
    started = time.perf_counter()
    partial = db_path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    env = open_source(source)
    writer = None
    try:
        total = max(1, env.stat()["entries"])
        writer = LmdbWriter(partial)
        labels = array.array("i")
        per_class: list[int] = []
        pixel_sum = np.zeros((shape.height, shape.width, shape.channels), np.float64) if with_mean else None
        batch: list[tuple[bytes, bytes]] = []
        with open(list_path + ".partial", "w", encoding="utf-8") as listing:
            for key, raw in _records(env):
                record = read_record(key, raw)
                name = shown_key(key)
                if record.shape != shape:
                    raise ImportProblem(
                        f"record {name} is {record.shape.describe()}, but the first record ({first_key}) is "
                        f"{shape.describe()}: the records of an imported LMDB must all be one size (convert_imageset "
                        "makes them so with --resize_height and --resize_width)"
                    )
                if record.label < 0 or (n_labels is not None and record.label >= n_labels):
                    raise LabelOutOfRange(name, record.label)
                if record.label >= len(per_class):
                    per_class.extend([0] * (record.label + 1 - len(per_class)))
                per_class[record.label] += 1
                batch.append((record_key(len(labels)), record.datum))
                labels.append(record.label)
                listing.write(f"{name} {record.label}\n")
                if pixel_sum is not None:
                    pixel_sum += record.pixels
                if len(batch) == BATCH:
                    if should_abort and should_abort():
                        return None
                    writer.put_many(batch)
                    batch = []
                    if progress:
                        progress(min(1.0, len(labels) / total))
        writer.put_many(batch)
        writer.close()
        writer = None
    finally:
        env.close()
        if writer is not None:  # failed or aborted: nothing half-written is kept
            writer.close()
            shutil.rmtree(partial, ignore_errors=True)
            _remove(list_path + ".partial")
    shutil.rmtree(db_path, ignore_errors=True)
    os.rename(partial, db_path)
    os.replace(list_path + ".partial", list_path)
    with open(db_labels_path(db_path), "wb") as fh:  # record index -> label, for the explorer
        labels.tofile(fh)
    highest = len(per_class) - 1
    if n_labels is not None and len(per_class) < n_labels:
        per_class.extend([0] * (n_labels - len(per_class)))
    mean = pixel_sum / len(labels) if pixel_sum is not None and len(labels) else None
    return ImportResult(len(labels), per_class, highest, time.perf_counter() - started, mean)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def read_class_names(path: str) -> list[str]:
    """A labels file's class names (one per line, line i naming label i; blank lines are not classes)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [line.strip() for line in fh if line.strip()]
