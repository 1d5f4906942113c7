"""Crop, Slice, Reshape, Silence, DummyData and Embed; EuclideanLoss, SigmoidCrossEntropyLoss and
ContrastiveLoss: shapes by Caffe's rules (crop_layer.cpp, slice_layer.cpp, reshape_layer.cpp, ...) and the
PyTorch forward against values worked out by hand from Caffe's definitions."""

from __future__ import annotations

import math

import pytest
import torch

from digits.engine.caffe.layers import build_layer
from digits.engine.caffe.net import build_net
from digits.model.caffe import NetworkError, analyze


def inputs(*shapes: tuple[int, ...], names: str = "a b c") -> str:
    """An Input layer "in" with one top per shape (batch first), named a, b, c."""
    tops = " ".join(f'top: "{n}"' for n in names.split()[: len(shapes)])
    dims = " ".join("shape { " + " ".join(f"dim: {d}" for d in s) + " }" for s in shapes)
    return f'layer {{ name: "in" type: "Input" {tops} input_param {{ {dims} }} }}\n'


def layer(body: str, *bottoms: str, tops: str = "x") -> str:
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops.split())
    return f'layer {{ name: "x" {b} {t} {body} }}\n'


def spec_of(text: str):
    return analyze(text, stage="deploy", input_shape=None, num_classes=0)


def tops(text: str) -> dict:
    return spec_of(text).layer("x").output_shapes


def fails(text: str) -> str:
    with pytest.raises(NetworkError) as info:
        spec_of(text)
    return info.value.message


def module(text: str):
    return build_layer(spec_of(text).layer("x"))


# ---- Crop -----------------------------------------------------------------------------------------------------------


def test_crop_takes_the_reference_size_from_axis_2_at_the_offset():
    # FCN's score crop: upscore 21 x 130 x 110 cropped like the 3 x 100 x 80 data at offset 19.
    text = inputs((1, 21, 130, 110), (1, 3, 100, 80)) + layer(
        'type: "Crop" crop_param { axis: 2 offset: 19 }', "a", "b"
    )
    assert tops(text) == {"x": (21, 100, 80)}
    assert "out of bounds" in fails(text.replace("offset: 19", "offset: 31"))  # 130 - 31 = 99 < 100
    per_axis = inputs((1, 5, 6, 7), (1, 2, 3, 3)) + layer(
        'type: "Crop" crop_param { axis: 1 offset: 1 offset: 2 offset: 3 }', "a", "b"
    )
    assert tops(per_axis) == {"x": (2, 3, 3)}
    assert "one per axis" in fails(per_axis.replace("offset: 3 ", ""))
    assert "batch" in fails(per_axis.replace("axis: 1", "axis: 0"))


def test_crop_forward_copies_the_window():
    text = inputs((1, 1, 4, 5), (1, 1, 2, 3)) + layer('type: "Crop" crop_param { offset: 1 offset: 2 }', "a", "b")
    x = torch.arange(20.0).view(1, 1, 4, 5)
    (y,) = module(text)(x, torch.zeros(1, 1, 2, 3))
    assert y.tolist() == [[[[7.0, 8.0, 9.0], [12.0, 13.0, 14.0]]]]


# ---- Slice ----------------------------------------------------------------------------------------------------------


def test_slice_points_and_even_slices():
    three = inputs((1, 10, 4, 4)) + layer(
        'type: "Slice" slice_param { slice_point: 3 slice_point: 7 }', "a", tops="p q r"
    )
    assert tops(three) == {"p": (3, 4, 4), "q": (4, 4, 4), "r": (3, 4, 4)}
    even = inputs((1, 10, 4, 6)) + layer('type: "Slice" slice_param { axis: -1 }', "a", tops="p q")
    assert tops(even) == {"p": (10, 4, 3), "q": (10, 4, 3)}
    legacy = inputs((1, 10, 4, 4)) + layer('type: "Slice" slice_param { slice_dim: 1 }', "a", tops="p q")
    assert tops(legacy) == {"p": (5, 4, 4), "q": (5, 4, 4)}
    assert "evenly divide" in fails(inputs((1, 10, 4, 4)) + layer('type: "Slice"', "a", tops="p q r"))
    assert "2 slice points" in fails(three.replace("slice_point: 7 ", ""))
    assert "increase" in fails(three.replace("slice_point: 7", "slice_point: 2"))
    assert "batch" in fails(inputs((4, 10)) + layer('type: "Slice" slice_param { axis: 0 }', "a", tops="p q"))


def test_slice_forward_splits_the_channels():
    text = inputs((1, 6, 1, 1)) + layer(
        'type: "Slice" slice_param { slice_point: 1 slice_point: 4 }', "a", tops="p q r"
    )
    parts = module(text)(torch.arange(6.0).view(1, 6, 1, 1))
    assert [p.flatten().tolist() for p in parts] == [[0.0], [1.0, 2.0, 3.0], [4.0, 5.0]]


# ---- Reshape --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "param, shape",
    [
        ("shape { dim: 0 dim: -1 }", (24,)),
        ("shape { dim: 0 dim: 6 dim: -1 }", (6, 4)),
        ("axis: 1 num_axes: 1 shape { dim: 1 dim: 2 }", (1, 2, 3, 4)),
        ("axis: -2 num_axes: 1 shape { dim: 2 dim: 2 }", (2, 3, 2, 2)),  # start = 4 - 2 + 1: the last axis
        ("axis: -1 num_axes: 0 shape { dim: 1 dim: 1 }", (2, 3, 4, 1, 1)),  # appended after the last axis
        ("shape { dim: -1 dim: 4 }", None),  # N x 24 -> 6N x 4 folds the batch in
        ("axis: -1 shape { dim: 2 dim: 2 }", None),  # appends 2 x 2 and so changes the count
    ],
)
def test_reshape_follows_caffes_rules(param, shape):
    text = inputs((5, 2, 3, 4)) + layer(f'type: "Reshape" reshape_param {{ {param} }}', "a")
    if shape is None:
        assert "batch axis" in fails(text) or "must match the input count" in fails(text)
    else:
        assert tops(text) == {"x": shape}


def test_reshape_refusals():
    base = inputs((5, 2, 3, 4))
    assert "batch axis" in fails(base + layer('type: "Reshape" reshape_param { shape { dim: 1 dim: -1 } }', "a"))
    assert "divisible" in fails(base + layer('type: "Reshape" reshape_param { shape { dim: 0 dim: 5 dim: -1 } }', "a"))
    assert "one -1" in fails(base + layer('type: "Reshape" reshape_param { shape { dim: -1 dim: -1 } }', "a"))


def test_reshape_forward_keeps_the_order():
    text = inputs((2, 2, 3)) + layer('type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } }', "a")
    x = torch.arange(12.0).view(2, 2, 3)
    (y,) = module(text)(x)
    assert y.shape == (2, 6) and y.tolist() == [list(range(6)), list(range(6, 12))]


# ---- Silence, DummyData, Embed --------------------------------------------------------------------------------------


def test_silence_has_no_tops_and_the_net_runs_it():
    text = inputs((1, 3)) + layer('type: "Silence"', "a", tops="")
    spec = spec_of(text)
    assert spec.layer("x").output_shapes == {} and module(text)(torch.ones(1, 3)) == ()
    net = build_net(text, input_shape=None, num_classes=0, stage="deploy")
    assert set(net.forward_blobs(torch.ones(1, 3))) == {"a"}


def test_dummy_data_shapes_and_constant_fill():
    param = 'dummy_data_param { shape { dim: 2 dim: 3 } data_filler { type: "constant" value: 2.5 } }'
    text = layer(f'type: "DummyData" {param}', tops="x y")
    assert tops(text) == {"x": (3,), "y": (3,)}
    x, y = module(text)()
    assert x.shape == (2, 3) and x.tolist() == [[2.5] * 3] * 2 and torch.equal(x, y)
    legacy = layer('type: "DummyData" dummy_data_param { num: 4 channels: 2 height: 3 width: 5 }')
    assert tops(legacy) == {"x": (2, 3, 5)} and module(legacy)()[0].abs().sum() == 0  # Caffe's default: constant 0
    gauss = layer('type: "DummyData" dummy_data_param { shape { dim: 2000 } data_filler { type: "gaussian" std: 2 } }')
    first, second = module(gauss)()[0], module(gauss)()[0]
    assert not torch.equal(first, second) and 1.8 < first.std() < 2.2  # refilled each pass, like Caffe
    assert "1 shape or one per top" in fails(
        layer('type: "DummyData" dummy_data_param { shape { dim: 1 } shape { dim: 2 } }', tops="p q r")
    )


def test_embed_looks_up_rows_and_adds_the_bias():
    text = inputs((2, 2)) + layer('type: "Embed" embed_param { num_output: 2 input_dim: 3 }', "a")
    spec = spec_of(text)
    assert spec.layer("x").output_shapes == {"x": (2, 2)} and spec.layer("x").param_count == 3 * 2 + 2
    embed = module(text)
    with torch.no_grad():
        embed.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
        embed.bias.copy_(torch.tensor([10.0, 20.0]))
    (y,) = embed(torch.tensor([[2.0, 0.0]]))
    assert y.tolist() == [[[15.0, 26.0], [11.0, 22.0]]]
    with pytest.raises(ValueError, match="0 to 2"):
        embed(torch.tensor([[3.0, 0.0]]))


# ---- losses ---------------------------------------------------------------------------------------------------------


def test_euclidean_loss_is_half_the_squared_distance_per_image():
    text = inputs((2, 2), (2, 2)) + layer('type: "EuclideanLoss"', "a", "b")
    assert tops(text) == {"x": ()}
    (loss,) = module(text)(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 2.0], [1.0, 1.0]]))
    assert loss.item() == pytest.approx((1 + 0 + 4 + 9) / 2 / 2)
    assert "same count" in fails(inputs((2, 2), (2, 3)) + layer('type: "EuclideanLoss"', "a", "b"))


@pytest.mark.parametrize(
    "shape, loss_param, expected",
    [
        ((1, 2), "", math.log(2) + math.log(1 + math.e**2)),  # divided by the batch: N = 1
        ((2, 1), "", (math.log(2) + math.log(1 + math.e**2)) / 2),  # N = 2
        # The Caffe we build reads no loss_param here: ignore_label and normalization change nothing.
        ((2, 1), "loss_param { ignore_label: 0 normalization: VALID }", (math.log(2) + math.log(1 + math.e**2)) / 2),
    ],
)
def test_sigmoid_cross_entropy_loss(shape, loss_param, expected):
    # x = (0, 2), targets (1, 0): -log(sigmoid(0)) = log 2 and -log(1 - sigmoid(2)) = log(1 + e^2).
    text = inputs(shape, shape) + layer(f'type: "SigmoidCrossEntropyLoss" {loss_param}', "a", "b")
    (loss,) = module(text)(torch.tensor([0.0, 2.0]).view(shape), torch.tensor([1.0, 0.0]).view(shape))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_sigmoid_cross_entropy_is_stable_for_large_inputs():
    text = inputs((1, 2), (1, 2)) + layer('type: "SigmoidCrossEntropyLoss"', "a", "b")
    (loss,) = module(text)(torch.tensor([[80.0, -80.0]]), torch.tensor([[0.0, 1.0]]))
    assert loss.item() == pytest.approx(160.0, rel=1e-6)


@pytest.mark.parametrize("legacy, expected", [("false", (25 + 0.25) / 2 / 2), ("true", (25 + 0.75) / 2 / 2)])
def test_contrastive_loss(legacy, expected):
    # Pair 0 similar at distance 5 (d^2 = 25); pair 1 dissimilar at distance 0.5 with margin 1:
    # (1 - 0.5)^2 = 0.25, or in the legacy form 1 - 0.5^2 = 0.75.
    text = inputs((2, 2, 1, 1), (2, 2, 1, 1), (2, 1, 1, 1)) + layer(
        f'type: "ContrastiveLoss" contrastive_loss_param {{ margin: 1 legacy_version: {legacy} }}', "a", "b", "c"
    )
    assert tops(text) == {"x": ()}
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1)
    b = torch.tensor([[3.0, 4.0], [1.0, 1.5]]).view(2, 2, 1, 1)
    (loss,) = module(text)(a, b, torch.tensor([1.0, 0.0]).view(2, 1, 1, 1))
    assert loss.item() == pytest.approx(expected)
    assert "one similarity label" in fails(
        text.replace("shape { dim: 2 dim: 1 dim: 1 dim: 1 }", "shape { dim: 2 dim: 2 }")
    )
