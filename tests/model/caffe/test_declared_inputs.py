"""Declared inputs drive shapes (an Input layer, net-level input_shape or input_dim), and Visualize takes an
explicit input and class count and never invents one."""

from __future__ import annotations

import pytest

from digits.model.caffe import NetworkError, analyze, analyze_for_display

# BVLC's AlexNet deploy.prototxt, head: legacy input_dim x4 (10 x 3 x 227 x 227).
ALEXNET_HEAD = """name: "AlexNet"
input: "data"
input_dim: 10
input_dim: 3
input_dim: 227
input_dim: 227
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 96 kernel_size: 11 stride: 4 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc8" type: "InnerProduct" bottom: "pool1" top: "fc8" inner_product_param { num_output: 1000 } }
layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
"""
CONV = (
    'layer { name: "c" type: "Convolution" bottom: "data" top: "c"'
    " convolution_param { num_output: 4 kernel_size: 3 } }\n"
)


def shapes(graph: dict) -> dict:
    return {node["name"]: node["output_shapes"] for node in graph["nodes"]}


def test_alexnet_deploy_input_dim_gives_caffes_55x55_not_the_default_62x62():
    graph = analyze_for_display(ALEXNET_HEAD, "deploy", None, 0, default_input=(3, 256, 256))
    assert "error" not in graph
    # (227 - 11) / 4 + 1 = 55; ceil((55 - 3) / 2) + 1 = 27.  From 256 it would be (256 - 11) // 4 + 1 = 62.
    assert shapes(graph)["conv1"] == {"conv1": [96, 55, 55]} and shapes(graph)["pool1"] == {"pool1": [96, 27, 27]}
    assert graph["input_shape"] == [3, 227, 227] and shapes(graph)["input"] == {"data": [3, 227, 227]}


def test_net_level_input_shape_and_an_input_layer_declare_the_same_way():
    by_shape = 'input: "data"\ninput_shape { dim: 1 dim: 2 dim: 9 dim: 7 }\n' + CONV
    by_layer = 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 5 dim: 2 dim: 9 dim: 7 } } }\n'
    for text in (by_shape, by_layer + CONV):
        spec = analyze(text, stage="deploy", input_shape=None, num_classes=0, default_input=(3, 256, 256))
        assert spec.input_shape == (2, 9, 7) and spec.layer("c").output_shapes == {"c": (4, 7, 5)}


def test_an_input_layer_with_several_tops_gives_each_its_shape():
    text = (
        'layer { name: "in" type: "Input" top: "data" top: "aux" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } '
        "shape { dim: 1 dim: 6 } } }\n"
        'layer { name: "ip" type: "InnerProduct" bottom: "aux" top: "ip" inner_product_param { num_output: 2 } }\n'
    )
    spec = analyze(text, stage="deploy", input_shape=None, num_classes=0)
    assert spec.layer("in").output_shapes == {"data": (3, 4, 4), "aux": (6,)}
    assert spec.layer("ip").param_count == 6 * 2 + 2


def test_the_given_input_wins_over_the_declared_one_and_the_declared_over_the_default():
    text = (
        'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 9 dim: 7 } } }\n' + CONV
    )
    given = analyze(text, stage="deploy", input_shape=(2, 5, 5), num_classes=0, default_input=(3, 256, 256))
    assert given.layer("c").output_shapes == {"c": (4, 3, 3)}
    undeclared = analyze(CONV, stage="deploy", input_shape=None, num_classes=0, default_input=(1, 6, 6))
    assert undeclared.layer("c").output_shapes == {"c": (4, 4, 4)}
    with pytest.raises(NetworkError, match="declares no input shape"):
        analyze(CONV, stage="deploy", input_shape=None, num_classes=0)


def test_input_layer_shape_count_must_fit_its_tops():
    text = 'layer { name: "in" type: "Input" top: "a" top: "b" top: "c"'
    text += " input_param { shape { dim: 1 } shape { dim: 2 } } }\n"
    with pytest.raises(NetworkError, match="1 shape or one per top"):
        analyze(text, stage="deploy", input_shape=None, num_classes=0)


# ---- the Visualize route -------------------------------------------------------------------------------------------

LENET_LIKE = (
    'layer { name: "d" type: "Data" top: "data" top: "label" include { stage: "train" } }\n'
    'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
    "  convolution_param { num_output: 4 kernel_size: 5 } }\n"
    'layer { name: "ip" type: "InnerProduct" bottom: "c" top: "ip" }\n'
    'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss"\n'
    '  exclude { stage: "deploy" } }\n'
    'layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" accuracy_param { top_k: 5 }\n'
    '  include { stage: "val" } }\n'
)


def post(client, text: str, **fields):
    return client.post("/models/visualize/json", data={"custom_network": text, "framework": "caffe", **fields})


def test_visualize_takes_an_explicit_input_and_class_count(client):
    r = post(
        client, LENET_LIKE, stage="train", input_channels="1", input_height="28", input_width="20", num_classes="7"
    )
    graph = r.get_json()
    assert r.status_code == 200 and "error" not in graph, graph
    assert shapes(graph)["c"] == {"c": [4, 24, 16]} and shapes(graph)["ip"] == {"ip": [7]}
    assert shapes(graph)["ip"] and graph["input_shape"] == [1, 28, 20]


def test_visualize_explicit_input_beats_what_the_network_declares(client):
    graph = post(client, ALEXNET_HEAD, input_channels="3", input_height="256", input_width="256").get_json()
    assert shapes(graph)["conv1"] == {"conv1": [96, 62, 62]}
    declared = post(client, ALEXNET_HEAD).get_json()
    assert shapes(declared)["conv1"] == {"conv1": [96, 55, 55]}


def test_visualize_without_a_class_count_says_it_is_needed_and_never_guesses(client):
    graph = post(client, LENET_LIKE, stage="val").get_json()
    assert graph["error"]["layer"] == "ip" and "number of classes" in graph["error"]["message"]
    assert shapes(graph)["c"] == {"c": [4, 252, 252]}  # the layers before it are drawn
    # A class count from the network itself: the top-5 accuracy on 3 outputs is Caffe's own error, not a guess.
    three = LENET_LIKE.replace('top: "ip" }', 'top: "ip" inner_product_param { num_output: 3 } }')
    refused = post(client, three, stage="val").get_json()
    assert refused["error"]["layer"] == "acc" and "top_k 5" in refused["error"]["message"]
    # With no accuracy, 3 outputs draw fine: nothing compares them with an invented 10 classes.
    fine = post(client, three, stage="train").get_json()
    assert "error" not in fine and shapes(fine)["ip"] == {"ip": [3]} and shapes(fine)["loss"] == {"loss": []}


@pytest.mark.parametrize(
    "fields, field, label",
    [
        ({"input_channels": "3", "input_height": "0", "input_width": "4"}, "input_height", "Input height"),
        ({"input_channels": "three", "input_height": "4", "input_width": "4"}, "input_channels", "Input channels"),
        ({"input_channels": "3", "input_width": "4"}, "input_height", "Input height"),
        ({"num_classes": "-2"}, "num_classes", "Number of classes"),
    ],
)
def test_visualize_names_a_bad_input_field_by_its_label(client, fields, field, label):
    r = post(client, CONV, **fields)
    body = r.get_json()
    assert r.status_code == 400 and field in body["errors"], body
    assert label in r.get_data(as_text=True)
