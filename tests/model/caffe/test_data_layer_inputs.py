"""The input shape of a stage read from its data layer where Caffe's own rules fix it (ImageData), asked for by
name where only the data files know it (HDF5Data), and a refused layer named before any shape is asked for."""

from __future__ import annotations

import pytest

from digits.model.caffe import NetworkError, analyze
from digits.model.caffe.analysis import RefusedLayerError
from digits.model.caffe.graph import analyze_for_display

CONV = (
    'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
    "  convolution_param { num_output: 4 kernel_size: 3 } }\n"
)


def _image_data(params: str, transform: str = "") -> str:
    return (
        'layer { name: "d" type: "ImageData" top: "data" top: "label"\n'
        f'  image_data_param {{ source: "list.txt" batch_size: 2 {params} }}\n'
        f"  transform_param {{ {transform} }} }}\n" + CONV
    )


def test_image_data_is_new_height_by_new_width_in_colour_or_grey():
    colour = analyze(_image_data("new_height: 9 new_width: 7"), stage="val", input_shape=None, num_classes=0)
    assert colour.blob_shapes["data"] == (3, 9, 7)
    assert colour.blob_shapes["c"] == (4, 7, 5)
    assert colour.blob_shapes["label"] == ()
    grey = analyze(_image_data("new_height: 9 new_width: 7 is_color: false"), stage="val", input_shape=None,
                   num_classes=0)  # fmt: skip
    assert grey.blob_shapes["data"] == (1, 9, 7)


def test_image_data_crop_size_wins_over_the_resize():
    spec = analyze(_image_data("new_height: 256 new_width: 256", "crop_size: 20"), stage="val", input_shape=None,
                   num_classes=0)  # fmt: skip
    assert spec.blob_shapes["data"] == (3, 20, 20)


def test_image_data_without_sizes_takes_the_given_input_and_asks_for_one_otherwise():
    given = analyze(_image_data(""), stage="val", input_shape=(3, 8, 8), num_classes=0)
    assert given.blob_shapes["c"] == (4, 6, 6)
    with pytest.raises(NetworkError, match="declares no input shape"):
        analyze(_image_data(""), stage="val", input_shape=None, num_classes=0)


HDF5 = (
    'layer { name: "h5" type: "HDF5Data" top: "data" top: "label"\n'
    '  hdf5_data_param { source: "files.txt" batch_size: 10 } }\n'
    'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 } }\n'
)


def test_hdf5_data_asks_for_its_input_by_layer_name_and_uses_the_given_one():
    with pytest.raises(NetworkError, match="HDF5Data layer 'h5' takes its blobs' shapes from the HDF5 files"):
        analyze(HDF5, stage="train", input_shape=None, num_classes=0, trainable=False)
    spec = analyze(HDF5, stage="train", input_shape=(4,), num_classes=0, trainable=False)
    assert spec.blob_shapes["ip"] == (2,)
    assert not spec.notices


def test_hdf5_data_drawn_with_the_default_input_says_so():
    graph = analyze_for_display(HDF5, "deploy", None, 0, default_input=(3, 8, 8))
    assert "error" not in graph
    assert any("HDF5Data layer 'h5'" in n and "3x8x8" in n for n in graph["warnings"]), graph["warnings"]


def test_a_refused_data_layer_is_named_before_an_input_shape_is_asked_for():
    text = 'layer { name: "w" type: "WindowData" top: "data" top: "label" }\n' + CONV
    with pytest.raises(RefusedLayerError, match="WindowData reads image windows"):
        analyze(text, stage="train", input_shape=None, num_classes=0, trainable=False)
