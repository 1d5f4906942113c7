"""Grad-CAM against maps computed by hand on tiny networks with known weights: the hooked layer, the ReLU of the
weighted sum, the upsampling to the input's size (where each cell of the layer looks) and the min-max scaling."""

import numpy as np
import pytest
import torch
from torch import nn

from digits.engine.inference.gradcam import grad_cam, layer_stride, min_max


class Head(nn.Module):
    """Global average of each channel, then a linear layer without bias: d score_c / d A_k = W[c, k] / (h * w)."""

    def __init__(self, weight: list[list[float]]):
        super().__init__()
        self.linear = nn.Linear(len(weight[0]), len(weight), bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor(weight))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.linear(a.mean(dim=(2, 3)))


def conv(weights: list, stride: int = 1) -> nn.Conv2d:
    w = torch.tensor(weights, dtype=torch.float32)
    layer = nn.Conv2d(w.shape[1], w.shape[0], kernel_size=tuple(w.shape[2:]), stride=stride, bias=False)
    with torch.no_grad():
        layer.weight.copy_(w)
    return layer


def image(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def test_strided_layer_relu_of_weighted_sum_bilinear_and_min_max():
    # Channel 0 averages each 2x2 block, channel 1 takes its top-left pixel.
    layer = conv([[[[0.25, 0.25], [0.25, 0.25]]], [[[1, 0], [0, 0]]]], stride=2)
    net = nn.Sequential(layer, Head([[1.0, -1.0], [2.0, 0.5]]))
    x = image([[4, 0, 0, 0], [0, 0, 0, 4], [2, 2, 0, 8], [2, 2, 0, 0]])
    # A0 (block means) = [[1, 1], [2, 2]], A1 (top-left pixels) = [[4, 0], [2, 0]].
    # Class 0: alpha = [1/4, -1/4]; ReLU(A0/4 - A1/4) = [[ReLU(-0.75), 0.25], [0, 0.5]] = [[0, 0.25], [0, 0.5]].
    # Cells 2 px apart centred at 0.5 and 2.5 (a plain half-pixel bilinear resize here), then scaled by 1 / 0.5.
    expected = [
        [0, 0.125, 0.375, 0.5],
        [0, 0.15625, 0.46875, 0.625],
        [0, 0.21875, 0.65625, 0.875],
        [0, 0.25, 0.75, 1],
    ]
    heat = grad_cam(net, x, 0, layer)
    assert heat.shape == (4, 4) and heat.dtype == np.float32
    np.testing.assert_allclose(heat, expected, atol=1e-6)
    # The same resize torch does (half-pixel centres), as a cross-check of the hand computation.
    plain = nn.functional.interpolate(torch.tensor([[[[0, 0.25], [0, 0.5]]]]), size=(4, 4), mode="bilinear")
    np.testing.assert_allclose(heat, plain[0, 0].numpy() / 0.5, atol=1e-6)


def test_an_unpadded_layer_is_placed_where_its_cells_look():
    # A 3x3 sum without padding: 4x4 -> 2x2, cell (i, j) looks at input pixels i..i+2, centred on i+1 (LeNet's
    # conv2 is the same story: its 8x8 grid looks at 6.5 .. 20.5 of 28).
    layer = conv([[[[1, 1, 1], [1, 1, 1], [1, 1, 1]]]])
    net = nn.Sequential(layer, Head([[1.0]]))
    x = image([[8, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    # A = [[8, 0], [0, 0]]; alpha = 1/4; ReLU -> [[2, 0], [0, 0]]. Cell centres at input 1 and 2: rows and columns
    # 0-1 take cell 0's value, 2-3 cell 1's. A plain resize would smear it: [[1, 0.75, 0.25, 0], ...].
    expected = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert layer_stride(net, x, layer, (2, 2)) == (1.0, 1.0)
    np.testing.assert_allclose(grad_cam(net, x, 0, layer), expected, atol=1e-6)


def test_the_layer_asked_for_is_the_one_hooked():
    # Two layers: the first doubles the image (a 1x1 conv), the second is the unpadded 3x3 sum above.
    first = conv([[[[2.0]]]])
    second = conv([[[[1, 1, 1], [1, 1, 1], [1, 1, 1]]]])
    net = nn.Sequential(first, nn.ReLU(inplace=True), second, Head([[1.0]]))
    x = image([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 4]])
    # Second layer: A = [[0, 0], [0, 72]] -> bottom-right quarter.
    np.testing.assert_allclose(grad_cam(net, x, 0, second), [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    # First layer: A1 = 2x is 8 at (3, 3) and 0 elsewhere. d score / d A1 passes the in-place ReLU only at (3, 3),
    # where one 3x3 window of four covers it: 1/4 there, 0 elsewhere, so alpha = (1/4) / 16 > 0 and
    # ReLU(alpha * A1) is non-zero at (3, 3) alone: 1 there after min-max (the ReLU changed a copy, not A1).
    heat = grad_cam(net, x, 0, first)
    expected = np.zeros((4, 4))
    expected[3, 3] = 1
    np.testing.assert_allclose(heat, expected, atol=1e-6)


def test_a_layer_with_no_evidence_is_all_zeros():
    layer = conv([[[[1.0]]]])
    net = nn.Sequential(layer, Head([[-1.0]]))  # every weight negative: ReLU leaves nothing
    heat = grad_cam(net, image([[1, 2], [3, 4]]), 0, layer)
    np.testing.assert_array_equal(heat, np.zeros((2, 2), dtype=np.float32))
    np.testing.assert_array_equal(min_max(torch.full((3, 3), 7.0)).numpy(), np.zeros((3, 3)))


def test_a_module_that_does_not_run_gives_none():
    layer, unused = conv([[[[1.0]]]]), conv([[[[1.0]]]])
    net = nn.Sequential(layer, Head([[1.0]]))
    assert grad_cam(net, image([[1, 2], [3, 4]]), 0, unused) is None


@pytest.mark.parametrize("size", [28, 33])
def test_lenet_shaped_stride_is_measured(size):
    # conv 5, pool 2 (rounding up, as Caffe), conv 5: the second conv's grid is 2 input pixels apart.
    c1, c2 = nn.Conv2d(1, 2, 5), nn.Conv2d(2, 2, 5)
    net = nn.Sequential(c1, nn.MaxPool2d(2, ceil_mode=True), c2, nn.Flatten())
    x = torch.rand(1, 1, size, size)
    out = net[:3](x).shape[2:]
    assert layer_stride(net, x, c2, tuple(out)) == (2.0, 2.0)
    assert layer_stride(net, x, c1, tuple(net[:1](x).shape[2:])) == (1.0, 1.0)
