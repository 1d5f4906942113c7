"""DIGITS' digits/dataset/images/classification/test_views.py, ported: image classification datasets made from
DIGITS' imageset (3 classes x 10 PNG gradients, 10x10) through DIGITS' form, in DIGITS' field names.

ours                                              DIGITS
test_new_dataset_page                             TestViews.test_page_dataset_new
test_a_dataset_that_does_not_exist                TestViews.test_nonexistent_dataset
test_a_folder_that_does_not_exist                 TestCreation.test_nonexistent_folder
test_create_json                                  TestCreation.test_create_json
test_create_delete                                TestCreation.test_create_delete
test_create_abort_delete                          TestCreation.test_create_abort_delete
test_create_wait_delete                           TestCreation.test_create_wait_delete
test_textfiles[absolute|relative-local|upload]    TestCreation.test_textfiles (check_textfiles, 4 ways)
test_abort_explore_fail                           TestCreation.test_abort_explore_fail (*)
test_image_count[train|val|test]                  TestImageCount.test_image_count
test_max_per_class[train|val|test]                TestMaxPerClass.test_max_per_class
test_min_per_class[train|val|test]                TestMinPerClass.test_min_per_class
test_index_json[variant]                          TestCreated*.test_index_json
test_dataset_json[variant]                        TestCreated*.test_dataset_json
test_mean_dimensions[variant]                     TestCreated*.test_mean_dimensions
test_edit_name[variant], test_edit_notes[variant] TestCreated*.test_edit_name, test_edit_notes
test_backend_selection[variant]                   TestCreated*.test_backend_selection
test_explore[variant-train|val]                   TestCreated*.test_explore_train, test_explore_val (**)
test_clone[variant]                               BaseViewsTestWithDataset.test_clone (***)
test_hdf5[none|gzip]                              TestCreatedHdf5*: test_index_json, test_dataset_json,
                                                  test_mean_dimensions, test_backend_selection,
                                                  test_compression_method

Variants, as DIGITS' TestCreated subclasses: color (TestCreated), grayscale, wide, tall, jpeg, raw, raw_grayscale.

(*) DIGITS answered the explorer of an aborted dataset with 500 "status should be"; ours refuses it with 404
    naming the database it lacks (never a bare 500, by design).
(**) DIGITS looked for its explorer's "Items per page"; ours has a fixed page and links each record's picture,
    which is what is checked.
(***) DIGITS compared the two datasets' JSON less id and directory, and read each job's form_data from its
    scheduler (a server object); ours compares the JSON less id and the times our JSON adds (history, creation
    time, build speeds), and reads each job's form from GET /jobs/<id>/json.
"""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from tests.digits_views.conftest import DATASET_FIELDS
from tests.digits_views.imageset import make_imageset


def test_new_dataset_page(digits):
    r = digits.http.get("/datasets/images/classification/new")
    assert r.status_code == 200
    assert "New Image Classification Dataset" in r.get_data(as_text=True)


def test_a_dataset_that_does_not_exist(digits):
    assert not digits.exists("foo", "datasets")


def test_a_folder_that_does_not_exist(digits):
    r = digits.http.post("/datasets/images/classification", data={**DATASET_FIELDS, "folder_train": "/not-a-directory"})
    assert not 300 <= r.status_code <= 310
    assert r.status_code == 400 and "does not exist" in r.get_data(as_text=True)


def test_create_json(digits, gates):
    with digits.slots_held(gates):
        job_id = digits.create_dataset(json=True)
        assert digits.status(job_id, "datasets") in ("Initialized", "Waiting")
        assert digits.abort(job_id, "datasets") == 200
    assert digits.wait(job_id, "datasets") == "Aborted"


def test_create_delete(digits):
    job_id = digits.create_dataset()
    assert digits.delete(job_id, "datasets") == 200
    assert not digits.exists(job_id, "datasets")


def test_create_abort_delete(digits, gates):
    with digits.slots_held(gates):
        job_id = digits.create_dataset()
        assert digits.abort(job_id, "datasets") == 200
    assert digits.delete(job_id, "datasets") == 200
    assert not digits.exists(job_id, "datasets")


def test_create_wait_delete(digits):
    job_id = digits.create_dataset()
    assert digits.wait(job_id, "datasets") == "Done"
    assert digits.delete(job_id, "datasets") == 200
    assert not digits.exists(job_id, "datasets")


@pytest.mark.parametrize("local", [True, False], ids=["local", "upload"])
@pytest.mark.parametrize("absolute", [True, False], ids=["absolute", "relative"])
def test_textfiles(digits, absolute, local):
    """A dataset from an image list and a labels file, the same list for training and validation: files on the
    server or uploads, paths absolute or relative to a folder given beside the list."""
    labels, images = "", ""
    for label_id, (label, paths) in enumerate(digits.paths.items()):
        labels += f"{label}\n"
        for path in paths:
            images += f"{os.path.join(digits.imageset, path) if absolute else path} {label_id}\n"
    fields = {"method": "textfile", "textfile_use_val": "y"}
    if local:
        lists = os.path.join(os.path.dirname(digits.imageset), f"lists-{absolute}")
        os.makedirs(lists, exist_ok=True)
        train, labels_file = os.path.join(lists, "local_train.txt"), os.path.join(lists, "local_labels.txt")
        for path, text in ((train, images), (labels_file, labels)):
            with open(path, "w") as fh:
                fh.write(text)
        fields.update(
            textfile_use_local_files="True",
            textfile_local_train_images=train,
            textfile_local_val_images=train,
            textfile_local_labels_file=labels_file,
        )
    else:
        fields.update(
            textfile_train_images=(io.BytesIO(images.encode()), "train.txt"),
            textfile_val_images=(io.BytesIO(images.encode()), "val.txt"),
            textfile_labels_file=(io.BytesIO(labels.encode()), "labels.txt"),
        )
    if not absolute:
        fields.update(textfile_train_folder=digits.imageset, textfile_val_folder=digits.imageset)
    job_id = digits.create_dataset(**fields)
    assert digits.wait(job_id, "datasets") == "Done"


def test_abort_explore_fail(digits, gates):
    with digits.slots_held(gates):
        job_id = digits.create_dataset()
        assert digits.abort(job_id, "datasets") == 200
    assert digits.wait(job_id, "datasets") == "Aborted"
    r = digits.http.get(f"/datasets/images/classification/explore?job_id={job_id}&db=val", follow_redirects=True)
    assert r.status_code == 404, r.get_data(as_text=True)[:500]
    assert "val" in r.get_data(as_text=True)


def separate_folder(split: str, digits, **fields) -> dict:
    """DIGITS' fields for a separate val or test folder (the same imageset), with `fields` for it."""
    if split == "train":
        return {f"folder_train_{k}": v for k, v in fields.items()}
    out = {f"has_{split}_folder": "True", f"folder_{split}": digits.imageset}
    out.update({f"folder_{split}_{k}": v for k, v in fields.items()})
    return out


def parse_info_of(info: dict, split: str) -> dict:
    """The ParseFolderTasks entry DIGITS read: the only one, or the second one for a separate folder."""
    tasks = info["ParseFolderTasks"]
    if split == "train":
        assert len(tasks) == 1, tasks
        return tasks[0]
    assert len(tasks) == 2, tasks
    return tasks[1]


SPLITS = ["train", "val", "test"]


@pytest.mark.parametrize("split", SPLITS)
def test_image_count(digits, split):
    fields = {"folder_pct_val": "20", "folder_pct_test": "10", **separate_folder(split, digits)}
    job_id = digits.create_dataset(**fields)
    assert digits.wait(job_id, "datasets") == "Done"
    parse = parse_info_of(digits.info(job_id, "datasets"), split)
    if split == "train":
        count = parse["train_count"] + parse["val_count"] + parse["test_count"]
        assert parse["val_count"] == 0.2 * count and parse["test_count"] == 0.1 * count
    else:
        others = [k for k in ("train_count", "val_count", "test_count") if k != f"{split}_count"]
        assert [parse[k] for k in others] == [0, 0]
        count = parse[f"{split}_count"]
    assert parse["label_count"] == len(digits.paths)
    assert count == 10 * parse["label_count"]
    assert digits.delete(job_id, "datasets") == 200
    assert not digits.exists(job_id, "datasets")


@pytest.mark.parametrize("split", SPLITS)
def test_max_per_class(digits, split):
    fields = {"folder_pct_val": "0", **separate_folder(split, digits, max_per_class="5")}
    job_id = digits.create_dataset(**fields)
    assert digits.wait(job_id, "datasets") == "Done"
    parse = parse_info_of(digits.info(job_id, "datasets"), split)
    assert parse["train_count"] + parse["val_count"] + parse["test_count"] == 5 * parse["label_count"]
    assert digits.delete(job_id, "datasets") == 200
    assert not digits.exists(job_id, "datasets")


@pytest.fixture(scope="module")
def unbalanced(tmp_path_factory) -> str:
    """DIGITS' imageset with a fourth class of 5 images (UNBALANCED_CATEGORY)."""
    folder = tmp_path_factory.mktemp("unbalanced") / "imageset"
    make_imageset(str(folder), unbalanced=True)
    return str(folder)


@pytest.mark.parametrize("split", SPLITS)
def test_min_per_class(digits, unbalanced, split):
    """One more image per class than the unbalanced class has: that class is left out."""
    fields = {"folder_train": unbalanced, "folder_pct_val": "0", **separate_folder(split, digits, min_per_class="6")}
    if split != "train":
        fields[f"folder_{split}"] = unbalanced
    job_id = digits.create_dataset(**fields)
    assert digits.wait(job_id, "datasets") == "Done"
    parse = parse_info_of(digits.info(job_id, "datasets"), split)
    assert parse["label_count"] + 1 == 4
    assert digits.delete(job_id, "datasets") == 200
    assert not digits.exists(job_id, "datasets")


# ---- a dataset that has been created (TestCreated and its subclasses) ----------------------------------------------
VARIANTS = {
    "color": {},
    "grayscale": {"resize_channels": "1"},
    "wide": {"resize_width": "20"},
    "tall": {"resize_height": "20"},
    "jpeg": {"encoding": "jpg"},
    "raw": {"encoding": "none"},
    "raw_grayscale": {"encoding": "none", "resize_channels": "1"},
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def created(request, digits):
    """(variant's fields, dataset id): one dataset per variant, made through DIGITS' .json route."""
    fields = VARIANTS[request.param]
    job_id = digits.create_dataset(json=True, **fields)
    assert digits.wait(job_id, "datasets") == "Done"
    return {**DATASET_FIELDS, **fields}, job_id


def test_index_json(digits, created):
    _, job_id = created
    r = digits.http.get("/index.json")
    assert r.status_code == 200
    assert job_id in [d["id"] for d in r.get_json()["datasets"]]


def test_dataset_json(digits, created):
    _, job_id = created
    r = digits.http.get(f"/datasets/{job_id}.json")
    assert r.status_code == 200 and r.get_json()["id"] == job_id


def test_mean_dimensions(digits, created):
    fields, job_id = created
    r = digits.http.get(f"/files/{job_id}/mean.jpg")
    assert r.status_code == 200
    size = Image.open(io.BytesIO(r.data)).size
    assert size == (int(fields["resize_width"]), int(fields["resize_height"]))


def test_edit_name(digits, created):
    _, job_id = created
    assert digits.edit(job_id, name="new name") == 200
    r = digits.http.get(f"/datasets/summary?job_id={job_id}")
    assert r.status_code == 200 and "new name" in r.get_data(as_text=True)


def test_edit_notes(digits, created):
    _, job_id = created
    assert digits.edit(job_id, notes="new notes") == 200
    assert digits.http.get(f"/jobs/{job_id}/json").get_json()["notes"] == "new notes"


def test_backend_selection(digits, created):
    fields, job_id = created
    tasks = digits.info(job_id, "datasets")["CreateDbTasks"]
    assert tasks and all(task["backend"] == fields["backend"] for task in tasks)


@pytest.mark.parametrize("db", ["train", "val"])
def test_explore(digits, created, db):
    _, job_id = created
    r = digits.http.get(f"/datasets/images/classification/explore?job_id={job_id}&db={db}", follow_redirects=True)
    assert r.status_code == 200
    assert f"records/{db}/" in r.get_data(as_text=True)


# Our JSON's additions that say when and how fast, which differ between any two runs.
TIMES = ("creation time", "history", "elapsed")


def without_times(info: dict) -> dict:
    out = {k: v for k, v in info.items() if k not in ("id", "directory", *TIMES)}
    stats = out.get("stats") or {}
    for split in stats.values() if isinstance(stats, dict) else ():
        if isinstance(split, dict):
            split.pop("seconds", None)
            split.pop("images_per_second", None)
    return out


def test_clone(digits, created):
    options = {
        "encoding": "png",
        "folder_pct_test": "0",
        "folder_pct_val": "25",
        "folder_test": "",
        "folder_test_min_per_class": "2",
        "folder_train_max_per_class": "3",
        "folder_train_min_per_class": "1",
        "folder_val_min_per_class": "2",
        "resize_mode": "half_crop",
    }
    first = digits.create_dataset(**options)
    assert digits.wait(first, "datasets") == "Done"
    second = digits.create_dataset(clone=first)
    assert digits.wait(second, "datasets") == "Done"
    one, two = (digits.info(j, "datasets") for j in (first, second))
    assert without_times(one) == without_times(two)
    forms = [digits.http.get(f"/jobs/{j}/json").get_json()["form"] for j in (first, second)]
    assert forms[0] == forms[1]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_hdf5(digits, compression):
    job_id = digits.create_dataset(json=True, backend="hdf5", compression=compression)
    assert digits.wait(job_id, "datasets") == "Done"
    assert job_id in [d["id"] for d in digits.http.get("/index.json").get_json()["datasets"]]
    info = digits.info(job_id, "datasets")
    assert info["id"] == job_id
    assert all(t["backend"] == "hdf5" and t["compression"] == compression for t in info["CreateDbTasks"])
    r = digits.http.get(f"/files/{job_id}/mean.jpg")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.data)).size == (10, 10)
