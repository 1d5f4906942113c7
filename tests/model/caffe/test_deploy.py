"""digits.model.caffe.deploy: the downloadable deploy prototxt."""

from __future__ import annotations

import torch

from digits.engine.caffe.net import build_net
from digits.model.caffe import analyze, deploy_prototxt
from digits.model.caffe.textformat import parse
from tests.model.caffe.test_standard_networks import load


def test_lenet_deploy_prototxt_reparses_and_analyzes():
    text = deploy_prototxt(load("lenet"), input_shape=(1, 28, 28), num_classes=10)
    assert text.startswith("# ")
    net = parse(text)
    layers = net["layer"]
    assert layers[0]["type"] == ["Input"] and layers[0]["top"] == ["data"]
    assert layers[0]["input_param"][0]["shape"][0]["dim"] == [1, 1, 28, 28]
    assert all("include" not in layer and "exclude" not in layer for layer in layers)
    assert [layer["name"][0] for layer in layers][-1] == "softmax"
    assert not any(layer["type"][0] in ("Data", "SoftmaxWithLoss", "Accuracy") for layer in layers)
    ip2 = next(layer for layer in layers if layer["name"] == ["ip2"])
    assert ip2["inner_product_param"][0]["num_output"] == [10]

    spec = analyze(text, stage="deploy", input_shape=(1, 28, 28), num_classes=10)
    assert spec.layers[0].type == "Input" and spec.layers[-1].type == "Softmax"
    assert spec.output_blob == "ip2" and spec.total_params == 431_080
    # Every stage of a stage-free net is the same net.
    assert len(analyze(text, stage="val", input_shape=(1, 28, 28), num_classes=10).layers) == len(spec.layers)


def test_deploy_weights_match_the_original_deploy_stage():
    torch.manual_seed(0)
    original = build_net(load("lenet"), input_shape=(1, 28, 28), num_classes=10, stage="deploy")
    exported = build_net(
        deploy_prototxt(load("lenet"), input_shape=(1, 28, 28), num_classes=10),
        input_shape=(1, 28, 28),
        num_classes=10,
        stage="deploy",
    )
    exported.load_state_dict(original.state_dict())
    x = torch.rand(2, 1, 28, 28) * 255
    assert torch.allclose(exported.forward_blobs(x)["softmax"], original.forward_blobs(x)["softmax"])


def test_softmax_is_added_when_the_network_has_none():
    text = """
    name: "bare"
    layer { name: "d" type: "Data" top: "data" top: "label" include { stage: "train" } }
    layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" exclude { stage: "deploy" } }
    """
    out = deploy_prototxt(text, input_shape=(3, 4, 4), num_classes=5)
    spec = analyze(out, stage="deploy", input_shape=(3, 4, 4), num_classes=5)
    assert [layer.name for layer in spec.layers] == ["data", "fc", "softmax"]
    assert spec.layer("softmax").bottoms == ["fc"] and spec.layer("softmax").tops == ["softmax"]
    assert spec.blob_shapes["softmax"] == (5,)
