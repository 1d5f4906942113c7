"""What Caffe accepts that DIGITS refused: two data layers in one stage (DIGITS' own segmentation example),
duplicate layer names, a per-pixel SoftmaxWithLoss; and the layer types still refused, with a 400 that says why."""

from __future__ import annotations

import pytest

from digits.model.caffe import NetworkError, analyze, analyze_for_display
from digits.model.caffe.analysis import REFUSED, RefusedLayerError

# The shape of DIGITS' examples/semantic-segmentation/fcn_alexnet.prototxt: images and labels from two Data
# layers, conv1 padded by 100, a 32x Deconvolution and a Crop back to the input's size.
SEGMENTATION = """name: "fcn"
layer { name: "data" type: "Data" top: "data" include { stage: "train" } data_param { batch_size: 1 } }
layer { name: "label" type: "Data" top: "label" include { stage: "train" } data_param { batch_size: 1 } }
layer { name: "data" type: "Data" top: "data" include { stage: "val" } data_param { batch_size: 1 } }
layer { name: "label" type: "Data" top: "label" include { stage: "val" } data_param { batch_size: 1 } }
layer { name: "shift" type: "Power" bottom: "data" top: "data_preprocessed" power_param { shift: -116.0 } }
layer { name: "conv1" type: "Convolution" bottom: "data_preprocessed" top: "conv1"
  convolution_param { num_output: 8 pad: 100 kernel_size: 11 stride: 4 } }
layer { name: "score_fr" type: "Convolution" bottom: "conv1" top: "score_fr"
  convolution_param { num_output: 21 kernel_size: 1 } }
layer { name: "upscore" type: "Deconvolution" bottom: "score_fr" top: "upscore"
  convolution_param { num_output: 21 bias_term: false kernel_size: 63 stride: 32 group: 21 } }
layer { name: "score" type: "Crop" bottom: "upscore" bottom: "data" top: "score" crop_param { axis: 2 offset: 18 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss"
  loss_param { ignore_label: 255 normalize: true } exclude { stage: "deploy" } }
layer { name: "prob" type: "Softmax" bottom: "score" top: "prob" include { stage: "deploy" } }
"""


def test_digits_segmentation_example_draws_with_caffes_shapes():
    graph = analyze_for_display(SEGMENTATION, "train", (3, 64, 48), 0)
    assert "error" not in graph, graph["error"]
    shapes = {n["name"]: n["output_shapes"] for n in graph["nodes"]}
    # conv1: (64 + 200 - 11) // 4 + 1 = 64, (48 + 200 - 11) // 4 + 1 = 60; upscore: 32 * (n - 1) + 63.
    assert shapes["conv1"] == {"conv1": [8, 64, 60]}
    assert shapes["upscore"] == {"upscore": [21, 32 * 63 + 63, 32 * 59 + 63]}
    assert shapes["score"] == {"score": [21, 64, 48]}  # cropped to the image at offset 18
    assert shapes["label"] == {"label": [1, 64, 48]} and shapes["loss"] == {"loss": []}
    assert any("second database" in w and "'label'" in w for w in graph["warnings"])
    # Two layers named "data" in the file, one per stage: each stage sees one, and the graph has no clash.
    assert [n["name"] for n in graph["nodes"]].count("data") == 1


def test_training_refuses_what_it_cannot_feed_and_says_so():
    with pytest.raises(NetworkError) as info:
        analyze(SEGMENTATION, stage="train", input_shape=(3, 64, 48), num_classes=21)
    assert info.value.layer == "label" and "second data layer" in info.value.message


def test_a_per_pixel_softmax_loss_needs_a_per_pixel_label():
    wrong = SEGMENTATION.replace('bottom: "score" bottom: "label"', 'bottom: "score" bottom: "conv1"')
    graph = analyze_for_display(wrong, "train", (3, 64, 48), 0)
    assert graph["error"]["layer"] == "loss" and "one value per prediction position" in graph["error"]["message"]


def test_duplicate_names_are_drawn_apart():
    text = (
        'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 } } }\n'
        'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "h" inner_product_param { num_output: 3 } }\n'
        'layer { name: "fc" type: "InnerProduct" bottom: "h" top: "out" inner_product_param { num_output: 2 } }\n'
    )
    graph = analyze_for_display(text, "deploy", None, 0)
    assert "error" not in graph
    assert [(n["name"], n.get("id")) for n in graph["nodes"]] == [("in", None), ("fc", None), ("fc", "fc#2")]
    assert {"from": "fc", "to": "fc#2", "blob": "h"} in graph["edges"]


@pytest.mark.parametrize(
    "kind, param, words",
    [
        ("Python", 'python_param { module: "my_layer" layer: "MyLayer" }', "never code"),
        ("WindowData", 'window_data_param { source: "windows.txt" batch_size: 128 }', "detection window file"),
    ],
)
def test_python_and_window_data_layers_get_a_400_that_says_why(client, kind, param, words):
    text = (
        'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
        f'layer {{ name: "odd" type: "{kind}" bottom: "data" top: "odd" {param} }}\n'
    )
    r = client.post("/models/visualize/json", data={"custom_network": text, "framework": "caffe"})
    body = r.get_json()
    assert r.status_code == 400, body
    assert body["error"]["layer"] == "odd" and body["error"]["refused"] is True and words in body["error"]["message"]
    assert body["error"]["message"] == REFUSED[kind] and body["error"]["line"] == 2
    with pytest.raises(RefusedLayerError):
        analyze(text, stage="deploy", input_shape=None, num_classes=0)
