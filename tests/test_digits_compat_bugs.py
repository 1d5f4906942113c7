"""What DIGITS 6's own clients do, answered as DIGITS answered it (issue W2-D):

- a network with more outputs than the dataset has classes (DIGITS' tests train `num_output: 1000` on 3
  classes) classifies: only the outputs that have a label are ranked, in every route and in predict.py;
- a dataset that a model uses cannot be deleted: 403 naming the model, by a form and by a script;
- DIGITS' own seed 3405691582 trains; a seed out of range is refused with its bounds written plainly;
- job_id in the query string of the classify routes; classify_many keys its results by the path as the list
  wrote it (relative to image_folder); the JSON answers' percentages have DIGITS' 2 decimals.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from digits.forms import FormReader, plain_number
from digits.inference.app import install
from digits.webapp import create_app
from tests.model.conftest import shapes_dataset_dir  # noqa: F401 - a session fixture
from tests.model.test_download import standalone_env
from tests.support import JSON
from tests.support.apps import app_settings, sign_in
from tests.support.datasets import add_ready_dataset
from tests.support.fakejobs import fake_job
from tests.support.forms import model_form
from tests.support.waiting import LONG_S, record

LABELS = {"circle", "square", "triangle"}
DIGITS_SEED = "3405691582"  # the seed DIGITS' own view tests send; more than 2^31 - 1
# DIGITS' test network has 1000 outputs for 3 classes (with the data layers our Caffe reader expects).
WIDE_NET = """
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST } }
layer {
  name: "hidden" type: "InnerProduct" bottom: "data" top: "output"
  inner_product_param { num_output: 1000 }
}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "output" bottom: "label" top: "loss" exclude { stage: "deploy" } }
layer { name: "accuracy" type: "Accuracy" bottom: "output" bottom: "label" top: "accuracy" include { stage: "val" } }
layer { name: "softmax" type: "Softmax" bottom: "output" top: "softmax" include { stage: "deploy" } }
"""
ROUTE = "/models/images/classification"


@pytest.fixture(scope="module")
def wide(tmp_path_factory, shapes_dataset_dir):  # noqa: F811 - the imported fixture
    """A server with inference workers, the shapes dataset and WIDE_NET trained on it with DIGITS' seed."""
    jobs = tmp_path_factory.mktemp("wide") / "jobs"
    app = create_app(app_settings(jobs, cpu_slots=2, inference_workers=1))
    workspace = app.extensions["digits"]
    pool = install(app)
    recorder = record(workspace)
    dataset = add_ready_dataset(workspace, shapes_dataset_dir)
    client = sign_in(app)
    form = model_form(
        dataset.id,
        model_name="wide",
        method="custom",
        framework="caffe",
        custom_network=WIDE_NET,
        train_epochs="3",
        random_seed=DIGITS_SEED,
    )
    r = client.post(f"{ROUTE}/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    model_id = r.get_json()["id"]
    assert recorder.wait_status(model_id, timeout=LONG_S) == "Done"
    assert pool.wait_ready(LONG_S)
    yield app, client, dataset, model_id, os.path.join(os.path.dirname(shapes_dataset_dir), "src")
    pool.close()
    workspace.close()


def relative_list(src: str, per_class: int = 4) -> tuple[str, dict[str, str]]:
    """A list of images relative to `src` (DIGITS' image_folder case) and each line's class."""
    lines, truth = [], {}
    for index, label in enumerate(sorted(LABELS)):
        for name in sorted(os.listdir(os.path.join(src, label)))[:per_class]:
            path = f"{label}/{name}"
            lines.append(f"{path} {index}")
            truth[path] = label
    return "\n".join(lines) + "\n", truth


def two_decimals(value: float) -> bool:
    return round(value, 2) == value and 0.0 <= value <= 100.0


def test_digits_seed_is_kept(wide):
    app, client, _, model_id, _ = wide
    form = client.get(f"/jobs/{model_id}/json").get_json()["form"]
    assert str(form.get("random_seed")) == DIGITS_SEED


def test_classify_one_ranks_only_labelled_outputs_with_job_id_in_the_query(wide):
    _, client, _, model_id, src = wide
    path = os.path.join(src, "square", sorted(os.listdir(os.path.join(src, "square")))[0])
    with open(path, "rb") as fh:
        data = fh.read()
    # As DIGITS' client posts it: job_id in the query string only.
    r = client.post(f"{ROUTE}/classify_one/json?job_id={model_id}", data={"image_file": (io.BytesIO(data), "a.png")})
    assert r.status_code == 200, r.get_data(as_text=True)
    predictions = r.get_json()["predictions"]
    assert {label for label, _ in predictions} == LABELS  # 3 of 1000 outputs have a label; the rest are ignored
    assert all(two_decimals(p) for _, p in predictions)
    assert [p for _, p in predictions] == sorted((p for _, p in predictions), reverse=True)
    # The page twin, from a browser's form: the result's page.
    r = client.post(
        f"{ROUTE}/classify_one?job_id={model_id}",
        data={"image_file": (io.BytesIO(data), "a.png"), "show_visualizations": "y"},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    page = client.get(r.headers["Location"])
    assert page.status_code == 200 and "square" in page.get_data(as_text=True)
    # Neither form nor query: the field is named.
    r = client.post(f"{ROUTE}/classify_one/json", data={"image_file": (io.BytesIO(data), "a.png")})
    assert r.status_code == 400 and "Model" in r.get_json()["error"]["message"]


def test_classify_many_keys_by_the_relative_path_and_top_n_by_labels(wide):
    _, client, _, model_id, src = wide
    text, truth = relative_list(src)
    form = {"image_list": (io.BytesIO(text.encode()), "list.txt"), "image_folder": src}
    r = client.post(f"{ROUTE}/classify_many/json?job_id={model_id}", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    js = r.get_json()
    assert js["errors"] == []
    assert set(js["classifications"]) == set(truth)  # as written in the list, not resolved against the folder
    for top in js["classifications"].values():
        assert {label for label, _ in top} == LABELS
        assert all(two_decimals(p) for _, p in top)
    assert js["confusion_matrix"]["labels"] == sorted(LABELS) and js["labeled_count"] == len(truth)
    # The kept results page of the same run answers too.
    assert client.get(js["results_url"]).status_code == 200

    form = {"image_list": (io.BytesIO(text.encode()), "list.txt"), "image_folder": src, "top_n": "2"}
    r = client.post(f"{ROUTE}/top_n/json?job_id={model_id}", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    classes = r.get_json()["top_n"]
    assert [c["label"] for c in classes] == sorted(LABELS)
    assert all(len(c["images"]) == 2 and {i["path"] for i in c["images"]} <= set(truth) for c in classes)

    r = client.get(f"/models/{model_id}/hardest/json?split=val")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert all(h["predicted_label"] in LABELS for h in r.get_json()["hardest"])


@pytest.mark.filterwarnings("ignore:.*torch.jit.load:DeprecationWarning")
def test_downloaded_predict_py_leaves_unlabelled_outputs_out(wide, tmp_path):
    _, client, _, model_id, src = wide
    archive = client.get(f"/models/{model_id}/download")
    assert archive.status_code == 200, archive.get_data(as_text=True)[:300]
    with tarfile.open(fileobj=io.BytesIO(archive.data), mode="r:gz") as tf:
        top = tf.getnames()[0].split("/")[0]
        tf.extractall(tmp_path, filter="data")
    text, truth = relative_list(src, per_class=1)
    paths = [os.path.join(src, p) for p in truth]
    run = subprocess.run(
        [sys.executable, "-S", "predict.py", "--json", *paths],
        cwd=tmp_path / top,
        env=standalone_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert len(results) == len(paths)
    for result in results:
        assert {label for label, _ in result["predictions"]} == LABELS


def test_a_dataset_a_finished_model_uses_cannot_be_deleted(client, workspace, recorder):
    sign_in(client, "ann")
    dataset = fake_job(owner="ann", name="shapes")
    model = fake_job(owner="ann", category="model", name="lenet <b>", depends_on=[dataset.id])
    workspace.add_job(dataset)
    workspace.add_job(model)
    assert recorder.wait_status(model.id) == "Done"

    r = client.delete(f"/datasets/{dataset.id}", headers=JSON)  # a script
    assert r.status_code == 403
    js = r.get_json()
    assert model.id in js["error"]["message"] and js["error"]["type"] == "forbidden"
    assert js["dependents"] == [{"id": model.id, "name": "lenet <b>", "type": model.type, "status": "Done"}]

    r = client.post(f"/datasets/{dataset.id}/delete", headers={"Accept": "text/html"})  # a browser's form
    assert r.status_code == 403 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert model.id in html and "lenet &lt;b&gt;" in html and "<b>" not in html
    assert client.get(f"/datasets/{dataset.id}/status").status_code == 200  # still there

    assert client.delete(f"/models/{model.id}", headers=JSON).status_code == 200
    recorder.wait_for(lambda e, p: e == "job_deleted" and p["job_id"] == model.id)
    r = client.post(f"/datasets/{dataset.id}/delete", headers={"Accept": "text/html"})
    assert r.status_code == 302  # nobody uses it now: deleted, and the browser sent home
    assert client.get(f"/datasets/{dataset.id}/status").status_code == 404


def test_a_dataset_nobody_uses_is_deleted(client, workspace, recorder):
    sign_in(client, "ann")
    dataset = fake_job(owner="ann")
    workspace.add_job(dataset)
    assert recorder.wait_status(dataset.id) == "Done"
    r = client.delete(f"/datasets/{dataset.id}", headers=JSON)
    assert r.status_code == 200 and r.get_json() == {"id": dataset.id, "deleted": True}


def test_seeds_up_to_two_to_the_32_and_plain_bounds(client, workspace):
    sign_in(client, "ann")
    dataset = add_ready_dataset_stub(workspace)
    r = client.post(f"{ROUTE}/json", data=model_form(dataset.id, random_seed=str(2**32)))
    assert r.status_code == 400
    message = r.get_json()["error"]["message"]
    assert "Random seed" in message and "4294967295" in message and "e+" not in message

    reader = FormReader({"n": "5000000000", "x": "-1"}, {"n": "Count", "x": "Rate"})
    reader.integer("n", maximum=2**32 - 1)
    reader.number("x", minimum=1e-6)
    assert reader.errors["n"] == ["Must be at most 4294967295."]
    assert reader.errors["x"] == ["Must be at least 1e-06."]
    assert plain_number(2**31 - 1) == "2147483647" and plain_number(1e6) == "1000000" and plain_number(0.5) == "0.5"


def add_ready_dataset_stub(workspace):
    """A dataset job that finished (its folder's contents are not read before the seed is checked)."""
    job = fake_job(owner="ann")
    recorder = record(workspace)
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Done"
    recorder.unsubscribe()
    return job
