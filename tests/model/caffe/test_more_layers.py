"""The rest of BVLC Caffe 1.0's layers (AbsVal, ArgMax, BNLL, BatchReindex, Bias, ELU, Exp, Filter, HingeLoss,
Im2col, InfogainLoss, Log, MVN, MultinomialLogisticLoss, Parameter, Reduction, SPP, Threshold, Tile, LSTM, RNN)
against real Caffe (pycaffe, built by `make install`): our shapes are Caffe's, our PyTorch forward is within
1e-5 of Caffe's on the same inputs and weights, and so are the input and parameter gradients from Caffe's
backward for the same top diffs (and a recurrent layer's state carried to the next batch). Stochastic
pooling, which Caffe computes only on a GPU, is checked against its definition.

Where Caffe is missing the Caffe comparisons FAIL if the build was expected to work here
(digits.caffe_status.build_expected) and skip with the reason everywhere else. Every net built in this
process is one Caffe accepts (a failed Caffe CHECK would end the process).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digits.engine.caffe.layers import build_layer
from digits.engine.caffe.layers_more import stochastic_pool
from digits.engine.caffe.net import CaffeNet, build_net
from digits.formats.caffe_pb import BlobProto
from digits.model.caffe import NetworkError, analyze


def rng(case: str) -> np.random.Generator:
    return np.random.default_rng(sum(map(ord, case)))


def normal(shape, r):
    return np.asarray(r.normal(size=shape), dtype=np.float32)


def positive(shape, r):
    return r.uniform(0.5, 2.0, size=shape).astype(np.float32)


def labels(classes):
    return lambda shape, r: r.integers(0, classes, size=shape).astype(np.float32)


def probabilities(shape, r):
    x = np.exp(r.normal(size=shape))
    return (x / x.reshape(shape[0], -1).sum(1).reshape(shape[0], *[1] * (len(shape) - 1))).astype(np.float32)


def fixed(values):
    return lambda shape, r: np.asarray(values, dtype=np.float32).reshape(shape)


RECURRENT_FILLERS = (
    'weight_filler { type: "uniform" min: -0.6 max: 0.6 } bias_filler { type: "uniform" min: -0.3 max: 0.3 }'
)
# name: (inputs {blob: (full shape, generator)}, layer body, bottoms, tops, bottoms to differentiate)
IMG = (2, 3, 5, 4)
CASES = {
    "absval": ({"a": (IMG, normal)}, 'type: "AbsVal"', "a", "x", "a"),
    "bnll": ({"a": ((2, 3, 4), normal)}, 'type: "BNLL"', "a", "x", "a"),
    "elu": ({"a": (IMG, normal)}, 'type: "ELU" elu_param { alpha: 0.7 }', "a", "x", "a"),
    "exp": ({"a": (IMG, normal)}, 'type: "Exp"', "a", "x", "a"),
    "exp-base": ({"a": (IMG, normal)}, 'type: "Exp" exp_param { base: 2 scale: 0.5 shift: 0.3 }', "a", "x", "a"),
    "log": ({"a": (IMG, positive)}, 'type: "Log"', "a", "x", "a"),
    "log-base": ({"a": (IMG, positive)}, 'type: "Log" log_param { base: 10 scale: 2 shift: 3 }', "a", "x", "a"),
    "threshold": ({"a": (IMG, normal)}, 'type: "Threshold" threshold_param { threshold: 0.2 }', "a", "x", ""),
    "argmax": ({"a": (IMG, normal)}, 'type: "ArgMax" argmax_param { top_k: 3 }', "a", "x", ""),
    "argmax-val": ({"a": (IMG, normal)}, 'type: "ArgMax" argmax_param { top_k: 2 out_max_val: true }', "a", "x", ""),
    "argmax-axis": ({"a": (IMG, normal)}, 'type: "ArgMax" argmax_param { axis: 2 top_k: 2 }', "a", "x", ""),
    "argmax-axis-val": (
        {"a": (IMG, normal)},
        'type: "ArgMax" argmax_param { axis: -1 out_max_val: true }',
        "a",
        "x",
        "",
    ),
    "argmax-2d": (
        {"a": ((3, 6), fixed([[1, 4, 4, 0, 2, 4]] * 3))},
        'type: "ArgMax" argmax_param { top_k: 2 }',
        "a",
        "x",
        "",
    ),
    "batch-reindex": (
        {"a": ((3, 2, 4), normal), "p": ((5,), fixed([2, 0, 2, 1, 0]))},
        'type: "BatchReindex"',
        "a p",
        "x",
        "a",
    ),
    "bias": (
        {"a": (IMG, normal)},
        'type: "Bias" bias_param { num_axes: 2 filler { type: "gaussian" } }',
        "a",
        "x",
        "a",
    ),
    "bias-to-end": (
        {"a": (IMG, normal)},
        'type: "Bias" bias_param { axis: 2 num_axes: -1 filler { type: "uniform" } }',
        "a",
        "x",
        "a",
    ),
    "bias-input": (
        {"a": (IMG, normal), "b": ((2, 3), normal)},
        'type: "Bias" bias_param { axis: 0 }',
        "a b",
        "x",
        "a b",
    ),
    "filter": (
        {"a": ((4, 3), normal), "b": ((4, 2, 2), normal), "s": ((4, 1), fixed([1, 0, 2, 1]))},
        'type: "Filter"',
        "a b s",
        "x y",
        "a b",
    ),
    "hinge-l1": ({"a": ((4, 5), normal), "l": ((4,), labels(5))}, 'type: "HingeLoss"', "a l", "x", "a"),
    "hinge-l2": (
        {"a": ((4, 5), normal), "l": ((4,), labels(5))},
        'type: "HingeLoss" hinge_loss_param { norm: L2 }',
        "a l",
        "x",
        "a",
    ),
    "multinomial": (
        {"a": ((4, 5), probabilities), "l": ((4,), labels(5))},
        'type: "MultinomialLogisticLoss"',
        "a l",
        "x",
        "a",
    ),
    "infogain": (
        {"a": ((4, 5), probabilities), "l": ((4,), labels(5)), "h": ((1, 1, 5, 5), positive)},
        'type: "InfogainLoss"',
        "a l h",
        "x",
        "a",
    ),
    "mvn": ({"a": (IMG, normal)}, 'type: "MVN"', "a", "x", "a"),
    "mvn-across": ({"a": (IMG, normal)}, 'type: "MVN" mvn_param { across_channels: true }', "a", "x", "a"),
    "mvn-mean": ({"a": (IMG, normal)}, 'type: "MVN" mvn_param { normalize_variance: false }', "a", "x", "a"),
    "mvn-2d": ({"a": ((3, 7), normal)}, 'type: "MVN" mvn_param { across_channels: true }', "a", "x", "a"),
    "parameter": ({}, 'type: "Parameter" parameter_param { shape { dim: 2 dim: 3 dim: 4 } }', "", "x", ""),
    "reduction": ({"a": (IMG, normal)}, 'type: "Reduction"', "a", "x", "a"),
    "reduction-asum": (
        {"a": (IMG, normal)},
        'type: "Reduction" reduction_param { operation: ASUM axis: 1 }',
        "a",
        "x",
        "a",
    ),
    "reduction-sumsq": (
        {"a": (IMG, normal)},
        'type: "Reduction" reduction_param { operation: SUMSQ axis: 2 coeff: -1.5 }',
        "a",
        "x",
        "a",
    ),
    "reduction-mean": (
        {"a": (IMG, normal)},
        'type: "Reduction" reduction_param { operation: MEAN axis: -1 coeff: 0.5 }',
        "a",
        "x",
        "a",
    ),
    "spp": ({"a": ((2, 3, 9, 7), normal)}, 'type: "SPP" spp_param { pyramid_height: 3 }', "a", "x", "a"),
    "spp-ave": ({"a": ((2, 3, 9, 7), normal)}, 'type: "SPP" spp_param { pyramid_height: 2 pool: AVE }', "a", "x", "a"),
    "spp-one": ({"a": ((2, 3, 6, 5), normal)}, 'type: "SPP" spp_param { pyramid_height: 1 }', "a", "x", "a"),
    "tile": ({"a": (IMG, normal)}, 'type: "Tile" tile_param { tiles: 3 }', "a", "x", "a"),
    "tile-last": ({"a": (IMG, normal)}, 'type: "Tile" tile_param { axis: -1 tiles: 2 }', "a", "x", "a"),
    "im2col": (
        {"a": ((2, 3, 9, 7), normal)},
        'type: "Im2col" convolution_param { kernel_size: 3 pad: 1 stride: 2 }',
        "a",
        "x",
        "a",
    ),
    "im2col-dilated": (
        {"a": ((2, 2, 9, 8), normal)},
        'type: "Im2col" convolution_param { kernel_h: 2 kernel_w: 3 dilation: 2 stride: 1 }',
        "a",
        "x",
        "a",
    ),
    "lstm": (
        {"a": ((3, 2, 4), normal), "c": ((3, 2), fixed([[0, 0], [1, 1], [1, 0]]))},
        f'type: "LSTM" recurrent_param {{ num_output: 5 {RECURRENT_FILLERS} }}',
        "a c",
        "x",
        "a",
    ),
    "lstm-static": (
        {"a": ((4, 2, 2, 2), normal), "c": ((4, 2), fixed([[0, 0], [1, 1], [1, 1], [0, 1]])), "s": ((2, 3), normal)},
        f'type: "LSTM" recurrent_param {{ num_output: 3 {RECURRENT_FILLERS} }}',
        "a c s",
        "x",
        "a s",
    ),
    "lstm-unit": (
        {"p": ((1, 3, 2), normal), "g": ((1, 3, 8), normal), "c": ((1, 3), fixed([[1, 0, 1]]))},
        'type: "LSTMUnit"',
        "p g c",
        "x y",
        "p g",
    ),
    "rnn": (
        {"a": ((3, 2, 4), normal), "c": ((3, 2), fixed([[0, 0], [1, 1], [1, 0]]))},
        f'type: "RNN" recurrent_param {{ num_output: 5 {RECURRENT_FILLERS} }}',
        "a c",
        "x",
        "a",
    ),
    "rnn-static": (
        {"a": ((3, 2, 4), normal), "c": ((3, 2), fixed([[0, 0], [1, 1], [1, 1]])), "s": ((2, 2, 2), normal)},
        f'type: "RNN" recurrent_param {{ num_output: 4 {RECURRENT_FILLERS} }}',
        "a c s",
        "x",
        "a s",
    ),
}


def net_text(case: str) -> str:
    """The layer fed by an Input layer, except that each input to differentiate comes from a Parameter layer
    ("p_<name>"): Caffe back-propagates only into blobs that a layer with weights produced, and a Parameter
    layer's top shares its diff with its blob, which gives us the input's gradient to read."""
    feeds, body, bottoms, tops, grads = CASES[case]
    plain = {name: shape for name, (shape, _) in feeds.items() if name not in grads.split()}
    lines = []
    if plain:
        top_list = " ".join(f'top: "{n}"' for n in plain)
        dims = " ".join("shape { " + " ".join(f"dim: {d}" for d in shape) + " }" for shape in plain.values())
        lines.append(f'layer {{ name: "in" type: "Input" {top_list} input_param {{ {dims} }} }}')
    for name in grads.split():
        dims = " ".join(f"dim: {d}" for d in feeds[name][0])
        lines.append(
            f'layer {{ name: "p_{name}" type: "Parameter" top: "{name}" parameter_param {{ shape {{ {dims} }} }} }}'
        )
    b = " ".join(f'bottom: "{x}"' for x in bottoms.split())
    t = " ".join(f'top: "{x}"' for x in tops.split())
    # Caffe back-propagates into the bottoms marked here, from tops that count as a loss (weight 1).
    backward = ""
    if grads or case == "parameter":
        backward = " ".join(f"propagate_down: {str(x in grads.split()).lower()}" for x in bottoms.split())
        backward += " " + " ".join("loss_weight: 1" for _ in tops.split())
    lines.append(f'layer {{ name: "x" {b} {t} {body} {backward} }}')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", list(CASES))
def test_layer_matches_real_caffe(caffe, tmp_path, case):
    feeds, _, bottoms, tops, grads = CASES[case]
    text = net_text(case)
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    real = caffe.Net(str(path), caffe.TRAIN)
    spec = analyze(text, stage="train", input_shape=None, num_classes=0, trainable=False).layer("x")
    ours = build_layer(spec)
    r = rng(case)
    for i, blob in enumerate(ours.blob_names):
        param = getattr(ours, blob)
        if case == "parameter":
            with torch.no_grad():
                param.copy_(torch.from_numpy(normal(tuple(param.shape), r)))
        assert tuple(real.params["x"][i].data.shape) == tuple(param.shape)
        real.params["x"][i].data[...] = param.detach().numpy()
    arrays = {name: make(shape, r) for name, (shape, make) in feeds.items()}
    for name, array in arrays.items():
        blob = real.params[f"p_{name}"][0] if name in grads.split() else real.blobs[name]
        blob.data[...] = array
    real.forward()

    inputs = {name: torch.from_numpy(array).requires_grad_(name in grads.split()) for name, array in arrays.items()}
    outputs = ours(*[inputs[b] for b in bottoms.split()])
    diffs = []
    for top, got in zip(tops.split(), outputs, strict=True):
        expected = real.blobs[top].data
        shape = spec.output_shapes[top]
        assert expected.shape[1:] == shape if expected.ndim else shape == ()
        assert tuple(got.shape) == expected.shape
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
        diffs.append(normal(expected.shape, r))

    wrt = [inputs[b] for b in grads.split()] + [getattr(ours, blob) for blob in ours.blob_names]
    if not wrt:
        return
    for top, diff in zip(tops.split(), diffs, strict=True):
        real.blobs[top].diff[...] = diff
    real.backward()
    total = sum((got * torch.from_numpy(diff)).sum() for got, diff in zip(outputs, diffs, strict=True))
    ours_grads = torch.autograd.grad(total, wrt)
    expected = [real.params[f"p_{b}"][0].diff for b in grads.split()] + [p.diff for p in real.params.get("x", [])]
    assert len(expected) == len(ours_grads)
    for got, want in zip(ours_grads, expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_infogain_reads_its_matrix_from_a_binaryproto(caffe, tmp_path):
    r = rng("infogain-source")
    matrix = positive((5, 5), r)
    blob = BlobProto(num=1, channels=1, height=5, width=5)
    blob.data.extend(matrix.ravel().tolist())
    (tmp_path / "h.binaryproto").write_bytes(blob.SerializeToString())
    text = (
        'layer { name: "in" type: "Input" top: "l" input_param { shape { dim: 4 } } }\n'
        'layer { name: "p_a" type: "Parameter" top: "a" parameter_param { shape { dim: 4 dim: 5 } } }\n'
        'layer { name: "x" type: "InfogainLoss" bottom: "a" bottom: "l" top: "x" propagate_down: true '
        f'propagate_down: false infogain_loss_param {{ source: "{tmp_path / "h.binaryproto"}" }} }}\n'
    )
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    real = caffe.Net(str(path), caffe.TRAIN)
    prob, label = probabilities((4, 5), r), labels(5)((4,), r)
    real.params["p_a"][0].data[...] = prob
    real.blobs["l"].data[...] = label
    real.forward()
    real.blobs["x"].diff[...] = 0.7
    real.backward()
    ours = build_layer(analyze(text, stage="train", input_shape=None, num_classes=0, trainable=False).layer("x"))
    a = torch.from_numpy(prob).requires_grad_(True)
    (loss,) = ours(a, torch.from_numpy(label))
    np.testing.assert_allclose(loss.detach().numpy(), real.blobs["x"].data, rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(loss * 0.7, [a])
    np.testing.assert_allclose(grad.numpy(), real.params["p_a"][0].diff, rtol=1e-5, atol=1e-5)


def pool_net(pool: str, size=(7, 6), extra: str = "") -> str:
    return (
        f'layer {{ name: "in" type: "Input" top: "a" input_param {{ shape {{ dim: 2 dim: 3 dim: {size[0]} '
        f'dim: {size[1]} }} }} }}\nlayer {{ name: "x" type: "Pooling" bottom: "a" top: "x" '
        f"pooling_param {{ pool: {pool} kernel_size: 3 stride: 2 {extra} }} }}\n"
    )


def test_stochastic_pooling_has_caffes_shape_and_test_phase_average():
    # Caffe's output size (ceil: 7 -> 3, 6 -> 3 with kernel 3, stride 2), and in TEST the sum of squares over
    # the sum of each window (windows clipped to the input), as pooling_layer.cu's StoPoolForwardTest.
    spec = analyze(pool_net("STOCHASTIC"), stage="val", input_shape=None, num_classes=0, trainable=False)
    assert spec.layer("x").output_shapes["x"] == (3, 3, 3)
    net = build_net(pool_net("STOCHASTIC"), input_shape=(3, 7, 6), num_classes=0, stage="val")
    x = torch.rand(2, 3, 7, 6, dtype=torch.float64)
    got = net.forward_blobs(x)["x"]
    want = torch.empty(2, 3, 3, 3, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            window = x[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
            want[:, :, i, j] = (window * window).sum((2, 3)) / window.sum((2, 3))
    assert tuple(got.shape) == (2, 3, 3, 3)
    torch.testing.assert_close(got, want)


def test_stochastic_pooling_samples_a_window_value_by_its_weight_in_training():
    torch.manual_seed(3)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 1] = 1.0  # window (0, 0) holds one positive value: it is always the one drawn
    x[0, 0, 2:, 2:] = torch.tensor([[1.0, 3.0], [0.0, 0.0]])  # window (1, 1): 3 is drawn 3 times as often as 1
    x.requires_grad_(True)
    draws = []
    for _ in range(4000):
        y = stochastic_pool(x, (2, 2), (2, 2), (0, 0), True, train=True)
        draws.append(y.detach()[0, 0])
    draws = torch.stack(draws)
    assert (draws[:, 0, 0] == 1.0).all()
    assert set(draws[:, 1, 1].tolist()) == {1.0, 3.0}
    share = (draws[:, 1, 1] == 3.0).float().mean().item()
    assert 0.70 < share < 0.80  # expected 0.75; the binomial's standard deviation here is 0.007
    # The gradient reaches only the drawn input, as Caffe's StoPoolBackward routes it by the stored index.
    y = stochastic_pool(x, (2, 2), (2, 2), (0, 0), True, train=True)
    (grad,) = torch.autograd.grad(y.sum(), [x])
    assert grad.sum().item() == 4.0
    assert grad[0, 0, 0, 1] == 1.0
    picked = 1 if y[0, 0, 1, 1] == 1.0 else 0
    assert grad[0, 0, 2, 2] == (1.0 if picked else 0.0) and grad[0, 0, 2, 3] == (0.0 if picked else 1.0)


def test_a_stochastic_pooling_network_trains_a_step():
    conv = (
        'layer { name: "c" type: "Convolution" bottom: "a" top: "c" '
        'convolution_param { num_output: 4 kernel_size: 1 weight_filler { type: "xavier" } } }\n'
        'layer { name: "r" type: "ReLU" bottom: "c" top: "c" }\n'
    )
    first, pooling = pool_net("STOCHASTIC", (8, 8)).splitlines(keepends=True)
    text = first + conv + pooling.replace('bottom: "a"', 'bottom: "c"')
    net = CaffeNet(analyze(text, stage="train", input_shape=None, num_classes=0, trainable=False))
    assert net.training
    out = net.forward_blobs(torch.rand(2, 3, 8, 8))["x"]
    assert tuple(out.shape) == (2, 4, 4, 4)
    out.sum().backward()
    assert net.layer("c").weight.grad is not None and net.layer("c").weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("body", "shape", "message"),
    [
        ('type: "SPP" spp_param { pyramid_height: 3 }', (2, 3, 5, 5), "padding (2, 2) would reach the kernel (2, 2)"),
        ('type: "Tile" tile_param { axis: 0 tiles: 2 }', (2, 3), "axis 0 would tile the batch"),
        ('type: "Tile"', (2, 3), "tiles must be set"),
        ('type: "ArgMax" argmax_param { top_k: 7 }', (2, 3, 2), "top_k 7 is more than the 6 values per image"),
        ('type: "Exp" exp_param { base: -2 }', (2, 3), "base must be positive"),
        ('type: "SPP"', (2, 3, 5, 5), "pyramid_height must be set"),
        ('type: "Reduction" reduction_param { operation: 0 }', (2, 3), "expected one of SUM, ASUM, SUMSQ, MEAN"),
    ],
)
def test_settings_caffe_refuses_are_refused_with_the_reason(body, shape, message):
    text = net_text_for(shape, body)
    with pytest.raises(NetworkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        analyze(text, stage="deploy", input_shape=None, num_classes=0, trainable=False)


def net_text_for(shape, body):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (
        f'layer {{ name: "in" type: "Input" top: "a" input_param {{ shape {{ {dims} }} }} }}\n'
        f'layer {{ name: "x" bottom: "a" top: "x" {body} }}\n'
    )


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_recurrent_state_carries_over_to_the_next_batch_as_in_caffe(caffe, tmp_path, kind):
    # Caffe starts each forward pass from the state the last one ended with; cont 1 at t = 0 continues it.
    text = (
        'layer { name: "in" type: "Input" top: "a" top: "c" input_param { shape { dim: 3 dim: 2 dim: 4 } '
        "shape { dim: 3 dim: 2 } } }\n"
        f'layer {{ name: "x" type: "{kind}" bottom: "a" bottom: "c" top: "x" '
        f"recurrent_param {{ num_output: 5 {RECURRENT_FILLERS} }} }}\n"
    )
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    real = caffe.Net(str(path), caffe.TEST)
    ours = build_layer(analyze(text, stage="deploy", input_shape=None, num_classes=0).layer("x"))
    for i, blob in enumerate(ours.blob_names):
        real.params["x"][i].data[...] = getattr(ours, blob).detach().numpy()
    r = rng(f"state-{kind}")
    for cont in ([[0, 0], [1, 1], [1, 1]], [[1, 1], [1, 0], [1, 1]]):
        a, c = normal((3, 2, 4), r), np.asarray(cont, dtype=np.float32)
        real.blobs["a"].data[...] = a
        real.blobs["c"].data[...] = c
        real.forward()
        (got,) = ours(torch.from_numpy(a), torch.from_numpy(c))
        np.testing.assert_allclose(got.detach().numpy(), real.blobs["x"].data, rtol=1e-5, atol=1e-5)


def test_recurrent_settings_caffe_needs_are_checked():
    text = net_text_for((4, 2, 3), 'type: "LSTM" recurrent_param { num_output: 5 }').replace(
        'bottom: "a" top: "x"', 'bottom: "a" bottom: "a" top: "x"'
    )
    with pytest.raises(NetworkError, match="the sequence-continuation input must be T x 2"):
        analyze(text, stage="deploy", input_shape=None, num_classes=0, trainable=False)
    text = net_text_for((4, 2, 3), 'type: "RNN" recurrent_param { expose_hidden: true num_output: 2 }').replace(
        'bottom: "a" top: "x"', 'bottom: "a" bottom: "a" top: "x"'
    )
    with pytest.raises(NetworkError, match="expose_hidden"):
        analyze(text, stage="deploy", input_shape=None, num_classes=0, trainable=False)


def test_hdf5_output_is_refused_with_the_reason():
    text = net_text_for((2, 3), 'type: "HDF5Output" hdf5_output_param { file_name: "/tmp/out.h5" }').replace(
        'top: "x" ', ""
    )
    with pytest.raises(NetworkError, match="HDF5Output writes blobs to an HDF5 file named in the network") as caught:
        analyze(text, stage="deploy", input_shape=None, num_classes=0, trainable=False)
    assert type(caught.value).__name__ == "RefusedLayerError"
