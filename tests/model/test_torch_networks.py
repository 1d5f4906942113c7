"""PyTorch network sources: every standard network builds, runs forward and backward; user errors have a line."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from digits.engine.networks import build_from_source, build_network, load_network_source
from digits.model.standard import get_network, list_networks
from digits.model.torch_networks import NetworkSourceError, check_syntax
from tests.support import ROOT
from tests.support.waiting import SHORT_S

STANDARD_TORCH_NETWORKS = tuple(n.name for n in list_networks("torch"))

# (channels, height, width) each network is tested at: small, but what it is meant for.
SIZES = {
    "lenet": (1, 28, 28),
    "alexnet": (3, 227, 227),
    "googlenet": (3, 224, 224),
    "resnet18": (3, 32, 32),
    "resnet50": (3, 32, 32),
}
SETTINGS = {
    "lenet": {"batch_size": 64, "input_scale": 0.0125, "crop_size": None},
    "alexnet": {"batch_size": 128, "input_scale": 1 / 255, "crop_size": 227},
    "googlenet": {"batch_size": 32, "input_scale": 1 / 255, "crop_size": 224},
    "resnet18": {"batch_size": 32, "input_scale": 1 / 255, "crop_size": None},
    "resnet50": {"batch_size": 32, "input_scale": 1 / 255, "crop_size": None},
}
MINIMAL = """
import torch

def build_model(*, num_classes, channels, height, width):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(channels * height * width, num_classes))
"""


def source(name: str) -> str:
    return Path(get_network(name).path("torch")).read_text(encoding="utf-8")


def build(name: str, num_classes: int, shape: tuple[int, int, int]):
    channels, height, width = shape
    return build_from_source(source(name), num_classes=num_classes, channels=channels, height=height, width=width)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_standard_network_is_tested():
    assert set(SIZES) == set(STANDARD_TORCH_NETWORKS)


@pytest.mark.parametrize("name", STANDARD_TORCH_NETWORKS)
def test_forward_and_backward(name):
    torch.manual_seed(0)
    model, settings = build(name, 5, SIZES[name])
    assert settings == SETTINGS[name]
    x = torch.randn(2, *SIZES[name])

    model.train()
    out = model(x)
    outputs = out if isinstance(out, tuple) else (out,)
    for logits in outputs:
        assert logits.shape == (2, 5)
    # Auxiliary heads (GoogLeNet) are weighted 0.3, as the training loop does.
    loss = outputs[0].square().mean() + sum(0.3 * aux.square().mean() for aux in outputs[1:])
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing

    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 5)


@pytest.mark.parametrize(
    ("name", "num_classes", "shape", "count"),
    [
        ("lenet", 10, (1, 28, 28), 431_080),
        ("resnet18", 1000, (3, 224, 224), 11_689_512),
        ("resnet50", 1000, (3, 224, 224), 25_557_032),
        ("alexnet", 1000, (3, 227, 227), 60_965_224),  # Caffe's bvlc_alexnet, two-group convolutions
    ],
)
def test_parameter_counts(name, num_classes, shape, count):
    model, _ = build(name, num_classes, shape)
    assert parameter_count(model) == count


def test_googlenet_returns_aux_logits_only_in_training():
    model, _ = build("googlenet", 3, (3, 64, 64))
    x = torch.randn(2, 3, 64, 64)
    main, aux1, aux2 = model.train()(x)
    assert main.shape == aux1.shape == aux2.shape == (2, 3)
    with torch.no_grad():
        assert isinstance(model.eval()(x), torch.Tensor)
    assert load_network_source(source("googlenet")).AUX_LOSS_WEIGHT == 0.3


@pytest.mark.parametrize("shape", [(1, 29, 31), (3, 64, 48), (1, 28, 100)])
def test_lenet_takes_any_size_from_28(shape):
    model, _ = build("lenet", 4, shape)
    assert model(torch.zeros(2, *shape)).shape == (2, 4)


def test_lenet_rejects_images_smaller_than_28():
    with pytest.raises(NetworkSourceError, match="at least 28x28"):
        build("lenet", 4, (1, 27, 28))


def test_resnets_use_the_cifar_stem_below_64_pixels():
    small, _ = build("resnet18", 10, (3, 32, 32))
    large, _ = build("resnet18", 10, (3, 64, 64))
    assert small.stem[0].kernel_size == (3, 3) and small.stem[0].stride == (1, 1)
    assert large.stem[0].kernel_size == (7, 7) and isinstance(large.stem[-1], torch.nn.MaxPool2d)


@pytest.mark.parametrize("name", STANDARD_TORCH_NETWORKS)
def test_standard_sources_import_only_torch_and_math(name):
    text = source(name)
    assert check_syntax(text) is None
    modules = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module.split(".")[0])
    assert modules <= {"torch", "math"}


def test_the_job_build_path_checks_what_a_network_builds():
    """The training and inference workers build through build_from_source: its checks apply to every job."""
    with pytest.raises(NetworkSourceError, match="must return a torch.nn.Module"):
        build_network("def build_model(**kw):\n    return 42\n", "torch", input_shape=(1, 4, 4), num_classes=3)
    with pytest.raises(NetworkSourceError, match="BATCH_SIZE"):
        build_network("BATCH_SIZE = 0\n" + MINIMAL, "torch", input_shape=(1, 4, 4), num_classes=3)
    built = build_network("BATCH_SIZE = 7\nCROP_SIZE = 3\n" + MINIMAL, "torch", input_shape=(1, 4, 4), num_classes=3)
    assert (built.batch_size, built.crop_size, built.input_scale) == (7, 3, 1.0)


def test_settings_default_when_a_network_has_none():
    model, settings = build_from_source(MINIMAL, num_classes=3, channels=1, height=4, width=4)
    assert settings == {"batch_size": None, "input_scale": 1.0, "crop_size": None}
    assert model(torch.zeros(2, 1, 4, 4)).shape == (2, 3)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("import torch\nx = (1,\n", 2, 5),  # '(' was never closed
        ("def build_model(**kw):\n    return 1\n      x = 2\n", 3, None),  # unexpected indent
        ("def build_model(**kw):\n    retrun torch.nn.Linear(2, 2)\n", 2, 12),  # Python points at 'torch'
        ("import torch\nreturn 3\n", 2, 1),  # only the bytecode compiler finds this one
    ],
)
def test_syntax_errors_have_line_and_column(text, line, column):
    problem = check_syntax(text)
    assert problem.line == line and problem.column >= 1
    assert str(problem).startswith(f"line {line}, column {problem.column}: ")
    if column is not None:  # where Python puts an indentation error's column differs between versions
        assert problem.column == column
    with pytest.raises(NetworkSourceError) as e:
        load_network_source(text)
    assert (e.value.line, e.value.column) == (problem.line, problem.column)


def test_missing_build_model_is_reported():
    text = "import torch\n\ndef make_model(**kw):\n    return torch.nn.Identity()\n"
    assert "build_model" in str(check_syntax(text))
    with pytest.raises(NetworkSourceError, match="build_model"):
        load_network_source(text)


def test_build_model_may_be_defined_in_a_block_or_imported():
    assert check_syntax("try:\n    from mynets import build_model\nexcept ImportError:\n    pass\n") is None
    assert check_syntax("if True:\n    build_model = None\n") is None
    assert check_syntax("def f():\n    def build_model():\n        pass\n") is not None


def test_errors_while_running_point_at_the_line():
    with pytest.raises(NetworkSourceError, match="NameError") as e:
        load_network_source("import torch\n\nLAYERS = undefined_name\n\ndef build_model(**kw):\n    pass\n")
    assert e.value.line == 3
    broken = MINIMAL.replace("return torch.nn.Sequential(", "return torch.nn.Sequentail(")
    with pytest.raises(NetworkSourceError, match="AttributeError") as e:
        build_from_source(broken, num_classes=3, channels=1, height=4, width=4)
    assert e.value.line == 5


def test_build_model_must_return_a_module_and_sane_settings():
    with pytest.raises(NetworkSourceError, match="nn.Module"):
        build_from_source("def build_model(**kw):\n    return 42\n", num_classes=3, channels=1, height=4, width=4)
    with pytest.raises(NetworkSourceError, match="BATCH_SIZE"):
        build_from_source("BATCH_SIZE = 0\n" + MINIMAL, num_classes=3, channels=1, height=4, width=4)
    with pytest.raises(NetworkSourceError, match="INPUT_SCALE"):
        build_from_source("INPUT_SCALE = '1/255'\n" + MINIMAL, num_classes=3, channels=1, height=4, width=4)


def test_each_load_is_a_fresh_module():
    first = load_network_source("COUNT = []\ndef build_model(**kw):\n    COUNT.append(1)\n")
    second = load_network_source("COUNT = []\ndef build_model(**kw):\n    COUNT.append(1)\n")
    first.build_model()
    assert second.COUNT == [] and first is not second
    assert first.__name__ not in sys.modules


def test_check_syntax_neither_imports_torch_nor_runs_the_code(tmp_path):
    network = tmp_path / "net.py"
    network.write_text(source("resnet50"), encoding="utf-8")
    script = textwrap.dedent(f"""
        import sys
        from digits.model.torch_networks import check_syntax
        assert check_syntax(open({str(network)!r}).read()) is None
        assert check_syntax("raise SystemExit(3)\\ndef build_model(**kw):\\n    pass\\n") is None
        assert check_syntax("def build_model(:\\n").line == 1
        assert "torch" not in sys.modules, "check_syntax imported torch"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=SHORT_S)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
