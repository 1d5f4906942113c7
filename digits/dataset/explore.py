"""Browse what went into a dataset (records decoded from its LMDBs or HDF5 files), and pick server folders for
the form and preview what they hold."""

from __future__ import annotations

import io
import os

from flask import Blueprint, current_app, jsonify, render_template, request, send_file

from digits.datapaths import PathRefused, check_server_path, inside, no_paths_message, path_rules, server_home
from digits.dataset import preview
from digits.errors import ApiError, Conflict, NotFound
from digits.folders.dataset import SPLITS, db_name, read_labels, record_labels
from digits.formats.caffe_pb import Datum, datum_to_array
from digits.formats.hdf5_io import Hdf5Error, Hdf5Reader, is_hdf5_split
from digits.formats.images import encode_image
from digits.formats.lmdb_io import LmdbReader, record_key
from digits.offload import native_lock, off_loop
from digits.views.common import job_or_404, workspace

bp = Blueprint("dataset_explore", __name__)
_LMDB_OPEN = native_lock()
PAGE_SIZE = 48


def _db_path(job_id: str, split: str) -> tuple[str, str]:
    job = job_or_404(job_id, "dataset")
    if split not in SPLITS:
        raise NotFound(f"no split {split!r}; splits are {', '.join(SPLITS)}")
    job_dir = workspace().store.job_dir(job.id)
    path = os.path.join(job_dir, db_name(split))
    if not os.path.isdir(path):
        raise NotFound(f"dataset {job.id} has no {split} database (yet)")
    return job_dir, path


@bp.route("/datasets/<job_id>/explore")
def explore(job_id: str):
    job = job_or_404(job_id, "dataset")
    split = request.args.get("split", "train")
    job_dir, _ = _db_path(job.id, split)
    labels = read_labels(job_dir)
    record_label = record_labels(job_dir, split)
    try:
        label = int(request.args["label"]) if request.args.get("label", "") != "" else None
        page = max(0, int(request.args.get("page", 0)))
    except ValueError:
        raise ApiError("label and page must be whole numbers") from None
    indices = range(len(record_label)) if label is None else [i for i, v in enumerate(record_label) if v == label]
    pages = max(1, -(-len(indices) // PAGE_SIZE))
    page = min(page, pages - 1)
    shown = [
        (i, labels[record_label[i]] if record_label[i] < len(labels) else str(record_label[i]))
        for i in indices[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    ]
    splits = [s for s in SPLITS if os.path.isdir(os.path.join(job_dir, db_name(s)))]
    return render_template(
        "datasets/explore.html",
        job=job,
        split=split,
        splits=splits,
        labels=labels,
        label=label,
        page=page,
        pages=pages,
        total=len(indices),
        records=shown,
    )


def _record_picture(path: str, index: int) -> tuple[bytes, str] | None:
    """A record's picture and its type, read from the split's LMDB or HDF5 files and encoded when stored raw
    (plain data in, plain data out: it runs off the event loop). One at a time: LMDB refuses a second open of a
    database in one process, and a page of explore asks for its pictures together."""
    if is_hdf5_split(path):
        with _LMDB_OPEN:
            try:
                with Hdf5Reader(path) as db:
                    if not 0 <= index < len(db):
                        return None
                    arr, _ = db.get(index)
            except Hdf5Error as e:
                raise Conflict(str(e)) from None
        return encode_image(arr, "png"), "image/png"
    with _LMDB_OPEN, LmdbReader(path) as db:
        raw = db.get(record_key(index))
    if raw is None:
        return None
    datum = Datum.FromString(raw)
    if datum.encoded:
        return datum.data, "image/jpeg" if datum.data[:2] == b"\xff\xd8" else "image/png"
    arr, _ = datum_to_array(raw)
    return encode_image(arr, "png"), "image/png"


@bp.route("/datasets/<job_id>/records/<split>/<int:index>")
def record_image(job_id: str, split: str, index: int):
    """One record as an image: encoded records are sent as stored; raw ones are encoded to PNG."""
    _, path = _db_path(job_id, split)
    picture = off_loop(_record_picture, path, index)
    if picture is None:
        raise NotFound(f"{split} database has no record {index}")
    data, kind = picture
    return send_file(io.BytesIO(data), mimetype=kind, max_age=3600)


@bp.route("/datasets/folders/json")
def folders():
    """Subfolders of a server folder, for the form's folder picker; limited to what the server may read."""
    settings = current_app.config["DIGITS_SETTINGS"]
    path = request.args.get("path", "")
    rules = path_rules(settings)
    roots = rules.roots
    if roots == []:
        raise ApiError(no_paths_message(settings))
    if not path:
        if roots:
            return jsonify({"path": "", "parent": None, "folders": [{"name": r, "path": r} for r in roots]})
        path = server_home()
    try:
        real = check_server_path(path, settings, want_dir=True)
    except PathRefused as e:
        raise ApiError(str(e)) from None
    entries = []
    try:
        with os.scandir(real) as it:
            for entry in it:
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                if rules.hides(os.path.realpath(entry.path)):
                    continue  # the jobs folder inside a data root is not listed
                entries.append({"name": entry.name, "path": os.path.join(real, entry.name)})
    except PermissionError:
        raise ApiError(f"{path} is not readable by the server") from None
    entries.sort(key=lambda e: e["name"].lower())
    parent = os.path.dirname(real) if real != "/" else None
    if parent and roots is not None and not any(inside(parent, r) for r in roots):
        parent = None
    return jsonify({"path": real, "parent": parent, "folders": entries[:2000]})


@bp.route("/datasets/folders/preview/json")
def folder_preview():
    """The class folders under a server folder and their image counts, with a warning when it looks like the
    wrong folder (digits.dataset.preview); the same paths as the folder picker may be previewed.

    A path that cannot be used is an answer, not a failed request ({"ok": false, "problem": why}): the form asks
    while a person types, and most of what they have typed so far is no folder yet."""
    settings = current_app.config["DIGITS_SETTINGS"]
    path = request.args.get("path", "").strip()
    if not path:
        raise ApiError("give the folder to preview: ?path=/folder/on/the/server")
    try:
        real = check_server_path(path, settings, want_dir=True)
    except PathRefused as e:
        return jsonify({"ok": False, "path": path, "problem": str(e)})
    found = off_loop(preview.preview_folder, real, path_rules(settings), preview.MAX_ENTRIES)
    return jsonify({"ok": True, **found.to_dict()})
