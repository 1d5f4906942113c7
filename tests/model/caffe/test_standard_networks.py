"""The standard Caffe networks: per-layer shapes and parameter counts against hand-computed Caffe values."""

from __future__ import annotations

from pathlib import Path

import pytest

import digits
from digits.model.caffe import analyze
from digits.model.caffe.textformat import parse
from tests.model.caffe.make_standard_networks import INCEPTIONS  # the paper's table, not the prototxt

NETWORKS = Path(digits.__file__).parent / "model" / "networks" / "caffe"


def load(name: str) -> str:
    return (NETWORKS / f"{name}.prototxt").read_text()


def shapes(spec) -> dict[str, tuple]:
    """Top blob -> shape after the layer that last wrote it."""
    out = {}
    for layer in spec.layers:
        out.update(layer.output_shapes)
    return out


def test_every_standard_network_has_a_header_comment():
    for path in NETWORKS.glob("*.prototxt"):
        assert path.read_text().startswith("# "), path.name


def test_lenet_shapes_and_parameters():
    spec = analyze(load("lenet"), stage="train", input_shape=(1, 28, 28), num_classes=10)
    got = shapes(spec)
    expected = {
        "data": (1, 28, 28),
        "label": (),
        "scaled": (1, 28, 28),
        "conv1": (20, 24, 24),
        "pool1": (20, 12, 12),
        "conv2": (50, 8, 8),
        "pool2": (50, 4, 4),
        "ip1": (500,),
        "ip2": (10,),
        "loss": (),
    }
    assert got == expected
    assert spec.total_params == 431_080
    assert spec.layer("ip2").param_shapes == [(10, 500), (10,)]
    assert spec.layer("conv1").lr_mults == [1.0, 2.0]
    assert spec.batch_size == 64
    assert spec.loss_heads == [("ip2", 1.0)] and spec.output_blob == "ip2"
    assert spec.data_blob == "data" and spec.label_blob == "label"
    assert spec.transform["crop_size"] == 0 and spec.transform["mirror"] is False


def test_lenet_stages_select_their_layers():
    text = load("lenet")
    names = {s: [layer.name for layer in analyze(text, stage=s, input_shape=(1, 28, 28), num_classes=10).layers]
             for s in ("train", "val", "deploy")}  # fmt: skip
    assert names["train"][0] == "train-data" and "accuracy" not in names["train"] and "loss" in names["train"]
    assert names["val"][0] == "val-data" and "accuracy" in names["val"] and "loss" in names["val"]
    assert names["deploy"][0] == "scale" and names["deploy"][-1] == "softmax" and "loss" not in names["deploy"]
    val = analyze(text, stage="val", input_shape=(1, 28, 28), num_classes=10)
    assert val.accuracy == [("ip2", 1)]


def test_alexnet_shapes_and_parameters():
    spec = analyze(load("alexnet"), stage="train", input_shape=(3, 227, 227), num_classes=1000)
    got = shapes(spec)
    expected = {
        "conv1": (96, 55, 55),
        "norm1": (96, 55, 55),
        "pool1": (96, 27, 27),
        "conv2": (256, 27, 27),
        "norm2": (256, 27, 27),
        "pool2": (256, 13, 13),
        "conv3": (384, 13, 13),
        "conv4": (384, 13, 13),
        "conv5": (256, 13, 13),
        "pool5": (256, 6, 6),
        "fc6": (4096,),
        "fc7": (4096,),
        "fc8": (1000,),
    }
    assert {k: got[k] for k in expected} == expected
    assert spec.layer("conv2").param_shapes == [(256, 48, 5, 5), (256,)]  # group 2
    assert spec.total_params == 60_965_224
    assert spec.batch_size == 128
    assert spec.transform["crop_size"] == 227 and spec.transform["mirror"] is True
    val = analyze(load("alexnet"), stage="val", input_shape=(3, 227, 227), num_classes=5)
    assert val.transform["crop_size"] == 227 and val.transform["mirror"] is False
    assert val.layer("fc8").output_shapes == {"fc8": (5,)}


def googlenet_params(classes: int, aux: bool) -> int:
    """GoogLeNet's parameter count from the paper's table, independent of the prototxt."""

    def conv(cin, cout, k):
        return cin * cout * k * k + cout

    total = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    channels = 192
    for one, r3, three, r5, five, proj in INCEPTIONS.values():
        total += conv(channels, one, 1) + conv(channels, r3, 1) + conv(r3, three, 3)
        total += conv(channels, r5, 1) + conv(r5, five, 5) + conv(channels, proj, 1)
        channels = one + three + five + proj
    total += channels * classes + classes
    if aux:
        for cin in (512, 528):
            total += conv(cin, 128, 1) + (128 * 4 * 4 * 1024 + 1024) + (1024 * classes + classes)
    return total


def test_googlenet_shapes_and_parameters():
    spec = analyze(load("googlenet"), stage="train", input_shape=(3, 224, 224), num_classes=1000)
    got = shapes(spec)
    expected = {
        "conv1/7x7_s2": (64, 112, 112),
        "pool1/3x3_s2": (64, 56, 56),
        "pool1/norm1": (64, 56, 56),
        "conv2/3x3_reduce": (64, 56, 56),
        "conv2/3x3": (192, 56, 56),
        "pool2/3x3_s2": (192, 28, 28),
        "inception_3a/output": (256, 28, 28),
        "inception_3b/output": (480, 28, 28),
        "pool3/3x3_s2": (480, 14, 14),
        "inception_4a/output": (512, 14, 14),
        "inception_4b/output": (512, 14, 14),
        "inception_4c/output": (512, 14, 14),
        "inception_4d/output": (528, 14, 14),
        "inception_4e/output": (832, 14, 14),
        "pool4/3x3_s2": (832, 7, 7),
        "inception_5a/output": (832, 7, 7),
        "inception_5b/output": (1024, 7, 7),
        "pool5/7x7_s1": (1024, 1, 1),
        "loss3/classifier": (1000,),
        "loss1/ave_pool": (512, 4, 4),
        "loss1/conv": (128, 4, 4),
        "loss1/fc": (1024,),
        "loss1/classifier": (1000,),
        "loss2/ave_pool": (528, 4, 4),
        "loss2/conv": (128, 4, 4),
        "loss2/fc": (1024,),
        "loss2/classifier": (1000,),
        "inception_3a/3x3": (128, 28, 28),
        "inception_3a/5x5": (32, 28, 28),
        "inception_3a/pool": (192, 28, 28),
    }
    assert {k: got[k] for k in expected} == expected
    assert spec.loss_heads == [("loss1/classifier", 0.3), ("loss2/classifier", 0.3), ("loss3/classifier", 1.0)]
    assert spec.output_blob == "loss3/classifier"
    assert spec.batch_size == 32 and spec.transform["crop_size"] == 224 and spec.transform["mirror"] is True
    assert spec.total_params == googlenet_params(1000, aux=True) == 13_378_280

    deploy = analyze(load("googlenet"), stage="deploy", input_shape=(3, 224, 224), num_classes=1000)
    assert not any(layer.name.startswith(("loss1", "loss2")) for layer in deploy.layers)
    assert deploy.total_params == googlenet_params(1000, aux=False) == 6_998_552
    assert deploy.output_blob == "loss3/classifier"

    val = analyze(load("googlenet"), stage="val", input_shape=(3, 224, 224), num_classes=1000)
    assert ("loss3/classifier", 5) in val.accuracy and ("loss1/classifier", 1) in val.accuracy
    assert len(val.loss_heads) == 3
    few = analyze(load("googlenet"), stage="val", input_shape=(3, 224, 224), num_classes=3)
    assert few.accuracy == [("loss1/classifier", 1), ("loss2/classifier", 1), ("loss3/classifier", 1)]  # as DIGITS


@pytest.mark.parametrize("name", ["lenet", "alexnet", "googlenet"])
def test_last_inner_products_take_the_class_count(name):
    shape = (1, 28, 28) if name == "lenet" else (3, 227, 227) if name == "alexnet" else (3, 224, 224)
    spec = analyze(load(name), stage="train", input_shape=shape, num_classes=7)
    for blob, _ in spec.loss_heads:
        assert spec.blob_shapes[blob] == (7,)
        (layer,) = [m for m in parse(load(name))["layer"] if m["top"] == [blob] and m["type"] == ["InnerProduct"]]
        assert "num_output" not in layer["inner_product_param"][0]  # left for DIGITS to fill in
