"""Real Caffe as `make install` builds it (tools/caffe/build.py): pycaffe imports in CPU mode, builds LeNet from a
prototxt with an Input layer and forwards a batch with Caffe's shapes, saves a .caffemodel that loads back
bit-identical, and trains: an SGDSolver lowers the loss on a tiny LMDB written by DIGITS' own writer, and its
snapshot (.caffemodel + .solverstate) holds the solver's weights; and a Python layer runs in a net.

Where Caffe is missing these tests FAIL if the build was expected to work here (digits.caffe_status.
build_expected: Debian 12, CPython 3.11, root or every build package installed, DIGITS_CAFFE not off) and skip
with the recorded reason everywhere else.
"""

from __future__ import annotations

import os

import numpy as np

from digits import caffe_status
from digits.engine import caffe_real
from digits.formats.caffe_pb import array_to_datum
from digits.formats.lmdb_io import LmdbWriter, record_key

LENET_DEPLOY = """
name: "LeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 4 dim: 1 dim: 28 dim: 28 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 50 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""

# Caffe's shapes for LeNet on a batch of 4: 28 -conv5-> 24 -pool2-> 12 -conv5-> 8 -pool2-> 4.
LENET_BLOBS = {
    "data": (4, 1, 28, 28),
    "conv1": (4, 20, 24, 24),
    "pool1": (4, 20, 12, 12),
    "conv2": (4, 50, 8, 8),
    "pool2": (4, 50, 4, 4),
    "ip1": (4, 500),
    "ip2": (4, 10),
    "prob": (4, 10),
}
LENET_PARAMS = {
    "conv1": [(20, 1, 5, 5), (20,)],
    "conv2": [(50, 20, 5, 5), (50,)],
    "ip1": [(500, 800), (500,)],
    "ip2": [(10, 500), (10,)],
}

# A two-class problem a linear layer learns in a few steps: dark 8x8 images are class 0, bright ones class 1
# (centred on 128, so one step moves both classes the right way).
IP_LAYER = """layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.01 } } }
"""
TRAIN_NET = (
    """layer { name: "data" type: "Data" top: "data" top: "label"
  transform_param { mean_value: 128 scale: 0.0078125 }
  data_param { source: "%(source)s" batch_size: 16 backend: LMDB } }
"""
    + IP_LAYER
    + """layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n"""
)
TINY_DEPLOY = (
    """layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }\n"""
    + IP_LAYER
)
SOLVER = """
net: "%(net)s"
base_lr: 0.1
momentum: 0.9
lr_policy: "fixed"
max_iter: 5
display: 0
random_seed: 7
snapshot_prefix: "%(prefix)s"
solver_mode: CPU
"""


def write(path, text: str) -> str:
    with open(path, "w") as fh:
        fh.write(text)
    return str(path)


def lenet(caffe, tmp_path, weights: str | None = None):
    proto = write(tmp_path / "lenet.prototxt", LENET_DEPLOY)
    if weights is None:
        return caffe.Net(proto, caffe.TEST)
    return caffe.Net(proto, caffe.TEST, weights=weights)


def test_available_says_yes_where_caffe_imports(caffe):
    assert caffe_real.available() == (True, "")
    assert caffe_status.unavailable_reason() is None
    assert caffe.__version__ == "1.0.0"
    assert {"Convolution", "Data", "Input", "Python", "HDF5Data"} <= set(caffe.layer_type_list())


def test_lenet_from_a_prototxt_with_an_input_layer_has_caffes_shapes_and_forwards(caffe, tmp_path):
    net = lenet(caffe, tmp_path)
    assert {name: blob.data.shape for name, blob in net.blobs.items()} == LENET_BLOBS
    assert {name: [b.data.shape for b in blobs] for name, blobs in net.params.items()} == LENET_PARAMS
    batch = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    out = net.forward(data=batch)
    prob = out["prob"]
    assert prob.shape == (4, 10)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(prob > 0)
    # Different images give different outputs: the network really ran on the batch.
    assert not np.allclose(prob[0], prob[1])


def test_a_saved_caffemodel_loads_back_bit_identical(caffe, tmp_path):
    net = lenet(caffe, tmp_path)
    path = str(tmp_path / "lenet.caffemodel")
    net.save(path)
    assert os.path.getsize(path) > 4 * 431_080  # LeNet's 431,080 float parameters
    again = lenet(caffe, tmp_path, weights=path)
    for name, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            saved = again.params[name][i].data
            assert saved.dtype == blob.data.dtype and saved.tobytes() == blob.data.tobytes(), (name, i)
    batch = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    first = net.forward(data=batch)["prob"].copy()
    assert again.forward(data=batch)["prob"].tobytes() == first.tobytes()
    # The file is a NetParameter that Caffe's own protobuf reads, with the layers by name.
    from caffe.proto import caffe_pb2

    param = caffe_pb2.NetParameter()
    with open(path, "rb") as fh:
        param.ParseFromString(fh.read())
    learned = {layer.name: len(layer.blobs) for layer in param.layer if layer.blobs}
    assert learned == {"conv1": 2, "conv2": 2, "ip1": 2, "ip2": 2}


def tiny_lmdb(path) -> str:
    """64 gray 8x8 records through DIGITS' LMDB writer and Datum encoder: alternating dark (0) and bright (1)."""
    rng = np.random.default_rng(3)
    records = []
    for i in range(64):
        label = i % 2
        low, high = (0, 80) if label == 0 else (170, 256)
        image = rng.integers(low, high, size=(8, 8), dtype=np.uint8)
        records.append((record_key(i), array_to_datum(image, label)))
    writer = LmdbWriter(str(path))
    writer.put_many(records)
    writer.close()
    return str(path)


def test_sgd_solver_lowers_the_loss_on_an_lmdb_and_snapshots(caffe, tmp_path):
    source = tiny_lmdb(tmp_path / "train_db")
    net = write(tmp_path / "train.prototxt", TRAIN_NET % {"source": source})
    prefix = str(tmp_path / "snapshot")
    solver = caffe.SGDSolver(write(tmp_path / "solver.prototxt", SOLVER % {"net": net, "prefix": prefix}))
    assert solver.net.blobs["data"].data.shape == (16, 1, 8, 8)
    losses = []
    for _ in range(5):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
    assert solver.iter == 5
    assert np.isclose(losses[0], np.log(2), atol=0.1), losses  # two classes, weights near zero
    solver.net.forward()  # the next batch, after five updates
    after = float(solver.net.blobs["loss"].data)
    assert after < 0.5 * losses[0], (losses, after)

    solver.snapshot()
    assert os.path.isfile(prefix + "_iter_5.caffemodel") and os.path.isfile(prefix + "_iter_5.solverstate")
    deploy = write(tmp_path / "deploy.prototxt", TINY_DEPLOY)
    trained = caffe.Net(deploy, caffe.TEST, weights=prefix + "_iter_5.caffemodel")
    for i in range(2):
        assert trained.params["ip"][i].data.tobytes() == solver.net.params["ip"][i].data.tobytes()
    del solver  # stops the Data layer's prefetch thread


DOUBLE_LAYER = """
import caffe


class Double(caffe.Layer):
    def setup(self, bottom, top):
        self.factor = float(self.param_str or 2)

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.factor * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = self.factor * top[0].diff
"""


def test_a_python_layer_runs_in_a_net(caffe, tmp_path, monkeypatch):
    write(tmp_path / "digits_test_double_layer.py", DOUBLE_LAYER)
    monkeypatch.syspath_prepend(str(tmp_path))
    proto = write(
        tmp_path / "python.prototxt",
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }\n'
        'layer { name: "double" type: "Python" bottom: "data" top: "out"\n'
        '  python_param { module: "digits_test_double_layer" layer: "Double" param_str: "3" } }\n',
    )
    net = caffe.Net(proto, caffe.TEST)
    batch = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert net.forward(data=batch)["out"].tolist() == (3 * batch).tolist()
