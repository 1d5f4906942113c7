"""digits.engine.caffe.fillers: Caffe's filler definitions, including how Caffe counts fan-in and fan-out."""

from __future__ import annotations

import math

import pytest
import torch

from digits.engine.caffe.fillers import fans, fill_
from digits.engine.caffe.net import build_net
from digits.model.caffe.shapes import filler
from digits.model.caffe.textformat import parse


def make(text: str) -> dict:
    """A FillerParameter dict with Caffe's defaults, from prototxt text."""
    return filler(parse(text))


def test_fans_follow_caffe_blob_shapes():
    assert fans((64, 16, 3, 3)) == (144, 576)  # conv: in/group * kh * kw, out * kh * kw
    assert fans((10, 500)) == (500, 10)  # inner product
    assert fans((7,)) == (1, 7)  # bias


@pytest.mark.parametrize(
    ("norm", "n"), [("", 144), ("variance_norm: FAN_IN", 144), ("variance_norm: FAN_OUT", 576),
                    ("variance_norm: AVERAGE", 360)]
)  # fmt: skip
def test_xavier_is_uniform_within_sqrt_3_over_n(norm, n):
    torch.manual_seed(0)
    w = fill_(torch.empty(64, 16, 3, 3), make(f'type: "xavier" {norm}'))
    bound = math.sqrt(3.0 / n)
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(w.mean().item()) < 0.02 * bound


def test_msra_is_gaussian_with_std_sqrt_2_over_n():
    torch.manual_seed(0)
    w = fill_(torch.empty(256, 128, 3, 3), make('type: "msra"'))
    assert abs(w.std().item() - math.sqrt(2.0 / (128 * 9))) < 0.01 * math.sqrt(2.0 / (128 * 9))
    w = fill_(torch.empty(256, 128, 3, 3), make('type: "msra" variance_norm: FAN_OUT'))
    assert abs(w.std().item() - math.sqrt(2.0 / (256 * 9))) < 0.01 * math.sqrt(2.0 / (256 * 9))


def test_gaussian_uniform_constant():
    torch.manual_seed(0)
    w = fill_(torch.empty(500, 400), make('type: "gaussian" mean: 0.5 std: 0.01'))
    assert abs(w.mean().item() - 0.5) < 1e-3 and abs(w.std().item() - 0.01) < 1e-3
    w = fill_(torch.empty(500, 400), make('type: "uniform" min: -2 max: 3'))
    assert w.min() >= -2 and w.max() <= 3 and abs(w.mean().item() - 0.5) < 0.02
    assert torch.equal(fill_(torch.empty(5), make('type: "constant" value: 0.2')), torch.full((5,), 0.2))
    assert torch.equal(fill_(torch.ones(5), make("")), torch.zeros(5))  # Caffe's default filler: constant 0


def test_sparse_gaussian_keeps_about_sparse_over_outputs():
    torch.manual_seed(0)
    w = fill_(torch.empty(100, 2000), make('type: "gaussian" sparse: 25'))
    assert abs((w != 0).float().mean().item() - 0.25) < 0.01


def test_positive_unitball_and_bilinear():
    torch.manual_seed(0)
    w = fill_(torch.empty(4, 3, 2, 2), make('type: "positive_unitball"'))
    assert (w >= 0).all() and torch.allclose(w.view(4, -1).sum(dim=1), torch.ones(4))
    k = fill_(torch.empty(2, 1, 4, 4), make('type: "bilinear"'))
    ramp = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.allclose(k[1, 0], ramp[:, None] * ramp[None, :])


def test_network_fillers_use_group_fan_in_and_defaults():
    text = """
    layer { name: "c" type: "Convolution" bottom: "data" top: "c"
      convolution_param { num_output: 64 kernel_size: 3 group: 4 weight_filler { type: "xavier" }
                          bias_filler { type: "constant" value: 0.3 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "c" top: "ip" inner_product_param { num_output: 4 } }
    """
    torch.manual_seed(0)
    net = build_net(text, input_shape=(32, 5, 5), num_classes=4, stage="deploy")
    w = net.layer("c").weight
    bound = math.sqrt(3.0 / (32 // 4 * 9))
    assert w.shape == (64, 8, 3, 3) and w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert torch.equal(net.layer("c").bias, torch.full((64,), 0.3))
    assert not net.layer("ip").weight.any()  # no filler given: Caffe fills with 0
