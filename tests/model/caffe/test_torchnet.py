"""digits.engine.caffe.net: the compiled modules match the analysis, train, and honour Caffe's ParamSpecs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from digits.engine.caffe.net import CaffeNet, build_net
from digits.model.caffe import analyze
from tests.model.caffe.test_standard_networks import load

STANDARD = {"lenet": (1, 28, 28), "alexnet": (3, 227, 227), "googlenet": (3, 224, 224)}
CLASSES = 5


@pytest.fixture(scope="module")
def standard():
    """Builds each standard train-stage network once for the module (AlexNet alone fills 61M weights)."""
    built: dict[str, CaffeNet] = {}

    def get(name: str) -> CaffeNet:
        if name not in built:
            torch.manual_seed(0)
            built[name] = build_net(load(name), input_shape=STANDARD[name], num_classes=CLASSES)
        net = built[name].train()
        net.zero_grad(set_to_none=True)
        return net

    return get


def per_layer_outputs(net: CaffeNet, x: torch.Tensor) -> tuple[dict[str, tuple], dict[str, torch.Tensor]]:
    """Each computed layer's top shapes (batch axis dropped), recorded as the layer runs, and the blobs."""
    seen: dict[str, tuple] = {}
    hooks = []
    for layer in net.spec.layers:
        if layer.name in net.keys:

            def record(_module, _inputs, outputs, layer=layer):
                for top, out in zip(layer.tops, outputs, strict=True):
                    seen[f"{layer.name}:{top}"] = tuple(out.shape[1:])

            hooks.append(net.layer(layer.name).register_forward_hook(record))
    blobs = net.forward_blobs(x)
    for hook in hooks:
        hook.remove()
    return seen, blobs


@pytest.mark.parametrize("name", list(STANDARD))
def test_standard_network_shapes_match_analysis_and_train(name, standard):
    shape = STANDARD[name]
    net = standard(name)
    x = torch.randn(2, *shape)
    got, blobs = per_layer_outputs(net, x)
    expected = {
        f"{layer.name}:{top}": shape for layer in net.spec.layers if layer.name in net.keys
        for top, shape in layer.output_shapes.items()
    }  # fmt: skip
    assert got == expected
    # One pass serves the loss too (forward_heads is checked on its own below): keeps the test fast.
    labels = torch.tensor([0, 3])
    loss = sum(weight * F.cross_entropy(blobs[blob], labels) for blob, weight in net.spec.loss_heads)
    assert torch.isfinite(loss)
    loss.backward()
    first = net.spec.layers[1] if name != "lenet" else net.spec.layer("conv1")
    grad = net.layer(first.name).weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_forward_heads_give_each_loss_its_weight(standard):
    net = standard("lenet")
    x = torch.rand(2, 1, 28, 28)
    heads = net.forward_heads(x)
    assert len(heads) == 1 and heads[0][1] == 1.0
    assert torch.equal(heads[0][0], net(x))
    assert heads[0][0].shape == (2, CLASSES)


def test_forward_returns_the_main_logits(standard):
    net = standard("googlenet").eval()
    x = torch.randn(2, 3, 224, 224)  # the batch size of the other tests: oneDNN reuses its kernels
    with torch.no_grad():
        logits = net(x)
        heads = net.forward_heads(x)
    assert logits.shape == (2, CLASSES)
    assert torch.equal(logits, heads[-1][0])
    assert [w for _, w in heads] == [0.3, 0.3, 1.0]


def test_blobs_in_order_starting_with_input():
    torch.manual_seed(0)
    net = build_net(load("lenet"), input_shape=(1, 28, 28), num_classes=10)
    blobs = net.forward_blobs(torch.rand(3, 1, 28, 28) * 255)
    assert list(blobs) == ["data", "scaled", "conv1", "pool1", "conv2", "pool2", "ip1", "ip2"]
    assert blobs["ip1"].min() >= 0  # relu1 ran in place on ip1
    assert torch.allclose(blobs["scaled"], blobs["data"] * 0.0125)


def test_parameters_registered_under_layer_names():
    net = build_net(load("lenet"), input_shape=(1, 28, 28), num_classes=10)
    keys = list(net.state_dict())
    assert keys == [f"layers.{n}.{b}" for n in ("conv1", "conv2", "ip1", "ip2") for b in ("weight", "bias")]
    assert net.layer("conv1").weight.shape == (20, 1, 5, 5)
    assert net.layers["ip2"].bias.shape == (10,)
    assert [tuple(t.shape) for t in net.caffe_blobs("ip1")] == [(500, 800), (500,)]
    assert sum(p.numel() for p in net.parameters()) == 431_080


def test_layer_names_with_dots_get_module_keys():
    text = load("lenet").replace('"conv1"', '"conv.1"').replace('bottom: "conv.1"', 'bottom: "conv.1"')
    net = build_net(text, input_shape=(1, 28, 28), num_classes=10)
    assert net.keys["conv.1"] == "conv_1" and net.layer("conv.1").weight.shape == (20, 1, 5, 5)


def test_param_groups_follow_lr_and_decay_mults():
    net = build_net(load("lenet"), input_shape=(1, 28, 28), num_classes=10)
    groups = net.param_groups(0.01, 5e-4)
    assert [(g["lr_mult"], g["decay_mult"], g["lr"], g["weight_decay"]) for g in groups] == [
        (1.0, 1.0, 0.01, 5e-4),
        (2.0, 1.0, 0.02, 5e-4),
    ]
    assert groups[1]["param_names"] == ["conv1.bias", "conv2.bias", "ip1.bias", "ip2.bias"]
    assert groups[1]["params"][0] is net.layer("conv1").bias
    optimizer = torch.optim.SGD(groups, lr=0.01, momentum=0.9)
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.02]


def test_param_groups_of_alexnet_do_not_decay_biases(standard):
    alex = standard("alexnet")
    bias_group = alex.param_groups(0.1, 1e-3)[1]
    assert (bias_group["lr"], bias_group["weight_decay"]) == (0.2, 0.0)


FROZEN_AND_SHARED = """
name: "tiny"
layer { name: "d" type: "Data" top: "data" top: "label" }
layer { name: "frozen" type: "InnerProduct" bottom: "data" top: "a" param { lr_mult: 0 } param { lr_mult: 0 }
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
layer { name: "s1" type: "InnerProduct" bottom: "a" top: "b" param { name: "w" lr_mult: 3 }
  inner_product_param { num_output: 3 bias_term: false weight_filler { type: "gaussian" } } }
layer { name: "s2" type: "InnerProduct" bottom: "b" top: "c" param { name: "w" lr_mult: 3 }
  inner_product_param { num_output: 3 bias_term: false } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "c" bottom: "label" }
"""


def test_frozen_and_shared_params():
    net = build_net(FROZEN_AND_SHARED, input_shape=(4, 1, 1), num_classes=3)
    assert not net.layer("frozen").weight.requires_grad and not net.layer("frozen").bias.requires_grad
    assert net.layer("s1").weight is net.layer("s2").weight
    groups = net.param_groups(1.0, 0.0)
    assert [(g["lr_mult"], g["param_names"]) for g in groups] == [(3.0, ["s1.weight"])]
    net(torch.randn(2, 4, 1, 1)).sum().backward()
    assert net.layer("frozen").weight.grad is None and net.layer("s1").weight.grad is not None


def test_deterministic_given_seed():
    def weights(seed):
        torch.manual_seed(seed)
        return build_net(load("lenet"), input_shape=(1, 28, 28), num_classes=10).state_dict()

    a, b, c = weights(1), weights(1), weights(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["layers.conv1.weight"], c["layers.conv1.weight"])


def test_dropout_only_in_training_mode(standard):
    net = standard("alexnet")
    x = torch.randn(1, 3, 227, 227)
    with torch.no_grad():
        net.eval()
        assert torch.equal(net(x), net(x))
        net.train()
        assert not torch.equal(net.forward_blobs(x)["fc7"], net.forward_blobs(x)["fc7"])


def test_val_and_deploy_modules_accept_train_weights(standard):
    train = standard("googlenet")
    deploy = build_net(load("googlenet"), input_shape=(3, 224, 224), num_classes=CLASSES, stage="deploy")
    assert not deploy.training  # deploy and val run in Caffe's TEST phase
    missing, unexpected = deploy.load_state_dict(train.state_dict(), strict=False)
    assert missing == [] and all(k.startswith(("layers.loss1/", "layers.loss2/")) for k in unexpected)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        probs = deploy.forward_blobs(x)["softmax"]
        assert torch.allclose(probs, F.softmax(train.eval()(x), dim=1), atol=1e-6)


def test_spec_from_analysis_builds_directly():
    spec = analyze(load("lenet"), stage="val", input_shape=(1, 28, 28), num_classes=10)
    assert CaffeNet(spec).spec is spec


def test_package_import_does_not_import_torch():
    code = (
        "import sys; import digits.model.caffe as c; import digits.model.caffe.network; "
        "c.analyze_for_display(open(sys.argv[1]).read(), 'train', (1, 28, 28), 10); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    path = str(__import__("tests.model.caffe.test_standard_networks").model.caffe.test_standard_networks.NETWORKS)
    subprocess.run([sys.executable, "-c", code, path + "/lenet.prototxt"], check=True)
