"""Exports of a trained model: each snapshot as ONNX, checked with onnxruntime against the server's own classify
(same top-1, probabilities within 1e-4) for a Caffe LeNet, a PyTorch network and a Caffe network of BatchNorm,
Scale, Concat and a grouped convolution; a layer ONNX cannot express, named; the metrics as TensorBoard event files
read back by TensorBoard's own reader."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
import pytest
from flask import Flask
from flask.testing import FlaskClient
from tensorboard.backend.event_processing import event_accumulator

from digits.folders.model import metric_lines
from digits.inference.pool import InferencePool
from digits.webapp import create_app
from tests.model.conftest import shapes_dataset_dir  # noqa: F401 - a session fixture
from tests.model.test_download import engine_predictions, members
from tests.support import JSON, ROOT
from tests.support.apps import app_settings, sign_in
from tests.support.datasets import add_ready_dataset
from tests.support.forms import model_form
from tests.support.waiting import LONG_S, EventRecorder, record

pytestmark = pytest.mark.slow  # networks train in real workers

TORCH_NET = """
import torch
from torch import nn

BATCH_SIZE = 16
INPUT_SCALE = 1 / 64
CROP_SIZE = None
POOLED = 2


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


class Net(nn.Module):
    def __init__(self, num_classes, channels):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = Residual(8)
        self.pool = nn.AdaptiveAvgPool2d(POOLED)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * POOLED * POOLED, num_classes))

    def forward(self, x):
        return self.head(self.pool(self.block(self.stem(x))))


def build_model(*, num_classes, channels, height, width):
    return Net(num_classes, channels)
"""
# 28x28 -> 14x14 by the stem: an adaptive pool to 5x5 is no fixed pooling, which ONNX cannot express.
UNEXPORTABLE = TORCH_NET.replace("POOLED = 2", "POOLED = 5")

CAFFE_NET = """
name: "BranchNet"
layer { name: "train-data" type: "Data" top: "data" top: "label" include { stage: "train" }
  data_param { batch_size: 16 } }
layer { name: "val-data" type: "Data" top: "data" top: "label" include { stage: "val" }
  data_param { batch_size: 16 } }
layer { name: "scale" type: "Power" bottom: "data" top: "scaled" power_param { scale: 0.0125 } }
layer { name: "conv1" type: "Convolution" bottom: "scaled" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "grouped" type: "Convolution" bottom: "conv1" top: "grouped"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 4 weight_filler { type: "xavier" } } }
layer { name: "pooled" type: "Pooling" bottom: "conv1" top: "pooled"
  pooling_param { pool: MAX kernel_size: 3 stride: 1 pad: 1 } }
layer { name: "concat" type: "Concat" bottom: "grouped" bottom: "pooled" top: "concat" }
layer { name: "pool2" type: "Pooling" bottom: "concat" top: "pool2"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool2" top: "ip"
  inner_product_param { weight_filler { type: "xavier" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy" include { stage: "val" } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" exclude { stage: "deploy" } }
layer { name: "softmax" type: "Softmax" bottom: "ip" top: "softmax" include { stage: "deploy" } }
"""

MODELS = {
    # a crop and a per-pixel mean: the preprocessing contract has something to say
    "caffe-lenet": dict(framework="caffe", use_mean="pixel", crop_size="24"),
    "torch-residual": dict(framework="torch", method="custom", custom_network=TORCH_NET, use_mean="image"),
    # 13x13 pooled 2/2 is 7x7 in Caffe (rounded up): the export's pooled sizes must round as Caffe's do
    "caffe-branches": dict(framework="caffe", method="custom", custom_network=CAFFE_NET, use_mean="image"),
    "torch-unexportable": dict(framework="torch", method="custom", custom_network=UNEXPORTABLE),
}


@dataclass
class Trained:
    app: Flask
    client: FlaskClient
    pool: InferencePool
    models: dict[str, str]  # MODELS key -> job id
    recorder: EventRecorder

    @property
    def workspace(self):
        return self.app.extensions["digits"]

    def job_dir(self, key: str) -> str:
        return self.workspace.store.job_dir(self.models[key])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes_dataset_dir) -> Trained:  # noqa: F811 - the imported fixture
    app = create_app(app_settings(tmp_path_factory.mktemp("exports") / "jobs", cpu_slots=2, inference_workers=1))
    workspace = app.extensions["digits"]
    recorder = record(workspace)
    dataset = add_ready_dataset(workspace, shapes_dataset_dir)
    client = sign_in(app)
    models = {}
    for key, fields in MODELS.items():
        r = client.post("/models/images/classification/json", data=model_form(dataset.id, model_name=key, **fields))
        assert r.status_code == 200, r.get_data(as_text=True)
        models[key] = r.get_json()["id"]
    for job_id in models.values():
        assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", client.get(f"/models/{job_id}/status").json
    yield Trained(app, client, workspace.inference, models, recorder)
    workspace.inference.close()
    workspace.close()


def val_images(trained: Trained) -> list[str]:
    dataset_id = trained.workspace.store.get(trained.models["caffe-lenet"]).extra["dataset_id"]
    with open(os.path.join(trained.workspace.store.job_dir(dataset_id), "val.txt")) as fh:
        return [line.rsplit(" ", 1)[0] for line in fh.read().splitlines()]


@pytest.mark.parametrize("key", ["caffe-lenet", "torch-residual", "caffe-branches"])
def test_onnx_classifies_as_the_server_does(trained, key):
    job_id, client = trained.models[key], trained.client
    r = client.get(f"/models/{job_id}/download.onnx?epoch=1")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Disposition"] == f'attachment; filename="{key}-epoch1.onnx"'
    model = onnx.load_from_string(r.get_data())
    onnx.checker.check_model(model)
    contract = {p.key: json.loads(p.value) for p in model.metadata_props}
    archive = members(client.get(f"/models/{job_id}/download.zip?epoch=1").get_data(), "zip")
    folder = f"{key}-epoch1"
    assert archive[f"{folder}/model.onnx"] == r.get_data()
    info = json.loads(archive[f"{folder}/info.json"])
    assert info["onnx"] == {"file": "model.onnx", "opset": 17, "input": "data", "outputs": ["logits", "prob"]}
    assert "model.onnx" in archive[f"{folder}/README.txt"].decode()
    for field in ("input_shape", "input_scale", "crop_size"):
        assert contract[field] == info[field], field
    assert contract["mean"] == info["use_mean"] and contract["framework"] == info["framework"]

    session = onnxruntime.InferenceSession(r.get_data(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"]
    assert [o.name for o in session.get_outputs()] == ["logits", "prob"]
    paths = val_images(trained)
    dataset = trained.workspace.store.get(trained.workspace.store.get(job_id).extra["dataset_id"])
    _, batch = engine_predictions(trained.workspace, job_id, dataset, paths, epoch=1, with_inputs=True)
    assert list(batch.shape[1:]) == info["input_shape"]
    logits, prob = session.run(None, {"data": batch.astype(np.float32)})
    np.testing.assert_allclose(prob, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5, atol=1e-6)

    listing = "\n".join(paths)
    form = {"job_id": job_id, "snapshot_epoch": "1", "image_list": (io.BytesIO(listing.encode()), "list.txt")}
    answer = client.post("/models/images/classification/classify_many/json", data=form)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    classified = answer.get_json()["classifications"]
    assert len(classified) == len(paths) >= 20
    labels = info["labels"]
    for path, row in zip(paths, prob, strict=True):
        top = classified[path]
        assert top[0][0] == labels[int(np.argmax(row))], path
        for label, percent in top:  # the server answers percents with 2 decimals: 1e-4 of a probability
            assert abs(row[labels.index(label)] * 100 - percent) <= 0.01 + 1e-6, (path, label)


def test_a_layer_onnx_cannot_express_is_named(trained):
    job_id, client = trained.models["torch-unexportable"], trained.client
    with open(os.path.join(trained.job_dir("torch-unexportable"), "train.log")) as fh:
        log = fh.read()
    assert "no ONNX model for download" in log and "layer 'pool' (AdaptiveAvgPool2d)" in log
    assert log.count("no ONNX model for download") == 1  # said once, not at every snapshot

    r = client.get(f"/models/{job_id}/download.onnx", headers=JSON)
    assert r.status_code == 409
    message = r.get_json()["error"]["message"]
    assert "no ONNX export for epoch 2" in message and "layer 'pool' (AdaptiveAvgPool2d)" in message
    assert "not factor of input size" in message

    r = client.get(f"/models/{job_id}/download.zip")  # the rest of the archive still comes, saying why
    assert r.status_code == 200
    files = members(r.get_data(), "zip")
    folder = "torch-unexportable-epoch2"
    assert f"{folder}/model.ts" in files and f"{folder}/model.onnx" not in files
    assert "layer 'pool'" in json.loads(files[f"{folder}/info.json"])["onnx"]["error"]
    assert "no model.onnx" in files[f"{folder}/README.txt"].decode()


def test_a_snapshot_exported_before_onnx_existed(trained):
    job_id, client, job_dir = trained.models["caffe-lenet"], trained.client, trained.job_dir("caffe-lenet")
    os.remove(os.path.join(job_dir, "deploy_epoch_2.onnx"))
    with open(os.path.join(job_dir, "deploy_epoch_2.json")) as fh:
        deploy = json.load(fh)
    del deploy["onnx"]
    with open(os.path.join(job_dir, "deploy_epoch_2.json"), "w") as fh:
        json.dump(deploy, fh)
    r = client.get(f"/models/{job_id}/download.onnx", headers=JSON)
    assert r.status_code == 409
    assert "digits.engine.export" in r.get_json()["error"]["message"]
    assert client.get(f"/models/{job_id}/download.onnx?epoch=9", headers=JSON).status_code == 404
    assert client.get(f"/models/{job_id}/download").status_code == 200  # the archive goes without it

    export = [sys.executable, "-m", "digits.engine.export", job_dir]
    out = subprocess.run(export, cwd=ROOT, capture_output=True, text=True, check=True, timeout=LONG_S)
    assert "deploy_epoch_2.onnx" in out.stdout
    r = client.get(f"/models/{job_id}/download.onnx")
    assert r.status_code == 200 and onnx.load_from_string(r.get_data()).graph.input[0].name == "data"


def read_runs(folder) -> dict[str, event_accumulator.EventAccumulator]:
    runs = {}
    for run in sorted(os.listdir(folder)):
        acc = event_accumulator.EventAccumulator(str(folder / run), size_guidance={event_accumulator.SCALARS: 0})
        acc.Reload()
        runs[run] = acc
    return runs


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_tensorboard_reads_every_metric_back(trained, tmp_path, fmt):
    key = "torch-residual"
    job_id, job_dir = trained.models[key], trained.job_dir(key)
    url = f"/models/{job_id}/tensorboard" + ("" if fmt == "tar.gz" else f".{fmt}")
    r = trained.app.test_client().get(url)  # anyone who can see a model may download its metrics
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Disposition"] == f'attachment; filename="{key}-tensorboard.{fmt}"'
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(r.get_data())) as zf:
            zf.extractall(tmp_path)
    else:
        with tarfile.open(fileobj=io.BytesIO(r.get_data()), mode="r:gz") as tf:
            tf.extractall(tmp_path, filter="data")
    runs = read_runs(tmp_path / f"{key}-tensorboard")
    assert sorted(runs) == ["train", "val"]
    assert sorted(runs["train"].Tags()["scalars"]) == ["learning_rate", "loss"]
    assert sorted(runs["val"].Tags()["scalars"]) == ["accuracy", "loss"]

    points = metric_lines(job_dir)
    loss_steps = {}
    for phase, acc in runs.items():
        for tag in acc.Tags()["scalars"]:
            expected = [p for p in points if p["phase"] == phase and p["name"] == tag]
            got = acc.Scalars(tag)
            assert len(got) == len(expected) > 0, (phase, tag)
            for point, scalar in zip(expected, got, strict=True):
                assert scalar.value == pytest.approx(point["value"], rel=1e-6, abs=1e-30)
                assert scalar.wall_time == pytest.approx(point["time"])
                if point["iteration"] is not None:
                    assert scalar.step == point["iteration"]
            if (phase, tag) == ("train", "loss"):
                loss_steps = {p["epoch"]: s.step for p, s in zip(expected, got, strict=True)}
    # The learning rate, reported by epoch only, lands on the iteration of the loss reported with it.
    lr = runs["train"].Scalars("learning_rate")
    lr_points = [p for p in points if p["name"] == "learning_rate"]
    assert [s.step for s in lr] == [loss_steps[p["epoch"]] for p in lr_points]
    assert lr[-1].step == max(loss_steps.values()) > 0


def test_tensorboard_of_a_model_without_metrics(trained):
    client, job_dir = trained.client, trained.job_dir("caffe-branches")
    job_id = trained.models["caffe-branches"]
    os.rename(os.path.join(job_dir, "metrics.jsonl"), os.path.join(job_dir, "metrics.jsonl.away"))
    try:
        r = client.get(f"/models/{job_id}/tensorboard", headers=JSON)
        assert r.status_code == 409 and "no metric" in r.get_json()["error"]["message"]
    finally:
        os.rename(os.path.join(job_dir, "metrics.jsonl.away"), os.path.join(job_dir, "metrics.jsonl"))
    assert client.get("/models/20990101-000000-abcd/tensorboard", headers=JSON).status_code == 404
    assert client.get(f"/models/{job_id}/tensorboard.tar.bz2", headers=JSON).status_code == 404
