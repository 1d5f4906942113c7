"""Datasets from uploaded zips: fields checked first, bombs and damage refused by field, a data root does not
lock the upload out, odd file names and huge images are skipped and named, a full disk is said to be one."""

import io
import os
import zipfile

import pytest
from PIL import Image

from tests.support.apps import sign_in
from tests.support.disk import fill, small_disk
from tests.support.forms import dataset_form
from tests.support.imagegen import make_shapes
from tests.support.waiting import LONG_S, record
from tests.support.zips import damaged, folder_zip, zeros_zip


def zip_form(data: bytes, **extra) -> dict:
    """The dataset form with `data` as its zip upload: gray 16x16 records, a quarter for validation."""
    fields = {"folder_pct_val": "25", "resize_width": "16", "resize_height": "16", "dataset_name": "zipped"}
    form = dataset_form(None, resize_channels=None, **{**fields, **extra})
    return {**form, "folder_train_zip": (io.BytesIO(data), "shapes.zip")}


class App:
    """An in-process app (from the make_app fixture), signed in as ann, with an event recorder."""

    def __init__(self, app):
        self.app = app
        self.workspace = app.extensions["digits"]
        self.recorder = record(self.workspace)
        self.client = sign_in(app)

    def create(self, form):
        return self.client.post("/datasets/images/classification/json", data=form, content_type="multipart/form-data")

    def job_folders(self) -> list[str]:
        return [e for e in os.listdir(self.workspace.store.jobs_dir) if e[:1].isdigit()]

    def close(self):
        self.workspace.close()


@pytest.fixture
def served(app):
    return App(app)


def test_a_bad_form_is_answered_before_its_zip_is_opened(served, tmp_path):
    bomb = zeros_zip([("shapes/a/big.png", 300 * 1024 * 1024)])
    r = served.create(zip_form(bomb, dataset_name=None, resize_width="0"))
    assert r.status_code == 400
    errors = r.get_json()["errors"]
    assert set(errors) == {"dataset_name", "resize_width"}  # the zip was not looked at
    assert served.job_folders() == []


def test_a_zip_bomb_is_refused_by_field_and_leaves_nothing(served):
    bomb = zeros_zip([("shapes/a/big.png", 300 * 1024 * 1024), ("shapes/b/1.png", 10)])
    r = served.create(zip_form(bomb))
    assert r.status_code == 400
    message = r.get_json()["errors"]["folder_train_zip"][0]
    assert message.startswith("shapes.zip: zip entry 'shapes/a/big.png' would unpack 314,572,800 bytes")
    assert "zip bomb" in message
    assert served.job_folders() == [] and served.workspace.store.all() == []


@pytest.mark.parametrize("how", ["crc", "garbled"])
def test_a_damaged_entry_is_a_400_naming_it(served, tmp_path, how):
    make_shapes(str(tmp_path / "src"), per_class=2)
    compression = zipfile.ZIP_STORED if how == "crc" else zipfile.ZIP_DEFLATED
    words = b" ".join(b"circle square triangle"[i % 7 :: 3] for i in range(4000))
    good = folder_zip(tmp_path / "src", {"shapes/circle/notes.txt": words}, compression)
    r = served.create(zip_form(damaged(good, "shapes/circle/notes.txt", how)))
    assert r.status_code == 400, r.get_data(as_text=True)
    message = r.get_json()["errors"]["folder_train_zip"][0]
    assert message.startswith("shapes.zip: zip entry 'shapes/circle/notes.txt' is damaged (")
    assert served.job_folders() == []


def test_a_zip_of_one_class_folder_names_the_zip_field(served, tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=2, classes=("circle",))
    r = served.create(zip_form(folder_zip(tmp_path / "src")))
    assert r.status_code == 400
    assert r.get_json()["errors"]["folder_train_zip"] == [
        "the zip holds 1 class folder; a classification dataset needs at least 2 (one subfolder of images per class)"
    ]
    assert served.job_folders() == []


def test_a_zip_dataset_builds_on_a_server_with_a_data_root(tmp_path, make_app):
    """Its images land in the job's folder, outside every data root: the parse task still reads them."""
    (tmp_path / "root").mkdir()
    make_shapes(str(tmp_path / "src"), per_class=4)
    served = App(make_app(auth="none", data_roots=[str(tmp_path / "root")]))
    try:
        r = served.create(zip_form(folder_zip(tmp_path / "src")))
        assert r.status_code == 200, r.get_data(as_text=True)
        job_id = r.get_json()["id"]
        assert served.recorder.wait_status(job_id, timeout=LONG_S) == "Done"
        js = served.client.get(f"/datasets/{job_id}/json").get_json()
        assert sum(t["entries"] for t in js["CreateDbTasks"]) == 12 and js["skipped"] == []
    finally:
        served.close()


def test_names_a_list_cannot_carry_and_huge_images_are_skipped_and_named(tmp_path, make_app):
    made = make_shapes(str(tmp_path / "src"), per_class=4)
    with open(made["circle"][0], "rb") as fh:
        image = fh.read()
    big = io.BytesIO()
    Image.new("L", (300, 200)).save(big, "PNG")  # 60,000 pixels, a tiny file
    extra = {
        "shapes/circle/two\nlines.png": image,
        "shapes/square/carriage\rreturn.png": image,
        "shapes/square/big.png": big.getvalue(),
    }
    served = App(make_app(max_image_pixels=50_000))
    try:
        r = served.create(zip_form(folder_zip(tmp_path / "src", extra), folder_pct_val="0"))
        assert r.status_code == 200, r.get_data(as_text=True)
        job_id = r.get_json()["id"]
        assert served.recorder.wait_status(job_id, timeout=LONG_S) == "Done"
        js = served.client.get(f"/datasets/{job_id}/json").get_json()
        assert sum(t["entries"] for t in js["CreateDbTasks"]) == 12
        skipped = {os.path.basename(s["path"]): s["reason"] for s in js["skipped"]}
        assert skipped == {
            "two\\nlines.png": "its name holds a line break, which a list file cannot carry",
            "carriage\\rreturn.png": "its name holds a line break, which a list file cannot carry",
            "big.png": "too large: 300x200 pixels (60,000; this server's limit is 50,000)",
        }
        page = served.client.get(f"/datasets/{job_id}").get_data(as_text=True)
        assert "two\\nlines.png" in page and "300x200 pixels" in page
    finally:
        served.close()


def test_a_full_disk_is_a_507_and_leaves_no_job(tmp_path, make_app):
    make_shapes(str(tmp_path / "src"), per_class=2)
    payload = folder_zip(tmp_path / "src", {"shapes/circle/padding.png": os.urandom(3_000_000)}, zipfile.ZIP_STORED)
    with small_disk(tmp_path / "disk", "8m") as disk:
        served = App(make_app(disk))
        try:
            fill(disk, keep=1_000_000)
            r = served.create(zip_form(payload))
            assert r.status_code == 507, r.get_data(as_text=True)
            error = r.get_json()["error"]
            assert error["type"] == "insufficient_storage"
            assert error["message"].startswith(
                "the disk holding the jobs folder is full: could not write the files of shapes.zip"
            )
            assert served.job_folders() == [] and served.workspace.store.all() == []
        finally:
            served.close()


def test_a_disk_that_fills_while_building_fails_the_job_clearly(tmp_path, make_app):
    make_shapes(str(tmp_path / "src"), per_class=20)
    form = dataset_form(
        tmp_path / "src",
        resize_channels=None,
        folder_pct_val="0",
        resize_width="256",
        resize_height="256",
        encoding="none",  # 196 KB a record: 60 records overflow the 6 MB disk
        dataset_name="too-big",
    )
    with small_disk(tmp_path / "disk", "6m") as disk:
        served = App(make_app(disk))
        try:
            r = served.create(form)
            assert r.status_code == 200, r.get_data(as_text=True)
            job_id = r.get_json()["id"]
            assert served.recorder.wait_status(job_id, timeout=LONG_S) == "Error"
            error = served.client.get(f"/datasets/{job_id}/status").get_json()["error"]
            assert error.startswith("the disk holding the jobs folder is full: could not write train_db"), error
            assert not os.path.exists(os.path.join(disk, job_id, "train_db.partial"))
        finally:
            served.close()
