"""Importing an LMDB of Caffe Datum records made by Caffe's convert_imageset (no DIGITS job behind it) through the
form's JSON twin, with the real dataset worker: counts, labels, mean and explorer as for a dataset we built, and
every bad input refused with the field or record key named."""

from __future__ import annotations

import io
import os
import re

import lmdb
import numpy as np
import pytest
from PIL import Image

from digits.formats.caffe_pb import read_mean
from tests.support.caffe_lmdb import convert_imageset, datum_bytes, shape_images, write_lmdb
from tests.support.waiting import LONG_S

CREATE = "/datasets/images/classification/json"


def import_form(train, **fields) -> dict:
    form = {"method": "lmdb", "lmdb_train": None if train is None else str(train), "dataset_name": "imported", **fields}
    return {k: v for k, v in form.items() if v is not None}


def create(client, form):
    return client.post(CREATE, data=form, content_type="multipart/form-data")


def built(client, recorder, form) -> tuple[str, dict]:
    r = create(client, form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    status = recorder.wait_status(job_id, timeout=LONG_S)
    js = client.get(f"/datasets/{job_id}/json").get_json()
    assert status == "Done", js["error"]
    return job_id, js


def failed(client, recorder, form) -> str:
    """The error of a dataset job that the form accepted and its worker refused."""
    r = create(client, form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Error"
    return client.get(f"/datasets/{job_id}/json").get_json()["error"]


@pytest.mark.parametrize("maker", ["ours", "pycaffe"])
@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "encoded-png"])
def test_a_convert_imageset_lmdb_imports_like_a_dataset_we_built(
    signed_in, recorder, workspace, tmp_path, request, maker, encoded
):
    caffe = request.getfixturevalue("caffe") if maker == "pycaffe" else None
    train_images = shape_images(13, size=(20, 16))
    val_images = shape_images(6, size=(20, 16), seed=1)
    train = convert_imageset(tmp_path / "train_lmdb", train_images, encoded, caffe)
    val = convert_imageset(tmp_path / "val_lmdb", val_images, encoded, caffe)
    labels = io.BytesIO(b"circle\nsquare\ntriangle\n")
    form = import_form(train, lmdb_val=val, lmdb_labels_file=(labels, "synsets.txt"))
    job_id, js = built(signed_in, recorder, form)

    assert js["labels"] == ["circle", "square", "triangle"]
    assert js["image"] == {
        "channels": 3,
        "width": 20,
        "height": 16,
        "resize_mode": "squash",
        "encoding": "png" if encoded else "none",
        "backend": "lmdb",
        "compression": "none",
    }
    assert {t["split"]: t["entries"] for t in js["CreateDbTasks"]} == {"train": 13, "val": 6}
    assert js["stats"]["train"]["per_class"] == [5, 4, 4] and js["stats"]["val"]["per_class"] == [2, 2, 2]

    job_dir = workspace.store.job_dir(job_id)
    expected = np.mean([px.astype(np.float64) for _, px, _ in train_images], axis=0)
    assert np.abs(read_mean(os.path.join(job_dir, "mean.binaryproto")) - expected).max() < 1e-3
    with signed_in.get(f"/datasets/{job_id}/mean.png") as r:
        assert r.status_code == 200
        assert np.abs(np.asarray(Image.open(io.BytesIO(r.data)), np.float64) - expected).max() <= 0.5
    with open(os.path.join(job_dir, "train.txt")) as fh:
        assert fh.readline() == "00000000_circle/0000.png 0\n"

    page = signed_in.get(f"/datasets/{job_id}").get_data(as_text=True)
    assert str(tmp_path / "train_lmdb") in page and "Class names from the labels file synsets.txt" in page
    explore = signed_in.get(f"/datasets/{job_id}/explore?split=train&label=1").get_data(as_text=True)
    assert "4 records · page 1 of 1" in explore
    assert re.findall(r"train record (\d+), class (\w+)", explore) == [(str(i), "square") for i in (1, 4, 7, 10)]
    for split, images in (("train", train_images), ("val", val_images)):
        for index in (0, len(images) - 1):
            with signed_in.get(f"/datasets/{job_id}/records/{split}/{index}") as r:
                assert r.status_code == 200 and r.mimetype == "image/png"
                shown = np.asarray(Image.open(io.BytesIO(r.data)))
            assert np.array_equal(shown, images[index][1]), (split, index)


def test_without_a_labels_file_the_classes_are_numbered_and_the_page_says_so(signed_in, recorder, tmp_path):
    images = [(n, px, label) for n, px, label in shape_images(8, size=(12, 12), gray=True)]
    images += [("extra/0008.png", images[0][1], 4)]  # labels 0, 1, 2 and 4: five classes, one of them empty
    train = convert_imageset(tmp_path / "gray_lmdb", images, encoded=True)
    job_id, js = built(signed_in, recorder, import_form(train))
    assert js["labels"] == ["0", "1", "2", "3", "4"]
    assert js["image"]["channels"] == 1 and js["image"]["encoding"] == "png"
    assert js["stats"]["train"]["per_class"] == [3, 3, 2, 0, 1]
    assert [t["split"] for t in js["CreateDbTasks"]] == ["train"]
    page = signed_in.get(f"/datasets/{job_id}").get_data(as_text=True)
    assert "No labels file was given: the classes are named by their labels, 0 to 4." in page


# ---- bad input ------------------------------------------------------------------------------------------------
def test_what_is_not_an_lmdb_is_refused_by_the_form_naming_the_field(signed_in, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "data.mdb").write_bytes(b"this is no database" * 500)
    records = convert_imageset(tmp_path / "ok", shape_images(3))
    for form, field, words in (
        (import_form(empty), "lmdb_train", "is not an LMDB: it holds no data.mdb"),
        (import_form(garbage), "lmdb_train", "is not an LMDB"),
        (import_form(records, lmdb_val=str(empty)), "lmdb_val", "is not an LMDB"),
        (import_form(tmp_path / "missing"), "lmdb_train", "does not exist"),
        (import_form(None), "lmdb_train", "required"),
    ):
        r = create(signed_in, form)
        assert r.status_code == 400, r.get_data(as_text=True)
        errors = r.get_json()["errors"]
        assert list(errors) == [field] and words in errors[field][0], errors
    message = create(signed_in, import_form(garbage)).get_json()["error"]["message"]
    assert message.startswith("Training LMDB: ")


def test_a_first_record_that_is_no_datum_and_a_validation_lmdb_of_another_size_are_refused_by_the_form(
    signed_in, tmp_path
):
    bad = write_lmdb(tmp_path / "bad", [("a.png", b"\xff\xff\xff\xff")])
    r = create(signed_in, import_form(bad))
    assert r.status_code == 400
    assert "record 00000000_a.png is not a Caffe Datum" in r.get_json()["errors"]["lmdb_train"][0]

    train = convert_imageset(tmp_path / "train", shape_images(3, size=(20, 16)))
    val = convert_imageset(tmp_path / "val", shape_images(3, size=(16, 16)))
    r = create(signed_in, import_form(train, lmdb_val=val))
    assert r.status_code == 400
    message = r.get_json()["errors"]["lmdb_val"][0]
    assert "00000000_circle/0000.png) is 16x16 color" in message and "is 20x16 color" in message


def test_a_later_record_that_is_no_datum_fails_the_task_naming_its_key(signed_in, recorder, tmp_path):
    images = shape_images(3)
    records = [(n, datum_bytes(px, label)) for n, px, label in images]
    records.insert(2, ("broken.png", b"\xff\xff\xff\xff"))
    error = failed(signed_in, recorder, import_form(write_lmdb(tmp_path / "lmdb", records)))
    assert error.startswith("Training LMDB: record 00000002_broken.png is not a Caffe Datum"), error


def test_a_record_of_another_size_fails_the_task_naming_its_key(signed_in, recorder, tmp_path):
    images = shape_images(4, size=(20, 16))
    images[3] = (images[3][0], shape_images(1, size=(24, 16))[0][1], images[3][2])
    error = failed(signed_in, recorder, import_form(convert_imageset(tmp_path / "mixed", images, encoded=True)))
    assert error.startswith("Training LMDB: record 00000003_circle/0003.png is 24x16 color (3 channels), but the first")
    assert "must all be one size" in error


def test_a_labels_file_with_fewer_names_than_labels_fails_naming_the_field_and_key(signed_in, recorder, tmp_path):
    train = convert_imageset(tmp_path / "lmdb", shape_images(6))
    names = tmp_path / "names.txt"
    names.write_text("circle\nsquare\n")
    error = failed(signed_in, recorder, import_form(train, lmdb_local_labels_file=str(names)))
    assert error.startswith(
        "LMDB labels file: it names 2 classes (labels 0 to 1), but record 00000002_triangle/0002.png"
    )


def test_a_validation_label_training_lacks_fails_naming_the_key(signed_in, recorder, tmp_path):
    train = convert_imageset(tmp_path / "train", shape_images(4))
    val_images = shape_images(2)
    val = convert_imageset(tmp_path / "val", [*val_images, ("odd.png", val_images[0][1], 7)])
    error = failed(signed_in, recorder, import_form(train, lmdb_val=val))
    assert error.startswith("Validation LMDB: record 00000002_odd.png has label 7, but the training LMDB's labels go")


def test_a_source_lmdb_is_left_as_it_was(signed_in, recorder, tmp_path):
    train = convert_imageset(tmp_path / "lmdb", shape_images(3))
    before = sorted(os.listdir(train)), (tmp_path / "lmdb" / "data.mdb").read_bytes()
    built(signed_in, recorder, import_form(train, lmdb_local_labels_file=None))
    assert (sorted(os.listdir(train)), (tmp_path / "lmdb" / "data.mdb").read_bytes()) == before
    env = lmdb.open(train, readonly=True, lock=False)
    assert env.stat()["entries"] == 3
    env.close()
