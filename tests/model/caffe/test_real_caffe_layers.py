"""Our shapes and PyTorch forwards of Crop, Slice, Reshape, Silence, DummyData, Embed, EuclideanLoss,
SigmoidCrossEntropyLoss and ContrastiveLoss, and our V1 upgrade, against real Caffe (pycaffe, built by
`make install`): same shapes, outputs within 1e-5. Skipped where real Caffe is not available."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digits.engine.caffe.layers import build_layer
from digits.engine.caffe.net import build_net  # noqa: F401 - registers the new layers' modules
from digits.model.caffe import analyze


def net_text(feeds: dict[str, tuple[int, ...]], body: str, bottoms: str, tops: str) -> str:
    top_list = " ".join(f'top: "{n}"' for n in feeds)
    dims = " ".join("shape { " + " ".join(f"dim: {d}" for d in s) + " }" for s in feeds.values())
    source = f'layer {{ name: "in" type: "Input" {top_list} input_param {{ {dims} }} }}\n' if feeds else ""
    b = " ".join(f'bottom: "{x}"' for x in bottoms.split())
    t = " ".join(f'top: "{x}"' for x in tops.split())
    return source + f'layer {{ name: "x" {b} {t} {body} }}\n'


RNG = np.random.default_rng(7)
CASES = {
    "crop": (
        {"a": (2, 3, 7, 9), "b": (2, 1, 4, 5)},
        'type: "Crop" crop_param { axis: 2 offset: 1 offset: 3 }',
        "a b",
        "x",
    ),
    "crop-one-offset": (
        {"a": (2, 3, 7, 9), "b": (2, 2, 4, 5)},
        'type: "Crop" crop_param { axis: 1 offset: 1 }',
        "a b",
        "x",
    ),
    "slice": ({"a": (2, 6, 3, 3)}, 'type: "Slice" slice_param { slice_point: 2 slice_point: 5 }', "a", "p q r"),
    "slice-width": ({"a": (2, 3, 2, 4)}, 'type: "Slice" slice_param { axis: -1 }', "a", "p q"),
    "reshape": ({"a": (2, 3, 4, 5)}, 'type: "Reshape" reshape_param { shape { dim: 0 dim: -1 dim: 5 } }', "a", "x"),
    "dummy": (
        {},
        'type: "DummyData" dummy_data_param { shape { dim: 2 dim: 3 } data_filler { type: "constant" value: 1.5 } }',
        "",
        "x",
    ),
    "embed": ({"a": (2, 4)}, 'type: "Embed" embed_param { num_output: 3 input_dim: 6 }', "a", "x"),
    "euclidean": ({"a": (3, 4), "b": (3, 4)}, 'type: "EuclideanLoss"', "a b", "x"),
    "sigmoid-ce": ({"a": (3, 4), "b": (3, 4)}, 'type: "SigmoidCrossEntropyLoss"', "a b", "x"),
    "sigmoid-ce-valid": (
        {"a": (3, 4), "b": (3, 4)},
        'type: "SigmoidCrossEntropyLoss" loss_param { ignore_label: 1 normalization: VALID }',
        "a b",
        "x",
    ),
    "contrastive": (
        {"a": (4, 3, 1, 1), "b": (4, 3, 1, 1), "c": (4, 1, 1, 1)},
        'type: "ContrastiveLoss" contrastive_loss_param { margin: 2 }',
        "a b c",
        "x",
    ),
    "contrastive-legacy": (
        {"a": (4, 3, 1, 1), "b": (4, 3, 1, 1), "c": (4, 1, 1, 1)},
        'type: "ContrastiveLoss" contrastive_loss_param { margin: 2 legacy_version: true }',
        "a b c",
        "x",
    ),
}


def feed(name: str, shape: tuple[int, ...], case: str) -> np.ndarray:
    if case == "embed":
        return RNG.integers(0, 6, size=shape).astype(np.float32)
    if case.startswith("sigmoid-ce") and name == "b" or case.startswith("contrastive") and name == "c":
        return RNG.integers(0, 2, size=shape).astype(np.float32)
    return RNG.normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("case", list(CASES))
def test_layer_matches_real_caffe(caffe, tmp_path, case):
    feeds, body, bottoms, tops = CASES[case]
    text = net_text(feeds, body, bottoms, tops)
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    real = caffe.Net(str(path), caffe.TEST)
    spec = analyze(text, stage="deploy", input_shape=None, num_classes=0)
    ours = build_layer(spec.layer("x"))
    for i, blob in enumerate(getattr(ours, "blob_names", ())):
        real.params["x"][i].data[...] = getattr(ours, blob).detach().numpy()
    arrays = {name: feed(name, shape, case) for name, shape in feeds.items()}
    for name, array in arrays.items():
        real.blobs[name].data[...] = array
    real.forward()
    outputs = ours(*[torch.from_numpy(arrays[b]) for b in bottoms.split()])
    for top, got in zip(tops.split(), outputs, strict=True):
        expected = real.blobs[top].data
        shape = spec.layer("x").output_shapes[top]
        assert expected.shape == (expected.shape[0], *shape) if shape else expected.shape == ()
        assert tuple(got.shape) == expected.shape
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_silence_builds_and_runs_in_both(caffe, tmp_path):
    text = net_text({"a": (2, 3)}, 'type: "Silence"', "a", "")
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    real = caffe.Net(str(path), caffe.TEST)
    real.forward()
    assert list(real.blobs) == ["a"]
    assert analyze(text, stage="deploy", input_shape=None, num_classes=0).layer("x").output_shapes == {}


V1_NET = """name: "v1"
input: "data"
input_dim: 2 input_dim: 3 input_dim: 17 input_dim: 13
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" blobs_lr: 1 blobs_lr: 2
  convolution_param { num_output: 5 kernel_size: 3 stride: 2 pad: 1 } }
layers { name: "pool" type: POOLING bottom: "conv" top: "pool" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layers { name: "slice" type: SLICE bottom: "pool" top: "s1" top: "s2" slice_param { slice_point: 2 } }
layers { name: "ip" type: INNER_PRODUCT bottom: "s2" top: "ip" inner_product_param { num_output: 4 } }
layers { name: "prob" type: SOFTMAX bottom: "ip" top: "prob" }
"""


def test_a_v1_network_has_the_shapes_caffe_gives_it(caffe, tmp_path):
    path = tmp_path / "v1.prototxt"
    path.write_text(V1_NET)
    real = caffe.Net(str(path), caffe.TEST)
    spec = analyze(V1_NET, stage="deploy", input_shape=None, num_classes=0)
    for blob, shape in spec.blob_shapes.items():
        assert real.blobs[blob].data.shape == (2, *shape), blob
    assert [real.params["conv"][i].data.shape for i in range(2)] == [(5, 3, 3, 3), (5,)]
    assert spec.layer("conv").param_shapes == [(5, 3, 3, 3), (5,)]
