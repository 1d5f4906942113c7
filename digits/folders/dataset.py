"""A dataset job folder: the contract between the dataset wing and everything that reads a dataset.

    labels.txt                one class name per line, in label order
    <split>.txt               the split's list: "absolute/path label" per line (train, val, test)
    <split>_db/               an LMDB of Caffe Datum records, or (backend hdf5) list.txt and the .h5 files it
                              names (digits.formats.hdf5_io); <split>_db_labels.bin their labels
    mean.binaryproto          the training split's mean image (Caffe BlobProto, BGR); mean.png shows it
    stats.json                what parse and create-db found: counts, sizes, skipped files (by section)
    upload/<split>/           zips of class folders unpacked; upload_<what>.txt uploaded lists
    job.json or image.json    the image settings (image.json where digits.tools.create_db made the folder)

A folder made by our form, by `digits.tools.create_db` or by other tools that write the same files reads the
same way (torch-free).
"""

from __future__ import annotations

import array
import json
import os
from dataclasses import dataclass
from typing import Any

from digits.store import JOB_FILE, write_json_atomic

SPLITS = ("train", "val", "test")
LABELS = "labels.txt"
MEAN = "mean.binaryproto"
MEAN_PNG = "mean.png"
STATS = "stats.json"
IMAGE_JSON = "image.json"
UPLOAD_DIR = "upload"


def list_name(split: str) -> str:
    return f"{split}.txt"


def db_name(split: str) -> str:
    return f"{split}_db"


def db_labels_path(db_path: str) -> str:
    """The file beside a split's LMDB that holds each record's label (what create-db writes)."""
    return db_path + "_labels.bin"


def db_labels_name(split: str) -> str:
    return db_labels_path(db_name(split))


def upload_list_name(what: str) -> str:
    """An uploaded list in the job folder: what is train, val, test or labels."""
    return f"upload_{what}.txt"


class DatasetFolderError(Exception):
    """A dataset folder that cannot be used as one; the message says which file is missing or wrong."""


def read_labels(folder: str) -> list[str]:
    """The class names ([] when there is no labels.txt)."""
    try:
        with open(os.path.join(folder, LABELS), encoding="utf-8") as fh:
            return [line.rstrip("\n") for line in fh if line.strip()]
    except OSError:
        return []


def write_labels(folder: str, labels: list[str]) -> None:
    with open(os.path.join(folder, LABELS), "w", encoding="utf-8") as fh:
        fh.writelines(label + "\n" for label in labels)


def read_list(path: str) -> list[tuple[str, int]]:
    """A split list's (path, label) pairs."""
    with open(path, encoding="utf-8") as fh:
        out = []
        for line in fh:
            image, label = line.rstrip("\n").rsplit(" ", 1)
            out.append((image, int(label)))
        return out


def write_list(folder: str, split: str, entries: list[tuple[str, int]]) -> None:
    with open(os.path.join(folder, list_name(split)), "w", encoding="utf-8") as fh:
        fh.writelines(f"{path} {label}\n" for path, label in entries)


def read_stats(folder: str) -> dict[str, Any]:
    try:
        with open(os.path.join(folder, STATS)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def update_stats(folder: str, section: str, value: Any) -> None:
    """Set one section of stats.json; a dataset's tasks run one after another, so nothing races here."""
    stats = read_stats(folder)
    stats[section] = value
    write_json_atomic(os.path.join(folder, STATS), stats)


def training_images(folder: str) -> int | None:
    """How many images the training split holds, when stats.json says."""
    stats = read_stats(folder)
    for count in (stats.get("train", {}).get("entries"), stats.get("parse", {}).get("counts", {}).get("train")):
        if isinstance(count, int):
            return count
    return None


def record_labels(folder: str, split: str) -> array.array:
    """The label of each record of a split's DB, in key order (written by create-db)."""
    labels = array.array("i")
    try:
        with open(os.path.join(folder, db_labels_name(split)), "rb") as fh:
            labels.frombytes(fh.read())
    except OSError:
        pass
    return labels


def split_sources(folder: str, split: str) -> list[str] | None:
    """The source path of each record of a split: its list without the images create-db skipped."""
    try:
        listed = [path for path, _ in read_list(os.path.join(folder, list_name(split)))]
    except (OSError, ValueError):
        return None
    try:
        skipped = {s["path"] for s in read_stats(folder).get(split, {}).get("skipped", [])}
    except (KeyError, TypeError, AttributeError):
        skipped = set()
    return [p for p in listed if p not in skipped]


def read_image_settings(folder: str) -> dict[str, Any] | None:
    """The image settings (channels, width, height, resize mode, encoding) of a dataset folder."""
    for name in (JOB_FILE, IMAGE_JSON):
        try:
            with open(os.path.join(folder, name)) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        image = data.get("extra", {}).get("image") if name == JOB_FILE else data
        if image:
            return image
    return None


@dataclass
class DatasetFolder:
    """An opened dataset folder: its path, class names and image settings."""

    path: str
    labels: list[str]
    image: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of its records."""
        return int(self.image["channels"]), int(self.image["height"]), int(self.image["width"])

    def db(self, split: str) -> str | None:
        """The split's LMDB folder, if it was built."""
        path = os.path.join(self.path, db_name(split))
        return path if os.path.isdir(path) else None

    @property
    def mean(self) -> str | None:
        path = os.path.join(self.path, MEAN)
        return path if os.path.isfile(path) else None


def open_dataset(path: str) -> DatasetFolder:
    """Read a dataset folder's labels and image settings; DatasetFolderError names what is missing."""
    if not os.path.isfile(os.path.join(path, LABELS)):
        raise DatasetFolderError(f"dataset folder {path} has no readable {LABELS}")
    labels = read_labels(path)
    image = read_image_settings(path)
    if not image:
        raise DatasetFolderError(f"dataset folder {path} does not say its image size (no {JOB_FILE} or {IMAGE_JSON})")
    return DatasetFolder(path, labels, image)
