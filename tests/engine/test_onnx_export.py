"""Every standard network, in each framework it is written for, exports to ONNX that onnxruntime runs to the
network's own logits (at any batch size); adaptive pools are exported as the fixed pools they amount to, without
touching the network that trains."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from digits.engine.export import export_deployable, onnx_path_for
from digits.engine.networks import build_network
from digits.model.standard import get_network, list_networks

SHAPES = {"lenet": (1, 28, 28), "alexnet": (3, 227, 227)}
CASES = [(n.name, framework) for n in list_networks() for framework in n.frameworks]


@pytest.mark.slow  # AlexNet and GoogLeNet at full size
@pytest.mark.parametrize("name, framework", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_standard_network_exports_to_onnx_that_computes_the_same(tmp_path, name, framework):
    shape = SHAPES.get(name, (3, 224, 224))
    net = build_network(get_network(name).text(framework), framework, input_shape=shape, num_classes=5)
    net.module.train()
    before = {k: v.clone() for k, v in net.module.state_dict().items()}
    kinds = [type(m).__name__ for m in net.module.modules()]
    ts = str(tmp_path / "deploy_epoch_1.ts")
    info = export_deployable(net, shape, ts, image_shape=shape, use_mean="image")
    assert info["onnx"]["outputs"] == ["logits", "prob"], info["onnx"]
    with open(tmp_path / "deploy_epoch_1.json") as fh:
        assert json.load(fh)["onnx"] == info["onnx"]
    # the network that trains keeps its layers and weights (only the exported copy has fixed pools)
    assert [type(m).__name__ for m in net.module.modules()] == kinds and net.module.training
    assert all(torch.equal(before[k], v) for k, v in net.module.state_dict().items())

    model = onnx.load(onnx_path_for(ts))
    assert {p.key: json.loads(p.value) for p in model.metadata_props} == {
        "input_shape": list(shape),
        "input_scale": net.input_scale,
        "crop_size": None,
        "mean": "image",
        "image_shape": list(shape),
        "framework": framework,
    }
    session = onnxruntime.InferenceSession(onnx_path_for(ts), providers=["CPUExecutionProvider"])
    net.module.eval()
    for batch in (1, 3):
        x = torch.rand((batch, *shape), generator=torch.Generator().manual_seed(batch)) * 255 - 128
        with torch.no_grad():
            expected = net.logits(x).numpy()
        logits, prob = session.run(None, {"data": x.numpy()})
        assert logits.shape == (batch, 5)
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))
        np.testing.assert_allclose(prob.sum(1), 1.0, rtol=1e-5)
        assert (prob.argmax(1) == expected.argmax(1)).all()


CEIL_POOLS = """
name: "CeilPools"
layer { name: "data" type: "Data" top: "data" top: "label" data_param { batch_size: 4 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 1 weight_filler { type: "xavier" } } }
layer { name: "max" type: "Pooling" bottom: "conv" top: "max" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "ave" type: "Pooling" bottom: "max" top: "ave" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "ave" top: "ip"
  inner_product_param { weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def test_caffe_ceil_mode_pools_keep_their_size_in_onnx(tmp_path):
    """Caffe rounds pooled sizes up: 14 -> 7 by a 3/2 window, 7 -> 4 by a 2/2 one, where the exporter's own
    integer division (truncating) gave 6 and 3 and the graph a wrong shape."""
    net = build_network(CEIL_POOLS, "caffe", input_shape=(1, 14, 14), num_classes=3)
    ts = str(tmp_path / "deploy_epoch_1.ts")
    export_deployable(net, (1, 14, 14), ts)
    session = onnxruntime.InferenceSession(onnx_path_for(ts), providers=["CPUExecutionProvider"])
    x = torch.rand((4, 1, 14, 14), generator=torch.Generator().manual_seed(0))
    net.module.eval()
    with torch.no_grad():
        expected = net.logits(x).numpy()
    logits, _ = session.run(None, {"data": x.numpy()})
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
