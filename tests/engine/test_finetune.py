"""digits/engine/finetune.py on built networks, without a worker: frozen parameters left out of the solver, and
BatchNorm statistics as Caffe keeps them (lr_mult 0 alone still updates them; a frozen layer uses its stored ones)."""

from __future__ import annotations

import pytest
import torch

from digits.engine.finetune import StartRecord, StartWeightsError, freeze_layers, load_start_weights
from digits.engine.networks import build_network
from digits.engine.solvers import make_optimizer

BN_NET = """
name: "bn"
layer { name: "data" type: "Data" top: "data" top: "label" }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 0 } param { lr_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1"
  param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2" }
layer { name: "ip" type: "InnerProduct" bottom: "conv2" top: "ip"
  inner_product_param { weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def build():
    torch.manual_seed(0)
    return build_network(BN_NET, "caffe", input_shape=(1, 8, 8), num_classes=3)


def step(net) -> None:
    optimizer = make_optimizer(
        framework="caffe",
        solver_type="SGD",
        param_groups=net.param_groups(),
        lr=0.1,
        momentum=0.9,
        weight_decay=0.5,
        rms_decay=0.99,
    )
    net.module.train()
    x = torch.randn(6, 1, 8, 8)
    loss = torch.nn.functional.cross_entropy(net.logits(x), torch.tensor([0, 1, 2, 0, 1, 2]))
    loss.backward()
    optimizer.step()


def test_lr_mult_0_and_frozen_layers_get_no_update_nor_decay_and_batchnorm_follows_caffe():
    net = build()
    record = StartRecord()
    freeze_layers(net, ["bn2"], record)
    assert record.frozen == [{"layer": "conv1", "by": "lr_mult 0"}, {"layer": "bn2", "by": "Frozen layers"}]
    names = [n for group in net.param_groups() for n in group["param_names"]]
    assert names == ["conv2.weight", "conv2.bias", "ip.weight", "ip.bias"]  # the solver never sees conv1's
    m = net.module
    before = {k: v.clone() for k, v in m.state_dict().items()}
    step(net)
    after = m.state_dict()
    assert torch.equal(before["layers.conv1.weight"], after["layers.conv1.weight"])  # no step, no weight decay
    assert not torch.equal(before["layers.conv2.weight"], after["layers.conv2.weight"])
    # Caffe: BatchNorm's blobs are never the solver's; lr_mult 0 on them leaves its statistics updating in TRAIN.
    assert after["layers.bn1.scale_factor"].item() == 1.0 and after["layers.bn1.mean"].abs().sum() > 0
    # Frozen by the form: its statistics stay as they were (use_global_stats), though the net trains.
    assert m.training and torch.equal(before["layers.bn2.mean"], after["layers.bn2.mean"])
    assert after["layers.bn2.scale_factor"].item() == 0.0


def test_start_weights_by_layer_name_and_the_errors_that_name_what_is_wrong(tmp_path):
    source = build()
    state = {k: v for k, v in source.module.state_dict().items() if not k.startswith("layers.ip.")}
    state["layers.conv2.weight"] = torch.zeros(5, 4, 3, 3)  # another shape: conv2 starts fresh
    torch.save(state, tmp_path / "plain.pt")
    net = build()
    record = StartRecord()
    load_start_weights(net, str(tmp_path / "plain.pt"), record)
    assert [e["layer"] for e in record.loaded] == ["conv1", "bn1", "bn2"]
    assert [(e["layer"], e["reason"]) for e in record.new] == [("conv2", "shape differs"), ("ip", "absent")]
    assert record.new[0]["shapes"] == [{"blob": "weight", "file": [5, 4, 3, 3], "network": [4, 4, 3, 3]}]
    with pytest.raises(StartWeightsError, match=r"Frozen layers: .*'fc9'"):
        freeze_layers(net, ["conv", "fc9"], StartRecord())
    with pytest.raises(StartWeightsError, match="every layer with weights is frozen"):
        freeze_layers(build(), ["conv", "ip"], StartRecord())
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(StartWeightsError, match="junk.pt cannot be read as weights"):
        load_start_weights(build(), str(tmp_path / "junk.pt"), StartRecord())
