"""digits.model.caffe analysis: stage selection, errors that name the layer, shapes and line, display graphs."""

from __future__ import annotations

import json

import pytest

from digits.model.caffe import NetworkError, TextFormatError, analyze, analyze_for_display, network_graph
from digits.model.caffe.schema import SchemaError


def net(*layers: str, loss: str = "ip") -> str:
    """A small DIGITS-style network: data layers, the given layers, then a loss on blob `loss`."""
    head = (
        'name: "small"\n'
        'layer { name: "train-data" type: "Data" top: "data" top: "label" include { stage: "train" }\n'
        "  data_param { batch_size: 8 } }\n"
        'layer { name: "val-data" type: "Data" top: "data" top: "label" include { stage: "val" } }\n'
    )
    tail = (
        f'layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "{loss}" bottom: "label" top: "loss"\n'
        '  exclude { stage: "deploy" } }\n'
    )
    return head + "".join(line + "\n" for line in layers) + tail


def ip(bottom: str, name: str = "ip", extra: str = "") -> str:
    return f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" {extra} }}'


def conv(name: str, bottom: str, num: int, kernel: int, extra: str = "") -> str:
    return (
        f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
        f"convolution_param {{ num_output: {num} kernel_size: {kernel} {extra}}} }}"
    )


def fails(text: str, stage: str = "train", shape=(3, 8, 8), classes: int = 4) -> NetworkError:
    with pytest.raises(NetworkError) as info:
        analyze(text, stage=stage, input_shape=shape, num_classes=classes)
    return info.value


def test_syntax_error_names_line_and_column():
    with pytest.raises(TextFormatError) as info:
        analyze(net("layer { name: 'x' type: }"), stage="train", input_shape=(3, 8, 8), num_classes=2)
    assert (info.value.line, info.value.column) == (5, 25)


def test_unknown_layer_type_names_the_type_and_lists_supported():
    err = fails(net('layer { name: "odd" type: "Crazy" bottom: "data" top: "odd" }', ip("odd")))
    assert err.layer == "odd" and err.line == 5
    assert "unknown layer type 'Crazy'" in err.message and "Convolution" in err.message and "Pooling" in err.message


def test_missing_bottom_names_layer_and_blob():
    err = fails(net(ip("nowhere")))
    assert err.layer == "ip" and err.layer_type == "InnerProduct" and err.line == 5
    assert "'nowhere'" in err.message
    assert "layer 'ip' (InnerProduct)" in str(err) and "line 5" in str(err)


def test_kernel_larger_than_input_names_layer_and_shapes():
    layer = 'layer { name: "big" type: "Convolution" bottom: "data" top: "big"\n convolution_param { kernel_size: 7 } }'
    err = fails(net(layer.replace("{ kernel", "{ num_output: 2 kernel"), ip("big")), shape=(3, 5, 5))
    assert err.layer == "big" and "3x5x5" in err.message and "7" in err.message
    assert err.line == 6  # the kernel_size line


def test_pooling_larger_than_input():
    pool = 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 9 } }'
    err = fails(net(pool, ip("p")), shape=(3, 5, 5))
    assert err.layer == "p" and "3x5x5" in err.message


def test_concat_mismatch_names_layer_and_shapes():
    layers = [
        'layer { name: "a" type: "Pooling" bottom: "data" top: "a" pooling_param { kernel_size: 2 stride: 2 } }',
        'layer { name: "cat" type: "Concat" bottom: "a" bottom: "data" top: "cat" }',
        ip("cat"),
    ]
    err = fails(net(*layers))
    assert err.layer == "cat" and err.layer_type == "Concat"
    assert "3x4x4" in err.message and "3x8x8" in err.message


def test_eltwise_mismatch():
    layers = [
        conv("c", "data", 5, 1),
        'layer { name: "sum" type: "Eltwise" bottom: "c" bottom: "data" top: "sum" }',
        ip("sum"),
    ]
    err = fails(net(*layers))
    assert err.layer == "sum" and "5x8x8" in err.message and "3x8x8" in err.message


def test_concat_channels_add_up():
    layers = [
        conv("c", "data", 5, 1),
        'layer { name: "cat" type: "Concat" bottom: "c" bottom: "data" top: "cat" }',
        ip("cat"),
    ]
    spec = analyze(net(*layers), stage="train", input_shape=(3, 8, 8), num_classes=4)
    assert spec.layer("cat").output_shapes == {"cat": (8, 8, 8)}


def test_group_must_divide_channels():
    err = fails(net(conv("g", "data", 4, 1, "group: 2"), ip("g")))
    assert err.layer == "g" and "group" in err.message


def test_unset_num_output_elsewhere_is_an_error():
    err = fails(net(ip("data", "hidden"), ip("hidden")))
    assert err.layer == "hidden" and "num_output" in err.message


def test_num_output_is_filled_through_in_place_layers():
    layers = [ip("data"), 'layer { name: "drop" type: "Dropout" bottom: "ip" top: "ip" }']
    spec = analyze(net(*layers), stage="train", input_shape=(3, 8, 8), num_classes=6)
    assert spec.layer("ip").output_shapes == {"ip": (6,)}


def test_explicit_num_output_is_kept_but_must_cover_the_classes():
    spec = analyze(net(ip("data", extra="inner_product_param { num_output: 9 }")), stage="train",
                   input_shape=(3, 8, 8), num_classes=4)  # fmt: skip
    assert spec.blob_shapes["ip"] == (9,)
    err = fails(net(ip("data", extra="inner_product_param { num_output: 3 }")), classes=4)
    assert err.layer == "loss" and "3 outputs" in err.message and "4 classes" in err.message


def test_label_only_feeds_loss_and_accuracy():
    err = fails(net('layer { name: "bad" type: "ReLU" bottom: "label" top: "bad" }', ip("data")))
    assert err.layer == "bad" and "label" in err.message


def test_include_and_exclude_together_is_an_error():
    err = fails(net(ip("data", extra='include { stage: "train" } exclude { stage: "val" }')))
    assert err.layer == "ip" and "include or exclude" in err.message


def test_stage_rules_follow_caffe():
    sized = "inner_product_param { num_output: 2 }"
    rules = {
        "a": 'include { stage: "train" } include { stage: "val" }',  # either rule
        "b": "include { phase: TEST }",  # val and deploy run in Caffe's TEST phase
        "c": 'include { not_stage: "val" }',
        "d": 'exclude { stage: "train" }',
        "e": "include { min_level: 1 }",  # our nets run at level 0
        "f": 'include { stage: "train" stage: "val" }',  # needs both stages at once
    }
    text = net(*[ip("data", name, f"{rule} {sized}") for name, rule in rules.items()], ip("data"))
    picked = {}
    for stage in ("train", "val", "deploy"):
        spec = analyze(text, stage=stage, input_shape=(1, 2, 2), num_classes=2)
        picked[stage] = {layer.name for layer in spec.layers} & set(rules)
    assert picked == {"train": {"a", "c"}, "val": {"a", "b", "d"}, "deploy": {"b", "c", "d"}}


def test_train_stage_needs_a_loss():
    text = 'layer { name: "d" type: "Data" top: "data" top: "label" }\n'
    text += 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }'
    err = fails(text)
    assert "SoftmaxWithLoss" in err.message
    assert analyze(text, stage="deploy", input_shape=(1, 2, 2), num_classes=2).output_blob == "r"


def test_duplicate_layer_names_in_a_stage_are_allowed_as_in_caffe():
    text = net(ip("data", extra="inner_product_param { num_output: 6 }"), ip("ip"))
    spec = analyze(text, stage="train", input_shape=(3, 8, 8), num_classes=4)
    assert [(layer.name, layer.output_shapes["ip"]) for layer in spec.layers[1:3]] == [("ip", (6,)), ("ip", (4,))]


def test_param_specs_and_sharing():
    layers = [
        ip("data", "x1", 'param { name: "w" lr_mult: 0 } inner_product_param { num_output: 5 bias_term: false }'),
        ip("data", "x2", 'param { name: "w" } inner_product_param { num_output: 5 bias_term: false }'),
        'layer { name: "sum" type: "Eltwise" bottom: "x1" bottom: "x2" top: "sum"\n'
        "  eltwise_param { coeff: 1 coeff: -1 } }",
        ip("sum"),
    ]
    spec = analyze(net(*layers), stage="train", input_shape=(1, 2, 2), num_classes=3)
    assert spec.layer("x1").param_count == 20 and spec.layer("x2").param_count == 0  # shared blob counts once
    assert spec.layer("x1").lr_mults == [0.0]
    assert spec.total_params == 20 + 5 * 3 + 3
    too_many = ip("data", extra="param { } param { } param { } inner_product_param { num_output: 4 }")
    assert "3 param specs" in fails(net(too_many)).message


def test_schema_errors_surface_from_analyze():
    with pytest.raises(SchemaError) as info:
        analyze(net(ip("data", extra="inner_product_param { num_outputs: 3 }")), stage="train",
                input_shape=(3, 8, 8), num_classes=2)  # fmt: skip
    assert info.value.field == "num_outputs" and info.value.line == 5 and info.value.layer == "ip"


def test_analyze_for_display_marks_the_faulty_layer():
    layers = [
        conv("c", "data", 2, 3),
        'layer { name: "r" type: "ReLU" bottom: "c" top: "c" }',
        'layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { kernel_size: 9 } }',
        ip("p"),
    ]
    shown = analyze_for_display(net(*layers), "train", (3, 8, 8), 4)
    json.dumps(shown)
    assert shown["error"]["layer"] == "p" and shown["error"]["line"] == 7 and "2x6x6" in shown["error"]["message"]
    names = [node["name"] for node in shown["nodes"]]
    assert names == ["train-data", "c", "r", "p"]
    faulty = shown["nodes"][-1]
    assert faulty["error"] is True and faulty["type"] == "Pooling"
    assert shown["nodes"][1]["output_shapes"] == {"c": [2, 6, 6]}
    assert {"from": "c", "to": "r", "blob": "c"} in shown["edges"]
    assert {"from": "r", "to": "p", "blob": "c"} in shown["edges"]


def test_analyze_for_display_never_raises():
    syntax = analyze_for_display("layer {", "train", (3, 8, 8), 4)
    assert syntax["nodes"] == [] and syntax["error"]["line"] == 1 and syntax["error"]["column"] == 8
    unknown = analyze_for_display(net('layer { name: "x" type: "Nope" bottom: "data" top: "x" }'), "val", (3, 8, 8), 4)
    assert unknown["error"]["layer"] == "x" and unknown["nodes"][-1]["error"] is True
    weird = analyze_for_display(net(ip("data")), "nonsense-stage", (3, 8, 8), 4)
    assert "stage" in weird["error"]["message"]


def test_network_graph_of_a_good_network():
    spec = analyze(net(ip("data")), stage="deploy", input_shape=(3, 8, 8), num_classes=4)
    graph = network_graph(spec)
    json.dumps(graph)
    assert graph["nodes"][0] == {"name": "data", "type": "Input", "bottoms": [], "tops": ["data"],
                                 "output_shapes": {"data": [3, 8, 8]}, "param_count": 0, "line": None}  # fmt: skip
    assert graph["nodes"][1]["param_count"] == 3 * 8 * 8 * 4 + 4
    assert graph["edges"] == [{"from": "data", "to": "ip", "blob": "data"}]
    assert graph["total_params"] == spec.total_params
