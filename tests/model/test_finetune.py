"""Fine-tuning with real training workers: start weights loaded by layer name (a renamed or reshaped layer starts
fresh), frozen layers (the form's "Frozen layers" and Caffe's lr_mult 0), a .caffemodel written by real Caffe, and
the record the model page and its JSON twin show."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from flask import render_template_string

from digits.folders.model import START_RECORD, read_start_record
from digits.model.standard import get_network
from tests.support.datasets import add_ready_dataset, create_db
from tests.support.forms import model_form
from tests.support.imagegen import make_shapes
from tests.support.waiting import LONG_S

pytestmark = pytest.mark.slow  # LeNet trains in real workers

LENET = get_network("lenet").text("caffe")
# The launch post's case: the last layer renamed for the new classes (its top blob, which the loss reads, kept).
RENAMED = LENET.replace('name: "ip2"', 'name: "ip2_new"')
assert RENAMED != LENET


@pytest.fixture(scope="module")
def four_class_dir(tmp_path_factory) -> str:
    """Gray 28x28 shapes of 4 classes, as a dataset folder."""
    root = tmp_path_factory.mktemp("shapes4-ds")
    make_shapes(str(root / "src"), per_class=20, size=(24, 40), classes=("circle", "square", "triangle", "star"))
    return create_db(root / "dataset", root / "src")


@pytest.fixture
def four_classes(workspace, four_class_dir):
    return add_ready_dataset(workspace, four_class_dir, name="shapes4")


def train(client, recorder, form, status="Done") -> str:
    r = client.post("/models/images/classification/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == status, client.get(f"/models/{job_id}/status").get_json()
    return job_id


def weights(workspace, job_id: str, epoch: int = 1) -> dict[str, torch.Tensor]:
    path = os.path.join(workspace.store.job_dir(job_id), f"snapshot_epoch_{epoch}.pt")
    return torch.load(path, weights_only=True)["model"]


def layers_of(record: dict, key: str) -> list[str]:
    return [e["layer"] for e in record[key]]


def test_a_caffe_model_fine_tuned_with_a_renamed_last_layer_on_more_classes(
    signed_in, workspace, recorder, dataset, four_classes
):
    a = train(signed_in, recorder, model_form(dataset.id, framework="caffe", train_epochs="1", model_name="A"))
    start = os.path.join(workspace.store.job_dir(a), "snapshot_epoch_1.pt")
    form = model_form(
        four_classes.id,
        framework="caffe",
        method="custom",
        custom_network=RENAMED,
        custom_network_snapshot=start,
        frozen_layers="conv",
        weight_decay="0.01",  # a frozen layer gets no decay either: it would shrink the weights
        train_epochs="1",
        model_name="B",
    )
    b = train(signed_in, recorder, form)

    record = signed_in.get(f"/models/{b}/json").get_json()["started from"]
    assert record["source"] == {"path": start, "file": "snapshot_epoch_1.pt", "format": "pt", "model_id": a}
    assert layers_of(record, "loaded") == ["conv1", "conv2", "ip1"]
    assert record["new"] == [{"layer": "ip2_new", "reason": "absent", "shapes": []}]
    assert record["unused"] == ["ip2"]  # the file's old last layer: no layer of B is named so
    assert record["frozen"] == [{"layer": "conv1", "by": "Frozen layers"}, {"layer": "conv2", "by": "Frozen layers"}]
    assert record == read_start_record(workspace.store.job_dir(b))

    before, after = weights(workspace, a), weights(workspace, b)
    for frozen in ("conv1", "conv2"):
        for blob in ("weight", "bias"):
            key = f"layers.{frozen}.{blob}"
            assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["layers.ip1.weight"], after["layers.ip1.weight"])  # loaded, then trained
    assert after["layers.ip2_new.weight"].shape == (4, 500)

    page = signed_in.get(f"/models/{b}").get_data(as_text=True)
    assert "Started from" in page and "ip2_new" in page and "not in the file" in page
    log = Path(workspace.store.job_dir(b), "train.log").read_text(encoding="utf-8")
    assert "pretrained weights: 6 tensors loaded from snapshot_epoch_1.pt (3 layers)" in log
    assert "new layers: ip2_new (absent)" in log


def test_a_pytorch_model_frozen_by_prefix_keeps_those_weights_and_a_reshaped_layer_starts_fresh(
    signed_in, workspace, recorder, dataset, four_classes
):
    a = train(signed_in, recorder, model_form(dataset.id, train_epochs="1", model_name="A"))
    start = os.path.join(workspace.store.job_dir(a), "snapshot_epoch_1.pt")
    form = model_form(
        four_classes.id, custom_network_snapshot=start, frozen_layers="features", weight_decay="0.01", train_epochs="1"
    )
    b = train(signed_in, recorder, form)
    record = signed_in.get(f"/models/{b}/json").get_json()["started from"]
    assert layers_of(record, "loaded") == ["features.0", "features.2", "classifier.1"]
    assert record["new"] == [
        {
            "layer": "classifier.3",
            "reason": "shape differs",
            "shapes": [
                {"blob": "weight", "file": [3, 500], "network": [4, 500]},
                {"blob": "bias", "file": [3], "network": [4]},
            ],
        }
    ]
    assert layers_of(record, "frozen") == ["features.0", "features.2"]
    before, after = weights(workspace, a), weights(workspace, b)
    for key in ("features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["classifier.1.weight"], after["classifier.1.weight"])
    page = signed_in.get(f"/models/{b}").get_data(as_text=True)
    assert "its shape differs" in page and "weight: file 3×500, network 4×500" in page


def test_lr_mult_0_in_a_caffe_network_freezes_a_layer_started_from_our_caffemodel(
    signed_in, workspace, recorder, dataset
):
    a = train(signed_in, recorder, model_form(dataset.id, framework="caffe", train_epochs="1", model_name="A"))
    caffemodel = os.path.join(workspace.store.job_dir(a), "deploy_epoch_1.caffemodel")
    assert os.path.isfile(caffemodel)
    conv1 = LENET.index('name: "conv1"')
    frozen_net = LENET[:conv1] + LENET[conv1:].replace(
        "param { lr_mult: 1 }\n  param { lr_mult: 2 }", "param { lr_mult: 0 }\n  param { lr_mult: 0 }", 1
    )
    assert frozen_net.count("lr_mult: 0") == 2
    form = model_form(
        dataset.id,
        framework="caffe",
        method="custom",
        custom_network=frozen_net,
        custom_network_snapshot=caffemodel,
        weight_decay="0.01",
        train_epochs="1",
    )
    b = train(signed_in, recorder, form)
    record = signed_in.get(f"/models/{b}/json").get_json()["started from"]
    assert record["source"]["format"] == "caffemodel" and record["source"]["model_id"] == a
    assert layers_of(record, "loaded") == ["conv1", "conv2", "ip1", "ip2"] and not record["new"]
    assert record["frozen"] == [{"layer": "conv1", "by": "lr_mult 0"}]
    before, after = weights(workspace, a), weights(workspace, b)
    assert torch.equal(before["layers.conv1.weight"], after["layers.conv1.weight"])
    assert torch.equal(before["layers.conv1.bias"], after["layers.conv1.bias"])
    assert not torch.equal(before["layers.conv2.weight"], after["layers.conv2.weight"])


def test_real_caffe_as_the_engine_starts_from_the_weights_by_layer_name_and_honours_lr_mult_0(
    caffe, signed_in, workspace, recorder, dataset, four_classes
):
    a = train(signed_in, recorder, model_form(dataset.id, framework="caffe", train_epochs="1", model_name="A"))
    start = os.path.join(workspace.store.job_dir(a), "snapshot_epoch_1.pt")
    conv1 = RENAMED.index('name: "conv1"')
    net = RENAMED[:conv1] + RENAMED[conv1:].replace(
        "param { lr_mult: 1 }\n  param { lr_mult: 2 }", "param { lr_mult: 0 }\n  param { lr_mult: 0 }", 1
    )
    common = dict(framework="caffe", caffe_engine="pycaffe", method="custom", custom_network=net, train_epochs="1")
    form = model_form(four_classes.id, custom_network_snapshot=start, weight_decay="0.01", model_name="B", **common)
    b = train(signed_in, recorder, form)
    record = signed_in.get(f"/models/{b}/json").get_json()["started from"]
    assert layers_of(record, "loaded") == ["conv1", "conv2", "ip1"]
    assert record["new"] == [{"layer": "ip2_new", "reason": "absent", "shapes": []}]
    assert record["frozen"] == [{"layer": "conv1", "by": "lr_mult 0"}]
    before, after = weights(workspace, a), weights(workspace, b)  # B's .pt holds what real Caffe trained
    assert torch.equal(before["layers.conv1.weight"], after["layers.conv1.weight"])  # started from A, kept by Caffe
    assert not torch.equal(before["layers.conv2.weight"], after["layers.conv2.weight"])  # started from A, trained
    assert after["layers.ip2_new.weight"].shape == (4, 500)
    # The form's Frozen layers are the PyTorch compilation's: real Caffe's run says so instead of training them.
    form = model_form(four_classes.id, custom_network_snapshot=start, frozen_layers="conv2", **common)
    c = train(signed_in, recorder, form, status="Error")
    assert "lr_mult: 0" in signed_in.get(f"/models/{c}/status").get_json()["error"]


# LeNet's layers as Caffe deploys them, for real Caffe to write a .caffemodel of (its fillers' weights).
CAFFE_LENET = """
name: "LeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 50 kernel_size: 5
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "fc_other" type: "InnerProduct" bottom: "ip1" top: "fc_other"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
"""


def test_a_caffemodel_written_by_real_caffe_starts_a_network_with_its_blobs(
    caffe, signed_in, workspace, recorder, dataset, tmp_path
):
    prototxt = tmp_path / "lenet_deploy.prototxt"
    prototxt.write_text(CAFFE_LENET)
    net = caffe.Net(str(prototxt), caffe.TEST)
    saved = tmp_path / "lenet.caffemodel"
    net.save(str(saved))
    blobs = {name: [np.array(b.data) for b in net.params[name]] for name in ("conv1", "conv2", "ip1")}
    del net

    form = model_form(
        dataset.id,
        framework="caffe",
        custom_network_snapshot=str(saved),
        frozen_layers="conv1, conv2,ip1",
        train_epochs="1",
    )
    b = train(signed_in, recorder, form)
    record = signed_in.get(f"/models/{b}/json").get_json()["started from"]
    assert record["source"]["format"] == "caffemodel" and "model_id" not in record["source"]
    assert layers_of(record, "loaded") == ["conv1", "conv2", "ip1"]
    assert record["new"] == [{"layer": "ip2", "reason": "absent", "shapes": []}]
    assert record["unused"] == ["fc_other"]
    assert layers_of(record, "frozen") == ["conv1", "conv2", "ip1"]
    after = weights(workspace, b)
    for name, (weight, bias) in blobs.items():
        assert np.array_equal(after[f"layers.{name}.weight"].numpy(), weight), name
        assert np.array_equal(after[f"layers.{name}.bias"].numpy(), bias), name


def test_an_unknown_frozen_layer_is_an_error_naming_the_field_and_the_name(signed_in, recorder, dataset):
    # A Caffe network's layer names are known to the form: a 400 before any job exists.
    r = signed_in.post(
        "/models/images/classification/json",
        data=model_form(dataset.id, framework="caffe", frozen_layers="conv1, fc7"),
    )
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    message = json.dumps(body)
    assert "Frozen layers" in message and "'fc7'" in message and "'conv1'" not in message
    # A PyTorch network's modules exist once its code runs: the worker fails the task, naming both.
    job_id = train(signed_in, recorder, model_form(dataset.id, frozen_layers="features.0, head"), status="Error")
    error = signed_in.get(f"/models/{job_id}/status").get_json()["error"]
    assert "Frozen layers" in error and "'head'" in error and "features.0" in error  # the layers it has
    assert "Traceback" not in error


def test_the_record_is_read_defensively_and_shown_escaped_and_folded(app, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    assert read_start_record(str(folder)) is None
    (folder / START_RECORD).write_text("[1, 2]")
    assert read_start_record(str(folder)) is None
    names = [f"conv{i}" for i in range(12)]
    raw = {
        "source": {"path": "/data/x.pt", "file": "x.pt", "format": "pt", "extra": "dropped"},
        "loaded": [{"layer": n, "tensors": 2} for n in names] + ["junk", {"layer": 3}],
        "new": [{"layer": "<script>alert(1)</script>", "reason": "shape differs", "shapes": "junk"}],
        "frozen": [{"layer": "conv0", "by": "Frozen layers"}],
        "unused": ["fc8", 7],
    }
    (folder / START_RECORD).write_text(json.dumps(raw))
    record = read_start_record(str(folder))
    assert record["source"] == {"path": "/data/x.pt", "file": "x.pt", "format": "pt"}
    assert layers_of(record, "loaded") == names and record["unused"] == ["fc8"]
    assert record["new"][0]["shapes"] == []
    with app.test_request_context("/"):
        html = render_template_string('{% include "models/_started_from.html" %}', info={"started from": record})
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Twelve loaded layers fold into a details; the short lists stay open.
    assert re.search(r'<details[^>]*id="started-loaded-details"', html) and "Loaded (12)" in html
    assert 'id="started-frozen-title"' in html and "started-frozen-details" not in html
    with app.test_request_context("/"):
        empty = render_template_string('{% include "models/_started_from.html" %}', info={"started from": None})
    assert 'id="started-from"' in empty and "Started from" not in empty  # the live region waits for the record
