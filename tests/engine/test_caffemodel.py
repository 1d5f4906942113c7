""".caffemodel in and out (digits/formats/caffemodel.py, digits/engine/caffe/caffemodel.py): a write then a read
gives the very same tensors; real Caffe (pycaffe as `make install` builds it) loads what we write and we load
what it writes, outputs within 1e-5 on the same input; V1 files with legacy 4-D blobs and double data; the
report of loaded, missing and unmatched layers; shape mismatches refused by layer name with both shapes.

Where real Caffe is missing the tests that need it FAIL if the build was expected to work here
(digits.caffe_status.build_expected) and skip with the recorded reason everywhere else.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digits.engine.caffe.caffemodel import (
    CaffemodelMismatch,
    image_layers,
    load_caffemodel,
    net_layers,
    reverse_image_channels,
    save_caffemodel,
    snapshot_to_caffemodel,
)
from digits.engine.caffe.net import build_net
from digits.formats.caffemodel import CaffemodelError, parse_caffemodel, read_caffemodel
from digits.model.caffe import deploy_prototxt
from digits.model.standard import get_network
from tests.engine.test_real_caffe import LENET_DEPLOY

# BatchNorm + Scale after a grouped convolution, a depthwise one, PReLU, and an InnerProduct without bias.
BN_NET = """
name: "bn-net"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 3 dim: 4 dim: 10 dim: 9 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2 weight_filler { type: "xavier" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "prelu1" type: "PReLU" bottom: "conv1" top: "conv1" }
layer { name: "dw" type: "Convolution" bottom: "conv1" top: "dw"
  convolution_param { num_output: 6 kernel_size: 3 stride: 2 group: 6 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu" type: "ReLU" bottom: "dw" top: "dw" }
layer { name: "fc" type: "InnerProduct" bottom: "dw" top: "fc"
  inner_product_param { num_output: 5 bias_term: false weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
# Grouped Deconvolution (weights C_in x C_out/group x kh x kw), a learned Bias, InnerProduct with transpose
# (weights in x out), and two convolutions sharing one named weight blob.
MORE_NET = """
name: "more"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 5 dim: 5 } } }
layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
  convolution_param { num_output: 6 kernel_size: 3 stride: 2 group: 2 weight_filler { type: "xavier" } } }
layer { name: "bias" type: "Bias" bottom: "up" top: "up" }
layer { name: "a" type: "Convolution" bottom: "up" top: "a" param { name: "shared" } param { name: "a_b" }
  convolution_param { num_output: 6 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "b" type: "Convolution" bottom: "a" top: "b" param { name: "shared" } param { name: "b_b" }
  convolution_param { num_output: 6 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "ip" type: "InnerProduct" bottom: "b" top: "ip"
  inner_product_param { num_output: 5 transpose: true weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
"""
NETS = {"lenet": (LENET_DEPLOY, (4, 1, 28, 28)), "bn": (BN_NET, (3, 4, 10, 9)), "more": (MORE_NET, (2, 4, 5, 5))}
LEARNABLE = {
    "lenet": ["conv1", "conv2", "ip1", "ip2"],
    "bn": ["conv1", "bn1", "scale1", "prelu1", "dw", "fc"],
    "more": ["up", "bias", "a", "b", "ip"],
}


def ours(kind: str, text: str | None = None):
    return build_net(text or NETS[kind][0], input_shape=None, num_classes=0, stage="deploy")


def randomize(net, seed: int) -> None:
    """Every blob random (BatchNorm's statistics too: positive variances, a scale factor that is not 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, _, _, _, blobs in net_layers(net):
            for i, blob in enumerate(blobs):
                values = torch.randn(blob.shape, generator=g) * 0.5
                if name.startswith("bn") and i == 1:
                    values = values.abs() + 0.2
                if name.startswith("bn") and i == 2:
                    values = torch.tensor([2.5])
                blob.copy_(values)


def batch(kind: str, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=NETS[kind][1]).astype(np.float32)


def our_prob(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()


def real_net(caffe, tmp_path, kind: str, weights: str | None = None):
    proto = tmp_path / f"{kind}.prototxt"
    proto.write_text(NETS[kind][0])
    if weights is None:
        return caffe.Net(str(proto), caffe.TEST)
    return caffe.Net(str(proto), caffe.TEST, weights=weights)


@pytest.mark.parametrize("kind", list(NETS))
def test_write_then_read_gives_the_same_tensors(tmp_path, kind):
    net = ours(kind)
    randomize(net, 1)
    path = str(tmp_path / "w.caffemodel")
    save_caffemodel(net, path)
    again = ours(kind)
    report = load_caffemodel(again, path)
    assert report.loaded == LEARNABLE[kind] and report.no_weights == [] and report.unmatched == []
    for (name, _, _, _, a), (_, _, _, _, b) in zip(net_layers(net), net_layers(again), strict=True):
        assert [t.shape for t in a] == [t.shape for t in b], name
        assert all(x.detach().numpy().tobytes() == y.detach().numpy().tobytes() for x, y in zip(a, b, strict=True)), (
            name
        )
    # Every layer is in the file, in order, with Caffe's blob shapes.
    model = read_caffemodel(path)
    assert model.version == "V2" and model.name == {"lenet": "LeNet", "bn": "bn-net", "more": "more"}[kind]
    assert [layer.name for layer in model.layers] == [name for name, *_ in net_layers(net)]
    shapes = {layer.name: [b.shape for b in layer.blobs] for layer in model.layers if layer.blobs}
    if kind == "bn":
        assert shapes == {
            "conv1": [(6, 2, 3, 3), (6,)],
            "bn1": [(6,), (6,), (1,)],
            "scale1": [(6,), (6,)],
            "prelu1": [(6,)],
            "dw": [(6, 1, 3, 3), (6,)],
            "fc": [(5, 96)],
        }
    if kind == "more":
        assert shapes == {
            "up": [(4, 3, 3, 3), (6,)],
            "bias": [(6,)],
            "a": [(6, 6, 3, 3), (6,)],
            "b": [(6, 6, 3, 3), (6,)],
            "ip": [(294, 5), (5,)],
        }


@pytest.mark.parametrize("kind", list(NETS))
def test_real_caffe_loads_what_we_write(caffe, tmp_path, kind):
    net = ours(kind)
    randomize(net, 2)
    path = str(tmp_path / "ours.caffemodel")
    save_caffemodel(net, path)
    real = real_net(caffe, tmp_path, kind, weights=path)
    for name, _, _, _, blobs in net_layers(net):
        if blobs:
            assert [b.data.tobytes() for b in real.params[name]] == [t.detach().numpy().tobytes() for t in blobs], name
    x = batch(kind, 3)
    expected = real.forward(data=x)["prob"]
    assert not np.allclose(expected[0], expected[1])  # the weights and the batch make a difference
    np.testing.assert_allclose(our_prob(net, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", list(NETS))
def test_we_load_what_real_caffe_writes(caffe, tmp_path, kind):
    real = real_net(caffe, tmp_path, kind)
    rng = np.random.default_rng(4)
    for name, blobs in real.params.items():  # Caffe's fillers leave BatchNorm at zero: give it statistics
        for i, blob in enumerate(blobs):
            blob.data[...] = rng.normal(size=blob.data.shape) * 0.5
            if name == "bn1":
                blob.data[...] = np.abs(blob.data) + 0.2 if i < 2 else 3.0
    path = str(tmp_path / "real.caffemodel")
    real.save(path)
    net = ours(kind)
    report = load_caffemodel(net, path)
    assert report.loaded == LEARNABLE[kind] and report.no_weights == [] and report.unmatched == []
    x = batch(kind, 5)
    np.testing.assert_allclose(our_prob(net, x), real.forward(data=x)["prob"], rtol=1e-5, atol=1e-5)


def test_a_v1_file_with_legacy_blobs_and_double_data_loads_in_both(caffe, tmp_path):
    """A V1 NetParameter written with Caffe's own protobuf classes: enum types, num/channels/height/width blobs
    (Caffe 1.0 upgrades such files on load), one blob in double_data."""
    from caffe.proto import caffe_pb2

    rng = np.random.default_rng(6)
    shapes = {"conv1": [(20, 1, 5, 5), (20,)], "conv2": [(50, 20, 5, 5), (50,)], "ip1": [(500, 800), (500,)]}
    shapes["ip2"] = [(10, 500), (10,)]
    param = caffe_pb2.NetParameter(name="LeNet")
    values = {}
    for name, blob_shapes in shapes.items():
        layer = param.layers.add(name=name)
        layer.type = caffe_pb2.V1LayerParameter.CONVOLUTION if name.startswith("conv") else 14  # INNER_PRODUCT
        for i, shape in enumerate(blob_shapes):
            data = (rng.normal(size=shape) * 0.1).astype(np.float32)
            values[name, i] = data
            legacy = (1,) * (4 - len(shape)) + shape
            blob = layer.blobs.add(num=legacy[0], channels=legacy[1], height=legacy[2], width=legacy[3])
            if name == "ip1" and i == 0:
                blob.double_data.extend(data.astype(np.float64).ravel().tolist())
            else:
                blob.data.extend(data.ravel().tolist())
    path = str(tmp_path / "v1.caffemodel")
    with open(path, "wb") as fh:
        fh.write(param.SerializeToString())

    model = read_caffemodel(path)
    assert (
        model.version == "V1" and [layer.type for layer in model.layers] == ["Convolution"] * 2 + ["InnerProduct"] * 2
    )
    assert model.layers[2].blobs[0].shape == (1, 1, 500, 800) and model.layers[2].blobs[0].legacy
    net = ours("lenet")
    report = load_caffemodel(net, path)
    assert report.loaded == ["conv1", "conv2", "ip1", "ip2"]
    for (name, i), data in values.items():
        assert net.caffe_blobs(name)[i].detach().numpy().tobytes() == data.tobytes(), (name, i)
    real = real_net(caffe, tmp_path, "lenet", weights=path)
    x = batch("lenet", 7)
    np.testing.assert_allclose(our_prob(net, x), real.forward(data=x)["prob"], rtol=1e-5, atol=1e-5)


def test_the_report_and_a_shape_mismatch(tmp_path):
    source = ours("lenet")
    randomize(source, 8)
    path = str(tmp_path / "lenet.caffemodel")
    save_caffemodel(source, path)

    renamed = LENET_DEPLOY.replace('name: "ip2"', 'name: "classifier"')
    net = ours("lenet", renamed)
    report = load_caffemodel(net, path)
    assert report.loaded == ["conv1", "conv2", "ip1"]
    assert report.no_weights == ["classifier"] and report.unmatched == ["ip2"]

    reshaped = ours("lenet", LENET_DEPLOY.replace("num_output: 10", "num_output: 7"))
    before = {k: v.clone() for k, v in reshaped.state_dict().items()}
    with pytest.raises(CaffemodelMismatch) as error:
        load_caffemodel(reshaped, path)
    assert str(error.value) == "layer 'ip2' blob 0: the file's shape is 10 x 500, the network's is 7 x 500"
    assert all(torch.equal(before[k], v) for k, v in reshaped.state_dict().items())  # nothing was copied

    no_bias = ours("lenet", LENET_DEPLOY.replace("num_output: 500", "num_output: 500 bias_term: false"))
    with pytest.raises(CaffemodelMismatch, match=r"layer 'ip1': the file has 2 blob\(s\) \(500 x 800, 500\)"):
        load_caffemodel(no_bias, path)

    with open(path, "rb") as fh:
        data = fh.read()
    with pytest.raises(CaffemodelError, match="truncated"):
        parse_caffemodel(data[: len(data) // 2])


def test_a_snapshot_of_a_digits_network_becomes_a_caffemodel_for_its_deploy_prototxt(caffe, tmp_path):
    text = get_network("lenet").text("caffe")
    shape, labels = (1, 28, 28), ["a", "b", "c"]
    net = build_net(text, input_shape=shape, num_classes=len(labels), stage="train")
    randomize(net, 9)
    snapshot = tmp_path / "snapshot_epoch_1.pt"
    torch.save({"model": net.state_dict(), "labels": labels, "input_shape": list(shape)}, snapshot)
    path = str(tmp_path / "snapshot.caffemodel")
    snapshot_to_caffemodel(str(snapshot), text, path)
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(deploy_prototxt(text, input_shape=shape, num_classes=len(labels)))
    real = caffe.Net(str(deploy), caffe.TEST, weights=path)
    x = np.random.default_rng(10).normal(size=(5, *shape)).astype(np.float32)
    real.blobs["data"].reshape(*x.shape)
    out = real.forward(data=x)
    net.eval()
    np.testing.assert_allclose(our_prob(net, x), out[real.outputs[0]], rtol=1e-5, atol=1e-5)


# A color network: its first convolution reads the image's channels (through an in-place Power and ReLU).
COLOR_NET = """
name: "color"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 12 dim: 12 } } }
layer { name: "scale" type: "Power" bottom: "data" top: "scaled" power_param { scale: 0.5 } }
layer { name: "conv1" type: "Convolution" bottom: "scaled" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "fc" type: "InnerProduct" bottom: "conv2" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_a_color_network_is_written_in_caffes_bgr_order_and_read_back_to_rgb(caffe, tmp_path):
    # Caffe fed its color images as BGR, this server feeds RGB. The .caffemodel a person downloads is for Caffe:
    # real Caffe on the BGR image gives what we give on the RGB one, and reading such a file to start a network
    # here (an upload, fine-tuning) reverses the channels back.
    shape, labels = (3, 12, 12), ["a", "b", "c"]
    net = build_net(COLOR_NET, input_shape=shape, num_classes=len(labels), stage="deploy")
    randomize(net, 11)
    assert image_layers(net) == ["conv1"]
    before = net.caffe_blobs("conv1")[0].clone()
    path = str(tmp_path / "snapshot.caffemodel")
    save_caffemodel(net, path, bgr=True)  # as the export beside each snapshot and the downloads write it
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(COLOR_NET)
    real = caffe.Net(str(deploy), caffe.TEST, weights=path)
    rgb = np.random.default_rng(12).normal(size=(2, *shape)).astype(np.float32)
    real.blobs["data"].reshape(*rgb.shape)
    out = real.forward(data=np.ascontiguousarray(rgb[:, ::-1]))
    net.eval()
    expected = our_prob(net, rgb)
    np.testing.assert_allclose(expected, out[real.outputs[0]], rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, our_prob(net, np.ascontiguousarray(rgb[:, ::-1])), atol=1e-3)  # order matters

    again = build_net(COLOR_NET, input_shape=shape, num_classes=len(labels), stage="deploy")
    load_caffemodel(again, path)
    assert torch.equal(again.caffe_blobs("conv1")[0], before.flip(1))  # the file holds BGR
    assert reverse_image_channels(again) == ["conv1"]
    for (name, _, _, _, ours_), (_, _, _, _, theirs) in zip(net_layers(net), net_layers(again), strict=True):
        for a, b in zip(ours_, theirs, strict=True):
            assert torch.equal(a, b), name
    assert torch.equal(net.caffe_blobs("conv1")[0], before)  # writing left the network as it was
