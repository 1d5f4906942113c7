"""Old prototxt formats upgraded on load as Caffe's upgrade_proto.cpp does: V1 `layers` with enum types,
blobs_lr / weight_decay, data-layer transform fields; V0 `layers { layer { } }` with padding layers;
net-level inputs. The person is told (Visualize's "warnings")."""

from __future__ import annotations

import pytest

from digits.model.caffe import NetworkError, analyze, analyze_for_display
from digits.model.caffe.textformat import format_message, parse
from digits.model.caffe.upgrade import V0_NOTICE, V1_NOTICE, upgrade_net

# The head of BVLC's examples/mnist/lenet_train_test.prototxt as it was in V1 (2014).
V1_LENET = """name: "LeNet"
layers {
  name: "mnist"
  type: DATA
  top: "data"
  top: "label"
  data_param { source: "mnist_train_lmdb" backend: LMDB batch_size: 64 scale: 0.00390625 crop_size: 24 mirror: true }
  include: { phase: TRAIN }
}
layers {
  name: "conv1"
  type: CONVOLUTION
  bottom: "data"
  top: "conv1"
  blobs_lr: 1
  blobs_lr: 2
  weight_decay: 1
  weight_decay: 0
  convolution_param { num_output: 20 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } }
}
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool1" top: "ip1" param: "shared_w"
  inner_product_param { num_output: 10 } }
layers { name: "relu" type: RELU bottom: "ip1" top: "ip1" }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip1" bottom: "label" top: "loss" }
layers { name: "acc" type: ACCURACY bottom: "ip1" bottom: "label" top: "acc" include: { phase: TEST } }
"""


def test_v1_layers_become_layer_messages_as_caffe_upgrades_them():
    net = parse(V1_LENET)
    assert upgrade_net(net) == [V1_NOTICE]
    layers = net["layer"]
    assert "layers" not in net
    assert [layer["type"][0] for layer in layers] == [
        "Data", "Convolution", "Pooling", "InnerProduct", "ReLU", "SoftmaxWithLoss", "Accuracy",
    ]  # fmt: skip
    conv = layers[1]
    # blobs_lr / weight_decay pair up by position into param { lr_mult decay_mult }.
    assert [(p["lr_mult"][0], p["decay_mult"][0]) for p in conv["param"]] == [(1, 1), (2, 0)]
    assert layers[3]["param"][0]["name"] == ["shared_w"]  # V1's param: "name" names a shared blob
    # UpgradeNetDataTransformation: scale / crop_size / mirror leave data_param for transform_param.
    data = layers[0]
    assert data["transform_param"][0] == {"scale": [0.00390625], "crop_size": [24], "mirror": [True]}
    assert set(data["data_param"][0]) == {"source", "backend", "batch_size"}
    assert data["include"][0]["phase"] == ["TRAIN"] and layers[6]["include"][0]["phase"] == ["TEST"]
    assert "layer {" in format_message(net)


def test_a_v1_network_analyzes_and_trains_with_its_multipliers():
    spec = analyze(V1_LENET, stage="train", input_shape=(1, 28, 28), num_classes=10)
    assert spec.notices == [V1_NOTICE]
    assert spec.layer("conv1").lr_mults == [1.0, 2.0] and spec.layer("conv1").decay_mults == [1.0, 0.0]
    assert spec.layer("pool1").output_shapes == {"pool1": (20, 12, 12)}
    assert spec.transform["scale"] == 0.00390625 and spec.transform["crop_size"] == 24
    val = analyze(V1_LENET, stage="val", input_shape=(1, 28, 28), num_classes=10)
    assert [layer.name for layer in val.layers] == ["conv1", "pool1", "ip1", "relu", "loss", "acc"]


def test_visualize_shows_the_upgrade_notice(client):
    r = client.post("/models/visualize/json", data={"custom_network": V1_LENET, "stage": "train"})
    graph = r.get_json()
    assert r.status_code == 200 and "error" not in graph, graph
    assert graph["warnings"] == [V1_NOTICE] and "upgraded from V1 layer format" in graph["warnings"][0]
    errors = analyze_for_display(V1_LENET.replace("kernel_size: 5", "kernel_size: 50"), "train", (1, 28, 28), 10)
    assert errors["warnings"] == [V1_NOTICE] and errors["error"]["layer"] == "conv1"
    assert errors["error"]["line"] == 19  # the line of its kernel_size in the text as written (V1)


def test_v1_numeric_types_and_bad_types():
    net = parse(
        'layers { name: "c" type: 4 bottom: "data" top: "c" convolution_param { num_output: 1 kernel_size: 1 } }'
    )
    upgrade_net(net)
    assert net["layer"][0]["type"] == ["Convolution"]
    with pytest.raises(NetworkError, match="unknown V1 layer type"):
        upgrade_net(parse('layers { name: "x" type: WARP_DRIVE }'))
    with pytest.raises(NetworkError, match="mixes 'layers'"):
        upgrade_net(parse('layers { name: "x" type: RELU }\nlayer { name: "y" type: "ReLU" }'))


# Caffe's V0 format (2013), with a padding layer in front of a conv layer.
V0_NET = """name: "v0"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 10 input_dim: 10
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 8 kernelsize: 5 stride: 1 blobs_lr: 1 blobs_lr: 2
  weight_filler { type: "gaussian" std: 0.01 } } bottom: "pad1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 2 stride: 2 } bottom: "conv1" top: "pool1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 4 } bottom: "pool1" top: "fc" }
layers { layer { name: "prob" type: "softmax" } bottom: "fc" top: "prob" }
"""


def test_v0_networks_upgrade_with_their_padding_layers_folded():
    spec = analyze(V0_NET, stage="deploy", input_shape=None, num_classes=0)
    assert spec.notices == [V0_NOTICE]
    assert [layer.name for layer in spec.layers] == ["input", "conv1", "pool1", "fc", "prob"]
    # The padding layer's pad 2 moves into conv1: (10 + 4 - 5) + 1 = 10, then 2x2/2 pooling: 5.
    assert spec.layer("conv1").output_shapes == {"conv1": (8, 10, 10)} and spec.layer("conv1").config["pad"] == (2, 2)
    assert spec.layer("conv1").lr_mults == [1.0, 2.0] and spec.layer("conv1").fillers[0]["std"] == 0.01
    assert spec.layer("pool1").output_shapes == {"pool1": (8, 5, 5)} and spec.layer("fc").param_count == 8 * 25 * 4 + 4


def test_net_level_inputs_become_an_input_layer_first():
    net = parse('input: "a"\ninput: "b"\ninput_shape { dim: 2 dim: 3 }\ninput_shape { dim: 2 dim: 5 }\n'
                'layer { name: "c" type: "Concat" bottom: "a" bottom: "b" top: "c" }')  # fmt: skip
    upgrade_net(net)
    first = net["layer"][0]
    assert first["name"] == ["input"] and first["type"] == ["Input"] and first["top"] == ["a", "b"]
    assert [s["dim"] for s in first["input_param"][0]["shape"]] == [[2, 3], [2, 5]]
    assert "input" not in net and "input_shape" not in net
    with pytest.raises(NetworkError, match="4 values per input"):
        upgrade_net(parse('input: "a"\ninput_dim: 1\ninput_dim: 3'))
