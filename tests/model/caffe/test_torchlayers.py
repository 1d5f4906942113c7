"""digits.engine.caffe.layers: Caffe's arithmetic for pooling, LRN, BatchNorm and the other layers."""

from __future__ import annotations

import pytest
import torch

from digits.engine.caffe.layers import caffe_pool
from digits.engine.caffe.net import build_net
from digits.model.caffe import analyze


def one_layer(body: str, extra_layers: str = "") -> str:
    """A deploy-stage net: input "data" -> the layer "x" (top "x") -> optional extra layers."""
    return f'layer {{ name: "x" top: "x" bottom: "data" {body} }}\n{extra_layers}'


def run(body: str, x: torch.Tensor, *, train: bool = False, blob: str = "x") -> torch.Tensor:
    net = build_net(one_layer(body), input_shape=tuple(x.shape[1:]), num_classes=0, stage="deploy")
    net.train(train)
    return net.forward_blobs(x)[blob]


def test_max_pool_2x2_stride_2_on_7x7_is_4x4_like_caffe():
    x = torch.arange(49.0).view(1, 1, 7, 7)
    spec = analyze(one_layer('type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 2 }'),
                   stage="deploy", input_shape=(1, 7, 7), num_classes=0)  # fmt: skip
    assert spec.layer("x").output_shapes == {"x": (1, 4, 4)}
    y = run('type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 2 }', x)
    expected = torch.tensor([[8.0, 10, 12, 13], [22, 24, 26, 27], [36, 38, 40, 41], [43, 45, 47, 48]])
    assert torch.equal(y[0, 0], expected)  # the last row and column see a clipped 1-wide window


def test_ave_pool_with_pad_divides_like_caffe():
    # 3x3 input, kernel 2, stride 2, pad 1: Caffe gives 2x2 (ceil gives 3, but the last window would start
    # in the padding) and divides every window by 4, counting the padded positions.
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    y = run('type: "Pooling" pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 }', x)
    assert torch.allclose(y[0, 0], torch.tensor([[1 / 4, (2 + 3) / 4], [(4 + 7) / 4, (5 + 6 + 8 + 9) / 4]]))


def test_ave_pool_divisor_stops_at_the_padded_edge():
    # 4x4 ones, kernel 3, stride 2, pad 1 -> 3x3. The last window spans [3, 6) but Caffe clips its size
    # to the padded input [-1, 5): 2 rows, of which 1 is real.
    y = caffe_pool(torch.ones(1, 1, 4, 4), "AVE", (3, 3), (2, 2), (1, 1), ceil=True)
    expected = torch.tensor([[4 / 9, 6 / 9, 2 / 6], [6 / 9, 9 / 9, 3 / 6], [2 / 6, 3 / 6, 1 / 4]])
    assert torch.allclose(y[0, 0], expected)


def test_pooling_cases_pytorch_would_reject_or_size_differently():
    x = torch.randn(1, 2, 4, 4)
    # Caffe allows pad up to kernel - 1 (PyTorch only kernel / 2): 4 -> ceil(5/2)+1 = 4, clipped to 3.
    assert caffe_pool(x, "MAX", (3, 3), (2, 2), (2, 2), ceil=True).shape[-2:] == (3, 3)
    # stride > kernel without padding: Caffe keeps ceil's extra window, PyTorch drops it.
    assert caffe_pool(torch.randn(1, 1, 5, 5), "MAX", (1, 1), (3, 3), (0, 0), ceil=True).shape[-2:] == (3, 3)
    # round_mode FLOOR
    assert caffe_pool(torch.randn(1, 1, 7, 7), "MAX", (2, 2), (2, 2), (0, 0), ceil=False).shape[-2:] == (3, 3)


def test_global_pooling():
    x = torch.randn(2, 3, 5, 6)
    y = run('type: "Pooling" pooling_param { pool: AVE global_pooling: true }', x)
    assert torch.allclose(y, x.mean(dim=(2, 3), keepdim=True), atol=1e-6)


def test_max_pool_gradient_flows_only_to_real_inputs():
    x = torch.randn(1, 1, 5, 5, requires_grad=True)
    caffe_pool(x, "MAX", (3, 3), (2, 2), (1, 1), ceil=True).sum().backward()
    assert x.grad.sum() == 9  # 3x3 outputs, one winner each


def caffe_lrn_across(x, size, alpha, beta, k):
    out = torch.empty_like(x)
    half = (size - 1) // 2
    for c in range(x.shape[1]):
        lo, hi = max(0, c - half), min(x.shape[1], c + half + 1)
        scale = k + alpha / size * (x[:, lo:hi] ** 2).sum(dim=1)
        out[:, c] = x[:, c] * scale ** (-beta)
    return out


def test_lrn_across_channels_matches_caffe_formula():
    x = torch.randn(2, 7, 3, 3)
    y = run('type: "LRN" lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 k: 2 }', x)
    assert torch.allclose(y, caffe_lrn_across(x, 5, 0.5, 0.75, 2.0), atol=1e-6)


def test_lrn_within_channel_matches_caffe_formula():
    x = torch.randn(1, 2, 4, 4)
    y = run('type: "LRN" lrn_param { local_size: 3 alpha: 0.9 beta: 0.5 norm_region: WITHIN_CHANNEL k: 7 }', x)
    padded = torch.nn.functional.pad(x**2, (1, 1, 1, 1))
    sums = sum(padded[..., i : i + 4, j : j + 4] for i in range(3) for j in range(3))
    assert torch.allclose(y, x * (1 + 0.9 / 9 * sums) ** -0.5, atol=1e-6)  # Caffe ignores k here


def test_batch_norm_keeps_caffe_running_sums():
    body = 'type: "BatchNorm" batch_norm_param { moving_average_fraction: 0.5 eps: 0.001 }'
    net = build_net(one_layer(body), input_shape=(2, 3, 3), num_classes=0, stage="deploy").train()
    bn = net.layer("x")
    a, b = torch.randn(4, 2, 3, 3) * 3 + 1, torch.randn(4, 2, 3, 3)
    y = net.forward_blobs(a)["x"]
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)
    m = 4 * 3 * 3
    var_a = a.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), var_a / (var_a + 0.001), atol=1e-4)
    net.forward_blobs(b)
    assert torch.allclose(bn.scale_factor, torch.tensor([0.5 * 1 + 1]))
    assert torch.allclose(bn.mean, b.mean(dim=(0, 2, 3)) + 0.5 * a.mean(dim=(0, 2, 3)), atol=1e-5)
    unbiased = lambda t: t.var(dim=(0, 2, 3), unbiased=False) * m / (m - 1)  # noqa: E731
    assert torch.allclose(bn.variance, unbiased(b) + 0.5 * unbiased(a), atol=1e-4)
    net.eval()
    mean, var = bn.mean / 1.5, bn.variance / 1.5
    expected = (b - mean.view(1, 2, 1, 1)) / torch.sqrt(var.view(1, 2, 1, 1) + 0.001)
    assert torch.allclose(net.forward_blobs(b)["x"], expected, atol=1e-5)
    assert [t.shape for t in net.caffe_blobs("x")] == [(2,), (2,), (1,)]


def test_batch_norm_use_global_stats_overrides_the_mode():
    body = 'type: "BatchNorm" batch_norm_param { use_global_stats: true }'
    x = torch.randn(3, 2, 2, 2)
    # Caffe reads empty statistics (factor 0) as mean 0 and variance 0.
    assert torch.allclose(run(body, x, train=True), x / 1e-5**0.5)


def test_scale_prelu_power_eltwise_concat_flatten():
    x = torch.randn(2, 3, 2, 2)
    y = run('type: "Scale" scale_param { bias_term: true bias_filler { type: "constant" value: 0.5 } }', x)
    assert torch.allclose(y, x + 0.5)  # Caffe's default scale filler is constant 1
    y = run('type: "PReLU"', x)
    assert torch.allclose(y, torch.where(x > 0, x, 0.25 * x))
    y = run('type: "ReLU" relu_param { negative_slope: 0.1 }', x)
    assert torch.allclose(y, torch.where(x > 0, x, 0.1 * x))
    y = run('type: "Power" power_param { power: 2 scale: 3 shift: 1 }', x)
    assert torch.allclose(y, (1 + 3 * x) ** 2)
    y = run('type: "Flatten"', x)
    assert y.shape == (2, 12)
    extra = (
        'layer { name: "s" type: "Eltwise" bottom: "data" bottom: "x" top: "s" eltwise_param { coeff: 2 coeff: -1 } }\n'
        'layer { name: "p" type: "Eltwise" bottom: "data" bottom: "x" top: "p" eltwise_param { operation: PROD } }\n'
        'layer { name: "m" type: "Eltwise" bottom: "data" bottom: "x" top: "m" eltwise_param { operation: MAX } }\n'
        'layer { name: "c" type: "Concat" bottom: "data" bottom: "x" top: "c" }\n'
        'layer { name: "sp" type: "Split" bottom: "c" top: "c1" top: "c2" }\n'
    )
    text = one_layer('type: "TanH"', extra)
    blobs = build_net(text, input_shape=(3, 2, 2), num_classes=0, stage="deploy").forward_blobs(x)
    t = torch.tanh(x)
    assert torch.allclose(blobs["s"], 2 * x - t)
    assert torch.allclose(blobs["p"], x * t)
    assert torch.allclose(blobs["m"], torch.maximum(x, t))
    assert torch.equal(blobs["c"], torch.cat([x, t], dim=1)) and blobs["c"].shape == (2, 6, 2, 2)
    assert torch.equal(blobs["c1"], blobs["c2"])


def test_convolution_options_and_deconvolution():
    x = torch.randn(1, 4, 9, 9)
    body = (
        'type: "Convolution" convolution_param { num_output: 6 kernel_h: 3 kernel_w: 1 stride: 2 pad_h: 1 '
        'dilation: 2 group: 2 bias_term: false weight_filler { type: "gaussian" } }'
    )
    spec = analyze(one_layer(body), stage="deploy", input_shape=(4, 9, 9), num_classes=0)
    # h: (9 + 2 - 2*(3-1) - 1) / 2 + 1 = 4; w: (9 - 1) / 2 + 1 = 5
    assert spec.layer("x").output_shapes == {"x": (6, 4, 5)} and spec.layer("x").param_shapes == [(6, 2, 3, 1)]
    assert run(body, x).shape == (1, 6, 4, 5)
    deconv = 'type: "Deconvolution" convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 }'
    spec = analyze(one_layer(deconv), stage="deploy", input_shape=(4, 9, 9), num_classes=0)
    assert spec.layer("x").output_shapes == {"x": (3, 18, 18)} and spec.layer("x").param_shapes[0] == (4, 3, 4, 4)
    assert run(deconv, x).shape == (1, 3, 18, 18)


def test_inner_product_transpose_and_axis():
    x = torch.randn(2, 3, 4, 5)
    body = 'type: "InnerProduct" inner_product_param { num_output: 6 axis: 2 transpose: true }'
    spec = analyze(one_layer(body), stage="deploy", input_shape=(3, 4, 5), num_classes=0)
    assert spec.layer("x").output_shapes == {"x": (3, 6)} and spec.layer("x").param_shapes == [(20, 6), (6,)]
    assert run(body, x).shape == (2, 3, 6)


@pytest.mark.parametrize("kind", ["Softmax", "Sigmoid", "Dropout"])
def test_shape_preserving_layers(kind):
    x = torch.randn(2, 5)
    text = f'layer {{ name: "x" type: "{kind}" bottom: "data" top: "x" }}'
    net = build_net(text, input_shape=(5,), num_classes=0, stage="deploy")
    assert net.forward_blobs(x)["x"].shape == (2, 5)


def caffe_pool_reference(x: torch.Tensor, pool: str, k: int, s: int, p: int) -> torch.Tensor:
    """A line-by-line port of Caffe's PoolingLayer::Forward_cpu (square kernel, CEIL mode)."""
    from digits.model.caffe.shapes import pooled_size

    n, c, h, w = x.shape
    oh, ow = pooled_size(h, k, s, p, True, p > 0), pooled_size(w, k, s, p, True, p > 0)
    out = torch.empty(n, c, oh, ow)
    for ph in range(oh):
        for pw in range(ow):
            hstart, wstart = ph * s - p, pw * s - p
            if pool == "MAX":
                hend, wend = min(hstart + k, h), min(wstart + k, w)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                out[..., ph, pw] = x[..., hstart:hend, wstart:wend].amax(dim=(-2, -1))
            else:
                hend, wend = min(hstart + k, h + p), min(wstart + k, w + p)
                size = (hend - hstart) * (wend - wstart)
                hstart, wstart, hend, wend = max(hstart, 0), max(wstart, 0), min(hend, h), min(wend, w)
                out[..., ph, pw] = x[..., hstart:hend, wstart:wend].sum(dim=(-2, -1)) / size
    return out


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize(
    ("size", "k", "s", "p"), [(7, 2, 2, 0), (6, 3, 2, 1), (5, 3, 3, 2), (9, 5, 3, 0), (8, 3, 1, 1)]
)
def test_pooling_matches_a_port_of_caffe(pool, size, k, s, p):
    x = torch.randn(1, 2, size, size)
    got = caffe_pool(x, pool, (k, k), (s, s), (p, p), ceil=True)
    assert torch.allclose(got, caffe_pool_reference(x, pool, k, s, p), atol=1e-6)
