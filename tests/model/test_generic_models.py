"""Models over generic data through the real server, training worker and inference workers: the MLP learns two
blobs and a linear target, a custom Caffe network trains on the blobs, predict one row and many (JSON, page, CSV),
the errors named by field, line and column, and the image form refusing a generic dataset."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from digits.webapp import create_app
from tests.support import HTML
from tests.support.apps import app_settings, sign_in
from tests.support.generic_data import blobs, linear, write_csv
from tests.support.waiting import LONG_S, record

CAFFE_MLP = """name: "tabular"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 1 dim: 4 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 1 } } exclude { stage: "deploy" } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 16 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" exclude { stage: "deploy" } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" include { stage: "deploy" } }
"""
SOLVER = {"solver_type": "ADAM", "learning_rate": "0.01", "lr_policy": "fixed", "batch_size": "32"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One app with an inference worker (it imports torch while the first model trains), signed in as ann."""
    tmp = tmp_path_factory.mktemp("generic")
    app = create_app(app_settings(tmp / "jobs", cpu_slots=2, inference_workers=1))
    client = sign_in(app)
    recorder = record(app.extensions["digits"])
    yield app, client, recorder, tmp
    app.extensions["digits"].close()


def dataset(server, name, x, y, problem="classification"):
    app, client, recorder, tmp = server
    path = write_csv(tmp / f"{name}.csv", x, y, target="side" if problem == "classification" else "y")
    r = client.post(
        "/datasets/generic/json",
        data={"dataset_name": name, "train_path": path, "problem": problem, "val_percent": "20"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    return job_id


def train(server, **fields):
    app, client, recorder, _ = server
    r = client.post("/models/generic/json", data={"model_name": "m", **SOLVER, **fields})
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    status = recorder.wait_status(job_id, timeout=LONG_S)
    js = client.get(f"/models/{job_id}/json").get_json()
    assert status == "Done", js["error"]
    return job_id, js


def val_series(server, job_id, name):
    _, client, _, _ = server
    chart = client.get(f"/models/{job_id}/metrics/json").get_json()
    (series,) = [s for s in chart["series"] if s["phase"] == "val" and s["name"] == name]
    return [y for _, y in series["points"]]


@pytest.fixture(scope="module")
def blobs_model(server):
    x, names = blobs(400, features=4)
    ds = dataset(server, "blobs", x, names)
    job_id, js = train(server, dataset=ds, train_epochs="5", mlp_hidden_sizes="16, 8", mlp_dropout="0.1")
    return ds, job_id, js, x, names


def test_the_mlp_learns_two_blobs_through_the_server(server, blobs_model):
    ds, job_id, js, _, _ = blobs_model
    assert js["snapshots"] == [1, 2, 3, 4, 5] and js["dataset_id"] == ds
    assert val_series(server, job_id, "accuracy")[-1] >= 0.95
    train_args = server[0].extensions["digits"].store.get(job_id).tasks[0].args
    assert train_args["network_options"] == {"hidden_sizes": [16, 8], "dropout": 0.1}
    page = server[1].get(f"/models/{job_id}", headers=HTML).get_data(as_text=True)
    assert 'id="predict-one-form"' in page and 'id="classify-one-form"' not in page
    assert 'for="feature_3">x3</label>' in page and f"/models/generic/new?clone={job_id}" in page


def test_predict_one_row_from_fields_and_from_a_pasted_row(server, blobs_model):
    _, job_id, _, x, names = blobs_model
    client = server[1]
    fields = {f"feature_{i}": repr(float(v)) for i, v in enumerate(x[0])}
    r = client.post("/models/generic/predict_one/json", data={"job_id": job_id, **fields})
    answer = r.get_json()
    assert r.status_code == 200 and answer["class"] == names[0]
    assert [label for label, _ in answer["predictions"]] == sorted(["left", "right"], key=lambda c: c != names[0])
    assert sum(p for _, p in answer["predictions"]) == pytest.approx(100, abs=0.02)
    for i in range(1, 21):
        r = client.post("/models/generic/predict_one/json", data={"job_id": job_id, "row": ",".join(map(str, x[i]))})
        assert r.get_json()["class"] == names[i]
    page = client.post("/models/generic/predict_one", data={"job_id": job_id, **fields}, headers=HTML)
    assert page.status_code == 200 and f"<strong>{names[0]}</strong>" in page.get_data(as_text=True)


def test_predict_one_errors_name_the_field(server, blobs_model):
    _, job_id, _, _, _ = blobs_model
    client = server[1]
    r = client.post("/models/generic/predict_one/json", data={"job_id": job_id, "feature_0": "abc"})
    assert r.status_code == 400 and "x0: Expected a number" in r.get_json()["error"]["message"]
    assert "x3: This field is required" in r.get_json()["error"]["message"]
    r = client.post("/models/generic/predict_one/json", data={"job_id": job_id, "row": "1,2,3"})
    assert r.status_code == 400 and "Or paste a CSV row: expected 4" in r.get_json()["error"]["message"]
    r = client.post("/models/generic/predict_one/json", data={"job_id": job_id, "row": "1,2,x,4"})
    assert r.status_code == 400 and "column x2" in r.get_json()["error"]["message"]
    r = client.post(
        "/models/generic/predict_one/json", data={"job_id": job_id, "row": "1,2,3,4", "snapshot_epoch": "9"}
    )
    assert r.status_code == 404 and "epochs: 1, 2, 3, 4, 5" in r.get_json()["error"]["message"]
    r = client.post("/models/generic/predict_one/json", data={"job_id": "20200101-000000-0000", "row": "1,2,3,4"})
    assert r.status_code == 404


def test_predict_many_answers_each_row_names_bad_cells_and_exports_csv(server, blobs_model):
    _, job_id, _, x, names = blobs_model
    client = server[1]
    body = io.StringIO()
    writer = csv.writer(body)
    writer.writerow(["side", "x3", "x2", "x1", "x0"])  # any order, the label column left out
    for row, name in zip(x[:30], names[:30], strict=True):
        writer.writerow([name, *map(float, row[::-1])])
    writer.writerow(["?", "1", "oops", "2", "3"])  # line 32
    writer.writerow(["?", "1", "2"])  # line 33: too few cells
    data = body.getvalue().encode()

    def post(route):
        return client.post(f"/models/generic/{route}", data={"job_id": job_id, "csv_file": (io.BytesIO(data), "r.csv")})

    js = post("predict_many/json").get_json()
    assert [r["line"] for r in js["rows"]] == list(range(2, 32))
    assert [r["class"] for r in js["rows"]] == list(names[:30])
    assert js["rows"][0]["features"] == pytest.approx(x[0].tolist())
    assert js["errors"] == [
        {"line": 32, "column": "x2", "message": "'oops' is not a number"},
        {"line": 33, "column": None, "message": "3 cells where the header has 5"},
    ]
    exported = list(csv.reader(io.StringIO(post("predict_many.csv").get_data(as_text=True))))
    assert exported[0] == ["line", "x0", "x1", "x2", "x3", "predicted", "percent", "error"]
    assert [row[5] for row in exported[1:31]] == list(names[:30])
    assert exported[31][0] == "32" and exported[31][-1] == "column x2: 'oops' is not a number"
    missing = client.post(
        "/models/generic/predict_many/json",
        data={"job_id": job_id, "csv_file": (io.BytesIO(b"x0,x1,x2\n1,2,3\n"), "r.csv")},
    )
    assert (
        missing.status_code == 400
        and "CSV file: the header has no column 'x3'" in missing.get_json()["error"]["message"]
    )


def test_the_mlp_fits_a_linear_target_and_predicts_values(server):
    x, y, _ = linear(400, features=3)
    ds = dataset(server, "linear", x, y, problem="regression")
    job_id, js = train(server, dataset=ds, train_epochs="40", learning_rate="0.01")
    assert val_series(server, job_id, "loss")[-1] < 0.05 * float(np.var(y))
    assert val_series(server, job_id, "mae")
    rows = "\n".join(",".join(map(str, row)) for row in x[:20])
    r = server[1].post(
        "/models/generic/predict_many/json",
        data={"job_id": job_id, "csv_file": (io.BytesIO(("x0,x1,x2\n" + rows + "\n").encode()), "r.csv")},
    )
    predicted = np.array([row["prediction"] for row in r.get_json()["rows"]])
    assert np.sqrt(np.mean((predicted - y[:20]) ** 2)) < 0.25 * float(np.std(y))
    # A Caffe network trains classification here: a regression dataset says to use the MLP or PyTorch.
    r = server[1].post(
        "/models/generic/json",
        data={"model_name": "c", "dataset": ds, "method": "custom", "framework": "caffe", "custom_network": CAFFE_MLP},
    )
    assert (
        r.status_code == 400
        and "Framework: A Caffe network trains on a classification dataset" in r.get_json()["error"]["message"]
    )


def test_a_custom_caffe_network_over_an_input_trains_on_blobs(server, blobs_model):
    ds = blobs_model[0]
    job_id, js = train(
        server, dataset=ds, method="custom", framework="caffe", custom_network=CAFFE_MLP, train_epochs="4"
    )
    assert js["framework"] == "caffe" and val_series(server, job_id, "accuracy")[-1] >= 0.95
    x, names = blobs_model[3], blobs_model[4]
    r = server[1].post("/models/generic/predict_one/json", data={"job_id": job_id, "row": ",".join(map(str, x[5]))})
    assert r.get_json()["class"] == names[5]


def test_form_errors_and_the_image_form_refusing_a_generic_dataset(server, blobs_model):
    ds = blobs_model[0]
    client = server[1]
    r = client.post(
        "/models/images/classification/json",
        data={"dataset": ds, "model_name": "img", "method": "standard", "standard_networks": "lenet"},
    )
    assert r.status_code == 400 and "Dataset: Dataset blobs is a generic dataset" in r.get_json()["error"]["message"]
    assert ds not in client.get("/models/images/classification/new", headers=HTML).get_data(as_text=True)
    assert ds in client.get(f"/models/generic/new?dataset={ds}", headers=HTML).get_data(as_text=True)
    r = client.post("/models/generic/json", data={"model_name": "x", "dataset": ds, "mlp_hidden_sizes": "16,a"})
    assert r.status_code == 400 and "Hidden layer sizes: Expected whole numbers" in r.get_json()["error"]["message"]
    broken = CAFFE_MLP.replace('bottom: "ip1" top: "ip2"', 'bottom: "nowhere" top: "ip2"')
    r = client.post(
        "/models/generic/json",
        data={"model_name": "x", "dataset": ds, "method": "custom", "framework": "caffe", "custom_network": broken},
    )
    assert r.status_code == 400 and "Network definition:" in r.get_json()["error"]["message"]
    image_model = client.post("/models/generic/json", data={"model_name": "x", "dataset": "20200101-000000-0000"})
    assert image_model.status_code == 400 and "Dataset: No dataset" in image_model.get_json()["error"]["message"]
    page = client.post("/models/generic", data={"model_name": "", "dataset": ds}, headers=HTML)
    assert page.status_code == 400 and 'id="form-errors"' in page.get_data(as_text=True)
