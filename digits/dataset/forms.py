"""The New Dataset > Images > Classification form, with DIGITS' field names, checked field by field."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from digits.config import Settings
from digits.datapaths import PathRefused, PathRules, check_server_path, path_rules
from digits.dataset.preview import preview_folder
from digits.folders.dataset import upload_list_name
from digits.formats.hdf5_io import COMPRESSIONS
from digits.formats.images import ENCODINGS, RESIZE_MODES
from digits.forms import FormReader

MAX_SIDE = 4096
BACKENDS = ("lmdb", "hdf5")
SPLIT_TITLES = {"train": "Training", "val": "Validation", "test": "Test"}

# The label a person sees for each field, by its name (DIGITS' names, which scripts send): the form shows these
# and error messages name fields by them.
FIELD_LABELS = {
    "dataset_name": "Dataset name",
    "group_name": "Group name (optional)",
    "method": "Images from",
    "resize_channels": "Image type",
    "resize_width": "Width",
    "resize_height": "Height",
    "resize_mode": "Resize transformation",
    "encoding": "Image encoding",
    "backend": "Database backend",
    "compression": "Compression",
    "folder_pct_val": "% for validation",
    "folder_pct_test": "% for testing",
    "has_val_folder": "Separate validation images folder",
    "has_test_folder": "Separate test images folder",
    "textfile_use_local_files": "Use lists and labels already on the server",
    "textfile_labels_file": "Labels file",
    "textfile_local_labels_file": "Labels file on the server",
    "textfile_shuffle": "Shuffle the lines",
    "random_seed": "Random seed",
    "lmdb_train": "Training LMDB",
    "lmdb_val": "Validation LMDB",
    "lmdb_labels_file": "LMDB labels file",
    "lmdb_local_labels_file": "LMDB labels file on the server",
}
METHODS = ("folder", "textfile", "lmdb")


def _split_labels(split: str, title: str) -> dict[str, str]:
    which = "" if split == "train" else f" ({title.lower()})"
    labels = {
        f"folder_{split}": f"{title} images",
        f"folder_{split}_zip": f"{title} images (zip of class folders)",
        f"folder_{split}_min_per_class": f"Minimum samples per class{which}",
        f"folder_{split}_max_per_class": f"Maximum samples per class{which}",
        f"textfile_{split}_images": f"{title} list",
        f"textfile_local_{split}_images": f"{title} list on the server",
        f"textfile_{split}_folder": f"Folder the {title.lower()} list's paths start from (optional)",
    }
    if split != "train":
        labels[f"textfile_use_{split}"] = f"Use a {title.lower()} list"
    return labels


for split_name, split_title in SPLIT_TITLES.items():
    FIELD_LABELS.update(_split_labels(split_name, split_title))


@dataclass
class FolderSource:
    """Where a split's images come from in folder mode, with its per-class limits."""

    path: str
    min_per_class: int | None = None
    max_per_class: int | None = None


@dataclass
class DatasetForm:
    dataset_name: str
    group_name: str
    method: str
    channels: int
    width: int
    height: int
    resize_mode: str
    encoding: str
    backend: str = "lmdb"
    compression: str = "none"
    # folder method
    train: FolderSource | None = None
    val: FolderSource | None = None
    test: FolderSource | None = None
    pct_val: float = 25.0
    pct_test: float = 0.0
    # textfile method: split -> list file (server path, or a name inside the job folder once uploaded)
    lists: dict[str, str] = field(default_factory=dict)
    list_folders: dict[str, str] = field(default_factory=dict)
    labels_file: str | None = None
    shuffle: bool = True
    # lmdb method: split -> the real path of a Caffe LMDB folder (digits.dataset.lmdb_import)
    lmdbs: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    # files uploaded with the form, saved into the job folder by the view: field -> (FileStorage, file name)
    uploads: dict[str, tuple[Any, str]] = field(default_factory=dict)

    @property
    def splits(self) -> list[str]:
        if self.method == "textfile":
            return [s for s in ("train", "val", "test") if s in self.lists]
        if self.method == "lmdb":
            return [s for s in ("train", "val") if s in self.lmdbs]
        out = ["train"]
        if self.val is not None or self.pct_val > 0:
            out.append("val")
        if self.test is not None or self.pct_test > 0:
            out.append("test")
        return out

    def image_settings(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "width": self.width,
            "height": self.height,
            "resize_mode": self.resize_mode,
            "encoding": self.encoding,
            "backend": self.backend,
            "compression": self.compression,
        }

    def parse_args(self) -> dict[str, Any]:
        """What the parse task needs, as plain JSON."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "uploads"}


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) else value


def _server_path(r: FormReader, name: str, settings: Settings, want_dir: bool, required: bool = True) -> str | None:
    value = r.text(name, required=required)
    if not value:
        return None
    try:
        return check_server_path(value, settings, want_dir=want_dir)
    except PathRefused as e:
        r.error(name, str(e))
        return None


def _class_folders(path: str) -> list[str]:
    return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))


def _folder_source(
    r: FormReader, settings: Settings, prefix: str, path_field: str, uploaded_dir: str | None, from_zip: bool
) -> FolderSource | None:
    """The split's folder: unpacked from its zip (path "" until the view has unpacked it), or a server folder."""
    path = uploaded_dir or ("" if from_zip else _server_path(r, path_field, settings, want_dir=True))
    low = r.integer(f"{prefix}_min_per_class", None, minimum=1)
    high = r.integer(f"{prefix}_max_per_class", None, minimum=1)
    if low is not None and high is not None and low > high:
        r.error(f"{prefix}_max_per_class", "Must not be smaller than the minimum per class.")
    return FolderSource(path, low, high) if path or from_zip else None


def _class_folder_problem(path: str, rules: PathRules | None = None) -> str | None:
    classes = _class_folders(path)
    if len(classes) >= 2:
        return None
    problem = (
        f"{path} holds {len(classes)} class folder{'' if len(classes) == 1 else 's'}; a classification dataset "
        "needs at least 2 (one subfolder of images per class)"
    )
    if rules is not None:  # a server folder: say which folder was probably meant, as the form's preview does
        warning = preview_folder(path, rules, max_entries=2_000).warning
        if warning is not None and warning.suggestions:
            problem += f". Did you mean {' or '.join(warning.suggestions)}?"
    return problem


def pending_zips(form: DatasetForm) -> list[str]:
    """The splits whose images come from a zip the view has yet to unpack."""
    if form.method != "folder":
        return []
    return [s for s in ("train", "val", "test") if getattr(form, s) is not None and getattr(form, s).path == ""]


def attach_unpacked(form: DatasetForm, folders: dict[str, str], zip_fields: dict[str, str]) -> dict[str, list[str]]:
    """Give the zip splits their unpacked folders and check them as a server folder is checked: {field: [...]}."""
    for split, folder in folders.items():
        getattr(form, split).path = folder
    if "train" in folders:
        problem = _class_folder_problem(folders["train"])
        if problem:
            shown = problem.replace(folders["train"], "the zip", 1)
            return {zip_fields["train"]: [shown]}
    return {}


def _read_lmdb_fields(r: FormReader, files, settings: Settings, form: DatasetForm) -> None:
    """The Caffe LMDB folders (server paths) and the optional labels file (uploaded, or a server path)."""
    for split in ("train", "val"):
        path = _server_path(r, f"lmdb_{split}", settings, want_dir=True, required=split == "train")
        if path:
            form.lmdbs[split] = path
    uploaded = files.get("lmdb_labels_file")
    local = r.text("lmdb_local_labels_file")
    if uploaded and uploaded.filename:
        if local:
            r.error(
                "lmdb_labels_file", f"Give one labels file: this upload or {FIELD_LABELS['lmdb_local_labels_file']}."
            )
        form.labels_file = upload_list_name("labels")
        form.uploads["lmdb_labels_file"] = (uploaded, form.labels_file)
    elif local:
        form.labels_file = _server_path(r, "lmdb_local_labels_file", settings, want_dir=False)


def read_dataset_form(
    values, files, settings: Settings, uploaded_dirs: dict[str, str] | None = None, zip_splits=()
) -> tuple[DatasetForm | None, dict[str, list[str]]]:
    """Check a submitted form; returns (form, {}) or (None, {field: [messages]}).

    zip_splits: splits whose images come in a zip not unpacked yet. Every other field is checked first, so a
    bad form costs no unpacking; their folders are filled in by attach_unpacked (see pending_zips).
    """
    r = FormReader(values, FIELD_LABELS)
    uploaded_dirs = uploaded_dirs or {}
    name = r.text("dataset_name", required=True, max_length=200)
    group = r.text("group_name", max_length=200)
    method = r.choice("method", METHODS, "folder")
    channels = r.choice("resize_channels", ("1", "3"), "3")
    width = r.integer("resize_width", 256, minimum=1, maximum=MAX_SIDE)
    height = r.integer("resize_height", 256, minimum=1, maximum=MAX_SIDE)
    mode = r.choice("resize_mode", tuple(RESIZE_MODES), "squash")
    encoding = r.choice("encoding", ENCODINGS, "png")
    backend = r.choice("backend", BACKENDS, "lmdb")
    compression = r.choice("compression", COMPRESSIONS, "none")
    # DIGITS' rules: an LMDB is never compressed, and HDF5 holds raw pixels, whatever the form said.
    if backend == "lmdb":
        compression = "none"
    else:
        encoding = "none"
    form = DatasetForm(
        name, group, method, int(channels), width or 256, height or 256, mode, encoding, backend, compression
    )

    if method == "folder":
        for split in ("train", "val", "test"):
            if split != "train" and not r.boolean(f"has_{split}_folder"):
                continue
            field_name = f"folder_{split}"
            source = _folder_source(r, settings, field_name, field_name, uploaded_dirs.get(split), split in zip_splits)
            setattr(form, split, source)
        if form.train and form.train.path and "folder_train" not in r.errors:
            problem = _class_folder_problem(form.train.path, path_rules(settings))
            if problem:
                r.error("folder_train", problem)
        form.pct_val = 0.0 if form.val else r.number("folder_pct_val", 25.0, minimum=0, maximum=100)
        form.pct_test = 0.0 if form.test else r.number("folder_pct_test", 0.0, minimum=0, maximum=100)
        if form.pct_val is not None and form.pct_test is not None and form.pct_val + form.pct_test >= 100:
            r.error("folder_pct_val", "Validation and test percentages must leave some images for training.")
    elif method == "lmdb":
        _read_lmdb_fields(r, files, settings, form)
    else:
        local = r.boolean("textfile_use_local_files")
        for split, use_field in (("train", None), ("val", "textfile_use_val"), ("test", "textfile_use_test")):
            if use_field and not r.boolean(use_field):
                continue
            upload_field, local_field = f"textfile_{split}_images", f"textfile_local_{split}_images"
            if local:
                path = _server_path(r, local_field, settings, want_dir=False)
                if path:
                    form.lists[split] = path
            elif files.get(upload_field) and files[upload_field].filename:
                form.lists[split] = upload_list_name(split)
                form.uploads[upload_field] = (files[upload_field], form.lists[split])
            else:
                r.error(upload_field, f"Upload the {SPLIT_TITLES[split].lower()} list (lines of 'path label').")
            folder = r.text(f"textfile_{split}_folder")
            if folder:
                checked = _server_path(r, f"textfile_{split}_folder", settings, want_dir=True)
                if checked:
                    form.list_folders[split] = checked
        if local:
            form.labels_file = _server_path(r, "textfile_local_labels_file", settings, want_dir=False)
        elif files.get("textfile_labels_file") and files["textfile_labels_file"].filename:
            form.labels_file = upload_list_name("labels")
            form.uploads["textfile_labels_file"] = (files["textfile_labels_file"], form.labels_file)
        else:
            r.error("textfile_labels_file", "Upload the labels file (one class name per line).")
        form.shuffle = r.boolean("textfile_shuffle", True)
    form.seed = r.integer("random_seed", 0, minimum=0, maximum=2**32 - 1) or 0  # DIGITS: any 32-bit unsigned
    if r.errors:
        return None, r.errors
    return form, {}
