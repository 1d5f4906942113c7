"""A model trains on a dataset imported from a Caffe LMDB (convert_imageset's raw gray records, no DIGITS job
behind it) exactly as on one we built, and classifies an image file."""

from __future__ import annotations

import io

import pytest

from digits.inference.app import install
from digits.webapp import create_app
from tests.support.apps import app_settings, sign_in
from tests.support.caffe_lmdb import convert_imageset, png_bytes, shape_images
from tests.support.forms import model_form
from tests.support.waiting import LONG_S, record


@pytest.fixture
def server(tmp_path):
    """A server with one inference worker: (signed-in client, recorder, inference pool)."""
    app = create_app(app_settings(tmp_path / "jobs", cpu_slots=2, inference_workers=1))
    workspace = app.extensions["digits"]
    pool = install(app)
    try:
        yield sign_in(app), record(workspace), pool
    finally:
        pool.close()
        workspace.close()


@pytest.mark.slow
def test_a_model_trains_on_an_imported_lmdb_and_classifies(server, tmp_path):
    client, recorder, pool = server
    train = convert_imageset(tmp_path / "train_lmdb", shape_images(36, size=(28, 28), gray=True))
    val_images = shape_images(9, size=(28, 28), gray=True, seed=1)
    val = convert_imageset(tmp_path / "val_lmdb", val_images)
    form = {
        "method": "lmdb",
        "lmdb_train": train,
        "lmdb_val": val,
        "lmdb_labels_file": (io.BytesIO(b"circle\nsquare\ntriangle\n"), "labels.txt"),
        "dataset_name": "imported shapes",
    }
    r = client.post("/datasets/images/classification/json", data=form, content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)
    dataset_id = r.get_json()["id"]
    assert recorder.wait_status(dataset_id, timeout=LONG_S) == "Done"

    r = client.post("/models/images/classification/json", data=model_form(dataset_id, train_epochs="1"))
    assert r.status_code == 200, r.get_data(as_text=True)
    model_id = r.get_json()["id"]
    assert recorder.wait_status(model_id, timeout=LONG_S) == "Done", client.get(f"/models/{model_id}/status").get_json()
    js = client.get(f"/models/{model_id}/json").get_json()
    assert js["snapshots"] == [1] and len(js["metrics"]["val"]["accuracy"]) == 1

    assert pool.wait_ready(LONG_S)
    r = client.post(
        "/models/images/classification/classify_one/json",
        data={"job_id": model_id, "image_file": (io.BytesIO(png_bytes(val_images[1][1])), "square.png")},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert {label for label, _ in r.get_json()["predictions"]} == {"circle", "square", "triangle"}
