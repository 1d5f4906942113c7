"""DIGITS' own test network for Caffe has no data layers (DIGITS adds them): it starts on the blob "data" and its
loss reads "label". It is accepted and trains as DIGITS' tests post it."""

import io

import pytest

from digits.inference.app import install
from digits.webapp import create_app
from tests.support.apps import app_settings, sign_in
from tests.support.datasets import add_ready_dataset
from tests.support.digits_networks import DIGITS_CAFFE_NETWORK
from tests.support.forms import model_form
from tests.support.waiting import LONG_S, record

ROUTE = "/models/images/classification/json"


def digits_form(dataset_id: str, network: str) -> dict:
    return model_form(
        dataset_id,
        framework="caffe",
        method="custom",
        standard_networks=None,
        custom_network=network,
        train_epochs="1",
    )


@pytest.fixture
def classifying(tmp_path, shapes_dataset_dir):
    """A server with an inference worker and the shapes dataset: (signed-in client, workspace, recorder, dataset)."""
    app = create_app(app_settings(tmp_path / "jobs", cpu_slots=2, inference_workers=1))
    workspace = app.extensions["digits"]
    pool = install(app)
    try:
        yield sign_in(app), workspace, record(workspace), add_ready_dataset(workspace, shapes_dataset_dir), pool
    finally:
        pool.close()
        workspace.close()


@pytest.mark.slow
def test_digits_network_without_data_layers_trains_and_classifies(classifying):
    signed_in, workspace, recorder, dataset, pool = classifying
    r = signed_in.post(ROUTE, data=digits_form(dataset.id, DIGITS_CAFFE_NETWORK))
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", signed_in.get(f"/models/{job_id}/status").get_json()
    js = signed_in.get(f"/models/{job_id}/json").get_json()
    assert js["snapshots"] == [1] and js["framework"] == "caffe"
    # The val stage's Accuracy on "label" was measured: the label blob is the dataset's labels.
    assert len(js["metrics"]["val"]["accuracy"]) == 1

    assert pool.wait_ready(LONG_S)
    # As DIGITS' clients classify: its .json spellings, job_id in the query string.
    with open(dataset.path(workspace.store.jobs_dir, "val.txt")) as fh:
        val = fh.read()
    image = val.splitlines()[0].rsplit(" ", 1)[0]
    with open(image, "rb") as fh:
        r = signed_in.post(
            f"/models/images/classification/classify_one.json?job_id={job_id}",
            data={"image_file": (io.BytesIO(fh.read()), "shape.png")},
        )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert {label for label, _ in r.get_json()["predictions"]} == {"circle", "square", "triangle"}
    r = signed_in.post(
        f"/models/images/classification/classify_many.json?job_id={job_id}",
        data={"image_list": (io.BytesIO(val.encode()), "val.txt")},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    classified = r.get_json()
    assert set(classified["classifications"]) == {line.rsplit(" ", 1)[0] for line in val.splitlines()}
    assert classified["top1_accuracy"] == js["metrics"]["val"]["accuracy"][-1][1]


def test_a_loss_on_a_blob_nothing_makes_is_still_refused(signed_in, dataset):
    # Only "label" stands for the labels DIGITS' data layer would give; another name is still a mistake.
    network = DIGITS_CAFFE_NETWORK.replace('bottom: "label"', 'bottom: "labels"')
    r = signed_in.post(ROUTE, data=digits_form(dataset.id, network))
    assert r.status_code == 400
    message = r.get_json()["errors"]["custom_network"][0]
    assert "bottom blob 'labels' does not exist" in message, message
