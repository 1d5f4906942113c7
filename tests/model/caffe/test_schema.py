"""digits.model.caffe.schema: validating parsed prototxt against our caffe.proto subset."""

from __future__ import annotations

import pytest

from digits.model.caffe.schema import MESSAGES, SchemaError, validate, value
from digits.model.caffe.textformat import Identifier, parse


def check(text: str) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        validate(parse(text))
    return info.value


def test_valid_network_is_accepted_and_values_converted():
    msg = parse(
        """
        name: "n"
        layer {
          name: "conv" type: "Convolution" bottom: "data" top: "conv"
          param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
          include { stage: "train" phase: 0 }
          convolution_param { num_output: 4 kernel_size: 3 pad: [1, 1] bias_term: 1 weight_filler { type: "xavier" } }
        }
        """
    )
    validate(msg)
    layer = msg["layer"][0]
    assert layer["param"][0]["lr_mult"] == [1.0] and isinstance(layer["param"][0]["lr_mult"][0], float)
    assert layer["include"][0]["phase"] == ["TRAIN"]  # enum numbers map to names, in caffe.proto order
    assert layer["convolution_param"][0]["bias_term"] == [True]


def test_unknown_field_names_field_path_and_line():
    text = 'name: "n"\nlayer {\n  name: "p"\n  type: "Pooling"\n'
    err = check(text + "  pooling_param {\n    pool: MAX\n    kernal_size: 2\n  }\n}")
    assert err.field == "kernal_size"
    assert err.path == "layer[0].pooling_param.kernal_size"
    assert err.layer == "p"
    assert (err.line, err.column) == (7, 5)
    assert "unknown field 'kernal_size'" in str(err) and "line 7" in str(err) and "layer 'p'" in str(err)


def test_unknown_top_level_field():
    err = check("name: 'n'\nsolver_type: SGD")
    assert err.field == "solver_type" and err.line == 2 and "NetParameter" in err.message


def test_bad_enum_value_lists_the_allowed_ones():
    err = check('layer {\n  name: "p"\n  pooling_param { pool: MEDIAN }\n}')
    assert err.field == "pool" and err.line == 3
    assert "MEDIAN" in err.message and "MAX, AVE, STOCHASTIC" in err.message


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ('convolution_param { num_output: "ten" }', "num_output", "expected an integer"),
        ("convolution_param { num_output: 2.5 }", "num_output", "expected an integer"),
        ("power_param { scale: true }", "scale", "expected a number"),
        ("relu_param { engine: 'CUDNN' }", "engine", "expected one of DEFAULT, CAFFE, CUDNN"),
        ("bottom: data", "bottom", "expected a quoted string"),
        ("dropout_param: 0.5", "dropout_param", "expected a message"),
        ("name { x: 1 }", "name", "not a message"),
        ("convolution_param { bias_term: 2 }", "bias_term", "expected true or false"),
    ],
)
def test_wrong_value_kind(body, field, expected):
    err = check(f"layer {{\n  {body}\n}}")
    assert err.field == field and err.line == 2
    assert expected in err.message


def test_repeated_value_for_non_repeated_field():
    err = check('layer {\n  name: "c"\n  convolution_param {\n    num_output: 1\n    num_output: 2\n  }\n}')
    assert err.field == "num_output" and err.line == 5
    assert "not repeated" in err.message


def test_old_v1_layers_are_rejected_with_upgrade_hint():
    err = check('name: "old"\nlayers { name: "conv" type: CONVOLUTION }')
    assert err.field == "layers" and err.line == 2
    assert "upgrade" in err.message


def test_defaults_are_caffes():
    pool = parse("pool: AVE")
    assert value(pool, "PoolingParameter", "pool") == "AVE"
    assert value(None, "PoolingParameter", "pool") == "MAX"
    assert value(None, "PoolingParameter", "stride") == 1
    assert value(None, "ConvolutionParameter", "bias_term") is True
    assert value(None, "LRNParameter", "beta") == 0.75
    assert value(None, "FillerParameter", "type") == "constant"
    assert value(None, "BatchNormParameter", "use_global_stats") is None


def test_schema_is_consistent():
    for name, fields in MESSAGES.items():
        for field_name, field in fields.items():
            assert field.kind in ("int", "float", "bool", "str", "enum", "message"), (name, field_name)
            if field.kind == "message":
                assert field.message in MESSAGES, (name, field_name)
            if field.kind == "enum":
                assert field.default in field.enum, (name, field_name)
                assert all(isinstance(v, str) for v in field.enum)


def test_identifier_values_compare_as_strings():
    assert Identifier("MAX") == "MAX"
