"""A model trains on an HDF5 dataset (DIGITS' backend=hdf5, gzip) built through the form, and classifies: the
confined training worker reads the .h5 files."""

from __future__ import annotations

import io
import os

import pytest
import torch

from digits.inference.app import install
from digits.webapp import create_app
from tests.support.apps import app_settings, sign_in
from tests.support.forms import dataset_form, model_form
from tests.support.imagegen import make_shapes
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
def test_a_model_trains_on_an_hdf5_dataset_and_classifies(server, tmp_path):
    client, recorder, pool = server
    made = make_shapes(str(tmp_path / "shapes"), per_class=16, size=(24, 40))
    form = dataset_form(tmp_path / "shapes", backend="hdf5", compression="gzip", folder_pct_val="25")
    r = client.post("/datasets/images/classification/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    dataset_id = r.get_json()["id"]
    assert recorder.wait_status(dataset_id, timeout=LONG_S) == "Done"
    assert {t["backend"] for t in client.get(f"/datasets/{dataset_id}.json").get_json()["CreateDbTasks"]} == {"hdf5"}

    r = client.post("/models/images/classification/json", data=model_form(dataset_id, train_epochs="1"))
    assert r.status_code == 200, r.get_data(as_text=True)
    model_id = r.get_json()["id"]
    assert recorder.wait_status(model_id, timeout=LONG_S) == "Done", client.get(f"/models/{model_id}/status").get_json()
    js = client.get(f"/models/{model_id}/json").get_json()
    assert js["snapshots"] == [1] and len(js["metrics"]["val"]["accuracy"]) == 1

    assert pool.wait_ready(LONG_S)
    with open(made["square"][0], "rb") as fh:
        r = client.post(
            "/models/images/classification/classify_one/json",
            data={"job_id": model_id, "image_file": (io.BytesIO(fh.read()), "square.png")},
        )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert {label for label, _ in r.get_json()["predictions"]} == {"circle", "square", "triangle"}


def final_weights(workspace, job_id: str) -> dict:
    job = workspace.store.get(job_id)
    last = max(job.tasks[0].snapshots, key=lambda s: s["epoch"])
    return torch.load(os.path.join(workspace.store.job_dir(job_id), last["path"]), weights_only=True)["model"]


@pytest.mark.slow
def test_hdf5_and_lmdb_builds_of_a_folder_train_the_same_weights(signed_in, workspace, recorder, tmp_path, monkeypatch):
    # The same images in the same order (PNG records are lossless), the same seed: the same network, whether the
    # records come from the LMDB, the HDF5 files in memory, or the HDF5 files streamed batch by batch.
    make_shapes(str(tmp_path / "shapes"), per_class=12, size=(24, 40))

    def dataset(**fields) -> str:
        form = dataset_form(tmp_path / "shapes", encoding="png", folder_pct_val="25", **fields)
        job_id = signed_in.post("/datasets/images/classification/json", data=form).get_json()["id"]
        assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
        return job_id

    def train(dataset_id: str, name: str) -> str:
        form = model_form(dataset_id, model_name=name, batch_size="8", train_epochs="1", shuffle="true")
        job_id = signed_in.post("/models/images/classification/json", data=form).get_json()["id"]
        assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", signed_in.get(f"/models/{job_id}/status").json
        return job_id

    lmdb, hdf5 = dataset(), dataset(backend="hdf5", compression="gzip")
    models = [train(lmdb, "lmdb"), train(hdf5, "hdf5 in memory")]
    monkeypatch.setenv("DIGITS_PRELOAD_LIMIT_BYTES", "0")  # the worker inherits it: nothing fits in memory
    models.append(train(hdf5, "hdf5 streamed"))
    expected = final_weights(workspace, models[0])
    for job_id in models[1:]:
        got = final_weights(workspace, job_id)
        assert got.keys() == expected.keys()
        for key in expected:
            assert torch.equal(got[key], expected[key]), (workspace.store.get(job_id).name, key)
