"""The New Model form's "Frozen layers" (frozen_layers): layers whose weights stay as they start (torch-free).

A comma-separated list of layer names or name prefixes ("conv" freezes conv1 to conv5). A Caffe network's layer
names are known here, so a name that matches none is the field's error; a PyTorch network's modules exist only
once its code runs, in the training worker, which fails the task naming the field and the name
(digits/engine/finetune.py).
"""

from __future__ import annotations

from digits.forms import FormReader
from digits.model.caffe import CaffeError
from digits.model.caffe.analysis import select_layers
from digits.model.caffe.textformat import parse
from digits.model.caffe.upgrade import upgrade_net

FIELD = "frozen_layers"
LABEL = "Frozen layers"
MAX_NAMES = 1000


def caffe_layer_names(text: str) -> list[str] | None:
    """The names of a Caffe network's train-stage layers (what the training worker builds); None when the text
    does not parse (the network field reports that)."""
    try:
        net = parse(text)
        upgrade_net(net)
        return [layer.first("name", "") for layer in select_layers(net, "train")]
    except (CaffeError, ValueError):
        return None


def read_frozen_layers(r: FormReader, framework: str, text: str) -> list[str]:
    """The frozen layer names or prefixes, in the order given, each once."""
    r.errors.labels[FIELD] = LABEL
    raw = r.text(FIELD, max_length=20_000)
    if not raw:
        return []
    names = list(dict.fromkeys(part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()))
    if len(names) > MAX_NAMES:
        r.error(FIELD, f"At most {MAX_NAMES} layer names (got {len(names)}).")
        return []
    if framework == "caffe" and text:
        known = caffe_layer_names(text)
        if known is not None:
            unknown = [n for n in names if not any(layer.startswith(n) for layer in known)]
            if unknown:
                which = ", ".join(repr(n) for n in unknown[:5]) + (" and more" if len(unknown) > 5 else "")
                r.error(FIELD, f"The network has no layer named or starting with {which}.")
    return names
