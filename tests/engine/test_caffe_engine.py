"""Real Caffe (pycaffe) as the engine of a `framework=caffe` model job, chosen with the form's caffe_engine field:
LeNet trains through the real server and training worker to Done with val accuracy each epoch, snapshots as
.caffemodel + .solverstate (and the same weights as our engine's .pt, so the model classifies), an aborted run
resumes from its solver state, and where Caffe is not built the field offers only the PyTorch compilation and a
posted pycaffe is refused, naming the field and why.

Where Caffe is missing the training tests FAIL if the build was expected here (digits.caffe_status.build_expected)
and skip elsewhere, as tests/engine/test_real_caffe.py does.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import requests
import torch

from digits import caffe_status
from tests.support.forms import model_form
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_S, SHORT_S, wait_until

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def served(caffe, tmp_path_factory):
    """A live server with a small gray 28x28 shapes dataset (3 classes)."""
    root = tmp_path_factory.mktemp("caffe-engine")
    make_shapes(str(root / "images"), per_class=24, size=(20, 36))
    server = LiveServer(root / "jobs", env={"DIGITS_INFERENCE_WORKERS": "1"}).start()
    try:
        web = server.sign_in("ann")
        dataset = server.folder_dataset(web, root / "images")
        yield server, web, dataset, root / "jobs"
    finally:
        server.stop()


def pycaffe_model(server, web, dataset, **fields) -> str:
    form = {"framework": "caffe", "caffe_engine": "pycaffe", "batch_size": "16", "model_name": "lenet-caffe", **fields}
    return server.create_model(web, dataset, **form)


def metric_lines(folder) -> list[dict]:
    with open(folder / "metrics.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_lenet_trains_on_real_caffe_to_done_with_val_accuracy_each_epoch_and_snapshots(served, caffe):
    from caffe.proto import caffe_pb2

    server, web, dataset, jobs = served
    model = pycaffe_model(server, web, dataset, train_epochs="3")
    done = server.wait_status(model, timeout=LONG_S)
    folder = jobs / model
    log = (folder / "train.log").read_text()
    assert done["status"] == "Done", log[-3000:]
    assert "real Caffe 1.0.0 (pycaffe, CPU)" in log

    js = requests.get(f"{server.url}/models/{model}/json", headers=JSON, timeout=SHORT_S).json()
    settings = next(t["args"] for t in json.loads((folder / "job.json").read_text())["tasks"] if t["name"] == "train")
    assert settings["caffe_engine"] == "pycaffe" and js["status"] == "Done"
    page = web.get(f"{server.url}/models/{model}", timeout=SHORT_S).text
    assert "caffe on Real Caffe (pycaffe, CPU)" in page  # the model page says what trained it

    lines = metric_lines(folder)
    val_acc = [m for m in lines if m["phase"] == "val" and m["name"] == "accuracy"]
    val_loss = [m for m in lines if m["phase"] == "val" and m["name"] == "loss"]
    train_loss = [m for m in lines if m["phase"] == "train" and m["name"] == "loss"]
    assert [m["epoch"] for m in val_acc] == [1, 2, 3]
    assert [m["epoch"] for m in val_loss] == [1, 2, 3]
    assert all(0.0 <= m["value"] <= 1.0 for m in val_acc)
    assert len(train_loss) >= 3 and all(np.isfinite(m["value"]) for m in train_loss)
    assert train_loss[-1]["value"] < train_loss[0]["value"], train_loss  # Caffe's solver learned something

    # What Caffe was given: the train and val stages with an Input layer in place of the Data layer.
    assert 'type: "Input"' in (folder / "train.prototxt").read_text()
    assert 'type: "Accuracy"' in (folder / "val.prototxt").read_text()
    assert 'type: "SGD"' in (folder / "solver.prototxt").read_text()

    for epoch in (1, 2, 3):
        for ext in ("caffemodel", "solverstate", "pt"):
            assert (folder / f"snapshot_epoch_{epoch}.{ext}").is_file(), sorted(os.listdir(folder))
    assert not [n for n in os.listdir(folder) if n.startswith(".caffe-snapshot")]
    state = caffe_pb2.SolverState()
    state.ParseFromString((folder / "snapshot_epoch_3.solverstate").read_bytes())
    assert state.iter == train_loss[-1]["iteration"] and state.learned_net == "snapshot_epoch_3.caffemodel"

    # The .pt holds Caffe's weights, blob for blob, in our compilation of the network.
    weights = caffe_pb2.NetParameter()
    weights.ParseFromString((folder / "snapshot_epoch_3.caffemodel").read_bytes())
    blobs = {layer.name: [np.array(b.data, dtype=np.float32) for b in layer.blobs] for layer in weights.layer}
    torch_state = torch.load(folder / "snapshot_epoch_3.pt", weights_only=True)["model"]
    for name in ("conv1", "conv2", "ip1", "ip2"):
        np.testing.assert_array_equal(torch_state[f"layers.{name}.weight"].flatten().numpy(), blobs[name][0])
        np.testing.assert_array_equal(torch_state[f"layers.{name}.bias"].numpy(), blobs[name][1])

    # The model classifies like any other.
    image = next((jobs.parent / "images" / "circle").iterdir())
    with open(image, "rb") as fh:
        r = web.post(
            f"{server.url}/models/images/classification/classify_one/json",
            data={"job_id": model},
            files={"image_file": (image.name, fh)},
            headers=JSON,
            timeout=LONG_S,
        )
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert {label for label, _ in predictions} == {"circle", "square", "triangle"}


def test_an_aborted_pycaffe_run_resumes_from_its_solver_state(served):
    server, web, dataset, jobs = served
    model = pycaffe_model(server, web, dataset, train_epochs="30", model_name="long-caffe")
    server.wait_progress(model)
    r = web.post(f"{server.url}/models/{model}/abort", headers=JSON, timeout=SHORT_S)
    assert r.status_code == 200, r.text
    assert server.wait_status(model, timeout=LONG_S)["status"] == "Aborted"
    folder = jobs / model
    states = sorted(folder.glob("snapshot_epoch_*.solverstate"), key=lambda p: float(p.stem.split("_")[-1]))
    assert states, sorted(os.listdir(folder))
    latest = states[-1]
    stopped_at = max(m["iteration"] for m in metric_lines(folder) if m["name"] == "loss" and m["phase"] == "train")
    before = len(metric_lines(folder))

    r = web.post(f"{server.url}/models/{model}/resume", headers=JSON, timeout=SHORT_S)
    assert r.status_code == 200, r.text
    log = folder / "train.log"
    wait_until(lambda: f"resuming from {latest.name}" in log.read_text(), LONG_S, "the resumed run's start")
    done = server.wait_status(model, timeout=LONG_S)
    assert done["status"] == "Done", log.read_text()[-3000:]
    resumed = [m for m in metric_lines(folder)[before:] if m["phase"] == "train" and m["name"] == "loss"]
    # The solver went on from its state: the resumed run's iterations continue, they do not start again at 1.
    assert resumed and min(m["iteration"] for m in resumed) > stopped_at - 5
    assert resumed[-1]["epoch"] == 30
    assert (folder / "snapshot_epoch_30.caffemodel").is_file()


def test_where_caffe_is_not_built_the_field_offers_only_torch_and_refuses_pycaffe(
    signed_in, workspace, monkeypatch, tmp_path
):
    monkeypatch.setattr(caffe_status, "site_packages", lambda: str(tmp_path / "no-caffe-here"))
    page = signed_in.get("/models/images/classification/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'name="caffe_engine"' in html and 'value="torch"' in html and 'value="pycaffe"' not in html
    assert caffe_status.NOT_BUILT in html

    r = signed_in.post(
        "/models/images/classification/json",
        data=model_form("20260101-000000-abcd", framework="caffe", caffe_engine="pycaffe"),
        headers=JSON,
    )
    assert r.status_code == 400
    errors = r.get_json()["errors"]
    assert any("Caffe engine" in m or "not available" in m for m in errors["caffe_engine"]), errors
    assert caffe_status.NOT_BUILT in " ".join(errors["caffe_engine"])
    # No dataset (and so no job) was needed to say so, and nothing was made.
    assert not [j for j in workspace.store.all() if j.category == "model"]


def test_where_caffe_is_built_the_field_offers_both_engines_and_defaults_to_the_faster(caffe, signed_in):
    from digits.model.forms import FASTER_CAFFE_ENGINE

    html = signed_in.get("/models/images/classification/new").get_data(as_text=True)
    assert '<option value="pycaffe" ' in html and '<option value="torch" ' in html
    assert f'<option value="{FASTER_CAFFE_ENGINE}" selected>' in html
    assert "Real Caffe is not available" not in html


def test_a_snapshot_past_the_quota_is_refused_before_it_is_written(served, tmp_path):
    """Caffe's snapshots are three files (.caffemodel, .solverstate, .pt): the worker counts them all."""
    from digits.job import Job, Task, new_job_id
    from digits.model.settings import TrainSettings
    from digits.model.standard import get_network
    from digits.store import write_json_atomic
    from tests.support.commands import run_module

    _, _, dataset, jobs = served
    os.symlink(jobs / dataset, tmp_path / dataset)  # the worker finds its dataset beside its own folder
    settings = TrainSettings(framework="caffe", caffe_engine="pycaffe", epochs=3, batch_size=16, seed=3)
    settings.max_snapshot_bytes = 8 * 1024 * 1024  # LeNet's 431,080 weights: about 1.7 MB a file
    job = Job(
        id=new_job_id(),
        type="model",
        category="model",
        name="quota",
        tasks=[Task("train", "model.train", settings.to_dict())],
        extra={"dataset_id": dataset},
    )
    folder = tmp_path / job.id
    folder.mkdir()
    (folder / settings.network_file).write_text(get_network("lenet").text("caffe"))
    write_json_atomic(str(folder / "job.json"), job.to_dict())
    done = run_module("digits.engine.train_worker", folder, "--task", "train", timeout=LONG_S)
    assert "the snapshot at epoch 2 was not written" in done.stdout, (done.stdout[-2000:], done.stderr[-2000:])
    assert "max_snapshot_bytes" in done.stdout
    assert (folder / "snapshot_epoch_1.caffemodel").is_file()
    assert not [n for n in os.listdir(folder) if n.startswith("snapshot_epoch_2")]
