"""A generic model as its page and JSON twin describe it, through the real server and training worker: called a
Generic Model, no image-only settings (mean, crop), its metrics offered for download and the image archives
refused saying why; the Best epoch fields of its form kept (the best snapshot marked) and a regression model
refused a val accuracy to watch, naming the field."""

from __future__ import annotations

import pytest

from digits.webapp import create_app
from tests.support.apps import app_settings, sign_in
from tests.support.generic_data import blobs, linear, write_csv
from tests.support.waiting import LONG_S, record

SOLVER = {"solver_type": "ADAM", "learning_rate": "0.01", "lr_policy": "fixed", "batch_size": "32"}


@pytest.fixture
def server(tmp_path):
    app = create_app(app_settings(tmp_path / "jobs", cpu_slots=2))
    yield app, sign_in(app), record(app.extensions["digits"]), tmp_path
    app.extensions["digits"].close()


def dataset(server, name, x, y, problem):
    app, client, recorder, tmp = server
    path = write_csv(tmp / f"{name}.csv", x, y, target="side" if problem == "classification" else "y")
    form = {"dataset_name": name, "train_path": path, "problem": problem, "val_percent": "20"}
    r = client.post("/datasets/generic/json", data=form, content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert recorder.wait_status(r.get_json()["id"], timeout=LONG_S) == "Done"
    return r.get_json()["id"]


def test_a_generic_model_page_json_downloads_and_best_epoch(server):
    app, client, recorder, _ = server
    x, y = blobs(200, features=3)
    ds = dataset(server, "blobs", x, y, "classification")
    form = {**SOLVER, "dataset": ds, "model_name": "m", "train_epochs": "3", "best_monitor": "val_accuracy"}
    r = client.post("/models/generic/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"

    js = client.get(f"/models/{job_id}/json").get_json()
    assert js["type"] == "Generic Model"
    assert js["solver"]["best_monitor"] == "val_accuracy"
    record_ = js["best epoch"]
    assert record_["monitor"] == "val_accuracy" and record_["epoch"] in js["snapshots"]
    assert js["best snapshot"] == record_["epoch"]

    page = client.get(f"/models/{job_id}").get_data(as_text=True)
    assert ">Mean<" not in page and ">Crop<" not in page and ">Epochs<" in page
    assert "metrics.csv" in page and 'id="download-epoch"' not in page and ">ONNX<" not in page
    assert "(best)" in page  # the snapshot list marks it
    assert client.get(f"/models/{job_id}/metrics.csv").status_code == 200
    for route in ("download", "download.zip", "download.onnx"):
        r = client.get(f"/models/{job_id}/{route}", headers={"Accept": "application/json"})
        assert r.status_code == 409 and "generic model" in r.get_json()["error"]["message"], (route, r.get_data())

    # The form shows the Best epoch fields, and a clone keeps them.
    new = client.get(f"/models/generic/new?clone={job_id}").get_data(as_text=True)
    assert 'id="best_monitor"' in new and 'value="val_accuracy" selected' in new


def test_a_regression_model_cannot_watch_val_accuracy(server):
    app, client, recorder, _ = server
    x, y, _ = linear(100)
    ds = dataset(server, "linear", x, y, "regression")
    form = {**SOLVER, "dataset": ds, "model_name": "r", "train_epochs": "1", "best_monitor": "val_accuracy"}
    r = client.post("/models/generic/json", data=form)
    assert r.status_code == 400
    assert "Monitor" in r.get_data(as_text=True) and "val loss" in r.get_data(as_text=True)
    r = client.post("/models/generic/json", data={**form, "best_monitor": "val_loss", "early_stopping": "1"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert recorder.wait_status(r.get_json()["id"], timeout=LONG_S) == "Done"
