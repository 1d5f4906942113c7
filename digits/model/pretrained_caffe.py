"""A Caffe deploy prototxt as a DIGITS network (torch-free): what an imported Caffe model keeps as network.prototxt.

Caffe's deploy files have an Input layer and end in a Softmax; DIGITS' networks hold every stage in one file. The
deploy layers stay as they were; the Input layer becomes the data blob DIGITS feeds, the final Softmax is kept for
the deploy stage only, and a SoftmaxWithLoss (and a val-stage Accuracy) on the logits make it trainable, so a new
model can start from the imported one. A file that already has stage rules or a loss is a DIGITS network: kept.
"""

from __future__ import annotations

from digits.model.caffe.analysis import analyze
from digits.model.caffe.errors import NetworkError
from digits.model.caffe.inputs import DIGITS_LABEL_BLOB
from digits.model.caffe.shapes import SOURCE_TYPES
from digits.model.caffe.textformat import Message, format_message, parse
from digits.model.caffe.upgrade import upgrade_net

HEADER = (
    "# Imported by DIGITS from a Caffe deploy network ({name}): its layers as uploaded, fed by DIGITS' data\n"
    "# layer; the final Softmax is the deploy stage's, and SoftmaxWithLoss / Accuracy on the logits train it.\n"
)
LOSS_TYPES = ("SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss")


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def _rule(stage: str) -> Message:
    rule = Message()
    rule.add("stage", stage)
    return rule


def _layer(name: str, kind: str, bottoms: list[str], tops: list[str]) -> Message:
    layer = Message()
    layer.add("name", name)
    layer.add("type", kind)
    for bottom in bottoms:
        layer.add("bottom", bottom)
    for top in tops:
        layer.add("top", top)
    return layer


def is_digits_network(net: Message) -> bool:
    """A network that already says its stages (include/exclude rules) or trains (a loss layer)."""
    layers = net.get("layer", [])
    return any(layer.get("include") or layer.get("exclude") for layer in layers) or any(
        layer.first("type") in LOSS_TYPES for layer in layers
    )


def digits_network(text: str, filename: str = "deploy.prototxt") -> str:
    """The DIGITS network of a deploy prototxt (see the module docstring); NetworkError (or TextFormatError) says
    what is wrong with the file."""
    net = parse(text)
    upgrade_net(net)  # V1 `layers`, net-level input/input_shape become `layer` entries and an Input layer
    if is_digits_network(net):
        return text
    layers: list[Message] = list(net.get("layer", []))
    sources = [layer for layer in layers if layer.first("type") in SOURCE_TYPES]
    inputs = [layer for layer in sources if layer.first("type") == "Input"]
    if len(sources) != 1 or len(inputs) != 1 or len(inputs[0].get("top", [])) != 1:
        raise NetworkError(
            f"a deploy network has one Input layer with one top, the image (this one has {len(sources)} data or "
            "input layer(s))"
        )
    data_blob = str(inputs[0].first("top"))
    kept = [layer for layer in layers if layer is not inputs[0]]
    if not kept:
        raise NetworkError("the network has no layers besides its input")
    softmaxes = [layer for layer in kept if layer.first("type") == "Softmax"]
    if softmaxes:
        logits = str(softmaxes[-1].first("bottom"))
        softmaxes[-1].add("include", _rule("deploy"))
    else:
        logits = str(kept[-1].first("top"))
    names = {str(layer.first("name")) for layer in kept}
    loss = _layer(_unique("loss", names), "SoftmaxWithLoss", [logits, DIGITS_LABEL_BLOB], ["loss"])
    loss.add("exclude", _rule("deploy"))
    accuracy = _layer(_unique("accuracy", names), "Accuracy", [logits, DIGITS_LABEL_BLOB], ["accuracy"])
    accuracy.add("include", _rule("val"))
    out = Message()
    out.add("name", net.first("name") or "imported")
    if data_blob != "data":
        out.add("input", data_blob)  # names the blob DIGITS' data layer fills (digits/model/caffe/inputs.py)
    for layer in [*kept, loss, accuracy]:
        out.add("layer", layer)
    return HEADER.format(name=filename.replace("\n", " ")) + format_message(out)


def output_count(text: str, input_shape: tuple[int, int, int]) -> tuple[str, int]:
    """(the blob holding the logits, how many outputs it has per image) of a DIGITS network's deploy stage."""
    spec = analyze(text, stage="deploy", input_shape=input_shape, num_classes=0, trainable=False)
    shape = spec.blob_shapes.get(spec.output_blob) or ()
    count = 1
    for dim in shape:  # per image (the analysis leaves the batch out)
        count *= int(dim)
    return spec.output_blob, count
