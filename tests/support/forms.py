"""The dataset and model forms as the tests fill them: a working default, changed field by field."""

from __future__ import annotations


def dataset_form(folder=None, **fields) -> dict:
    """The image classification dataset form for `folder`'s class folders: gray 28x28 images named "shapes".
    A field given as None is left out (with folder None: no folder_train, for a zip upload)."""
    form = {
        "method": "folder",
        "folder_train": None if folder is None else str(folder),
        "resize_channels": "1",
        "resize_width": "28",
        "resize_height": "28",
        "dataset_name": "shapes",
        **fields,
    }
    return {k: v for k, v in form.items() if v is not None}


def model_form(dataset_id: str, **fields) -> dict:
    """The image classification model form: the standard LeNet in PyTorch, 2 epochs, seeded. None leaves a
    field out."""
    form = {
        "dataset": dataset_id,
        "model_name": "lenet",
        "method": "standard",
        "standard_networks": "lenet",
        "framework": "torch",
        "train_epochs": "2",
        "random_seed": "7",
        **fields,
    }
    return {k: v for k, v in form.items() if v is not None}
