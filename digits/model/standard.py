"""Standard networks, registered by name, each written for one or both frameworks (torch-free)."""

from __future__ import annotations

import os
from dataclasses import dataclass

NETWORKS_DIR = os.path.join(os.path.dirname(__file__), "networks")
FRAMEWORKS = {"caffe": "Caffe prototxt (runs on the PyTorch engine)", "torch": "PyTorch (Python)"}
EXTENSIONS = {"caffe": ".prototxt", "torch": ".py"}


@dataclass(frozen=True)
class StandardNetwork:
    name: str
    title: str
    description: str
    frameworks: tuple[str, ...]
    # "images" (a dataset of images) or "generic" (numeric features: digits.folders.generic)
    data: str = "images"

    def path(self, framework: str) -> str:
        if framework not in self.frameworks:
            raise KeyError(
                f"{self.title} is not written for framework {framework!r} (it is for {', '.join(self.frameworks)})"
            )
        return os.path.join(NETWORKS_DIR, framework, self.name + EXTENSIONS[framework])

    def text(self, framework: str) -> str:
        with open(self.path(framework), encoding="utf-8") as fh:
            return fh.read()


_REGISTRY: dict[str, StandardNetwork] = {}


def register(network: StandardNetwork) -> StandardNetwork:
    _REGISTRY[network.name] = network
    return network


register(
    StandardNetwork("lenet", "LeNet", "The classic digit network; small grayscale images (28x28).", ("caffe", "torch"))
)
register(
    StandardNetwork(
        "alexnet",
        "AlexNet",
        "Five convolutions and three fully connected layers; 256x256 images cropped to 227.",
        ("caffe", "torch"),
    )
)
register(
    StandardNetwork(
        "googlenet",
        "GoogLeNet",
        "Inception v1 with two auxiliary heads; 256x256 images cropped to 224.",
        ("caffe", "torch"),
    )
)
register(StandardNetwork("resnet18", "ResNet-18", "Residual network, 18 layers, batch normalization.", ("torch",)))
register(StandardNetwork("resnet50", "ResNet-50", "Residual network, 50 layers with bottlenecks.", ("torch",)))
register(
    StandardNetwork(
        "mlp", "MLP", "Multilayer perceptron for numeric features (generic data).", ("torch",), data="generic"
    )
)


def get_network(name: str) -> StandardNetwork:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no standard network {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def list_networks(framework: str | None = None, data: str = "images") -> list[StandardNetwork]:
    """The standard networks for a kind of data ("images" or "generic"), of one framework or all."""
    return [n for n in _REGISTRY.values() if n.data == data and (framework is None or framework in n.frameworks)]


def is_standard_text(framework: str, text: str) -> bool:
    """Whether `text` is, byte for byte (but a final newline), one of the networks shipped for `framework`."""
    wanted = text.rstrip("\n")
    for network in list_networks(framework) + list_networks(framework, data="generic"):
        if network.text(framework).rstrip("\n") == wanted:
            return True
    return False


def runs_code(framework: str, text: str) -> bool:
    """Whether training or serving this network runs Python that a person wrote: a PyTorch network that is not
    one we ship. Caffe prototxt is data for our own parser and compiler, never run."""
    return framework == "torch" and not is_standard_text(framework, text)
