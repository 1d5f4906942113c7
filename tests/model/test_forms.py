"""The model form answers 400 with field errors before any job exists."""

import pytest

from digits.status import Status
from tests.support.datasets import add_ready_dataset
from tests.support.forms import model_form


def create(client, form):
    return client.post("/models/images/classification/json", data=form)


def base(dataset_id, **extra):
    """LeNet in Caffe with the form's own defaults, changed by `extra`."""
    defaults = {"model_name": "m", "framework": "caffe", "train_epochs": None, "random_seed": None}
    return model_form(dataset_id, **{**defaults, **extra})


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"train_epochs": "-3"}, "train_epochs", "at least 1"),
        ({"learning_rate": "0"}, "learning_rate", "greater than 0"),
        ({"learning_rate": "fast"}, "learning_rate", "a number"),
        ({"batch_size": "0"}, "batch_size", "at least 1"),
        ({"model_name": ""}, "model_name", "required"),
        ({"solver_type": "LBFGS"}, "solver_type", "SGD"),
        ({"lr_policy": "cosine"}, "lr_policy", "fixed"),
        ({"lr_policy": "multistep", "lr_multistep_values": "50,x"}, "lr_multistep_values", ""),
        ({"standard_networks": "vgg"}, "standard_networks", "no standard network 'vgg'"),
        ({"standard_networks": "resnet18"}, "standard_networks", "not written for framework 'caffe'"),
        ({"dataset": "20000101-000000-dead"}, "dataset", "No dataset"),
        ({"use_mean": "median"}, "use_mean", "image"),
        ({"crop_size": "64"}, "crop_size", "larger than the dataset's 28x28"),
        ({"snapshot_interval": "0"}, "snapshot_interval", "greater than 0"),
    ],
)
def test_bad_fields(signed_in, workspace, dataset, change, field, words):
    r = create(signed_in, base(dataset.id, **change))
    assert r.status_code == 400, r.get_data(as_text=True)
    errors = r.get_json()["errors"]
    assert field in errors and words in " ".join(errors[field]), errors
    assert [j for j in workspace.store.all() if j.category == "model"] == []


def test_alexnet_needs_bigger_images_than_these(signed_in, dataset):
    r = create(signed_in, base(dataset.id, standard_networks="alexnet"))
    assert r.status_code == 400 and "Crop 227 is larger" in r.get_json()["errors"]["crop_size"][0]


PROTOTXT_SYNTAX = (
    'name: "x"\nlayer {\n  name: "c"\n  type: "Convolution"\n  bottom: "data"\n  top: "c"\n'
    "  convolution_param { num_output: 4 kernel_size: 3 \n}\n"
)


@pytest.mark.parametrize(
    "text, words",
    [
        (PROTOTXT_SYNTAX, ["line"]),
        ('name: "x"\nlayer { name: "f" type: "FancyLayer" bottom: "data" top: "f" }\n', ["FancyLayer"]),
        (
            'layer { name: "ip" type: "InnerProduct" bottom: "nothing" top: "ip"\n'
            "  inner_product_param { num_output: 3 } }\n",
            ["ip", "nothing"],
        ),
        (
            'layer { name: "big" type: "Convolution" bottom: "data" top: "big" convolution_param { num_output: 2 '
            "kernel_size: 40 } }\n",
            ["big", "28"],
        ),
    ],
)
def test_bad_custom_prototxt(signed_in, workspace, dataset, text, words):
    r = create(signed_in, base(dataset.id, method="custom", custom_network=text))
    assert r.status_code == 400
    message = " ".join(r.get_json()["errors"]["custom_network"])
    for word in words:
        assert word in message, message
    assert [j for j in workspace.store.all() if j.category == "model"] == []


def test_bad_custom_python_names_line_and_column(signed_in, dataset):
    text = "import torch\n\ndef build_model(*, num_classes, channels, height, width)\n    return None\n"
    r = create(signed_in, base(dataset.id, method="custom", framework="torch", custom_network=text))
    assert r.status_code == 400
    message = r.get_json()["errors"]["custom_network"][0]
    assert "line 3" in message and "column" in message


def test_a_failed_dataset_cannot_be_used(signed_in, workspace, shapes_dataset_dir):
    ds = add_ready_dataset(workspace, shapes_dataset_dir)
    ds.history.set(Status.ERROR, "broken")
    r = create(signed_in, base(ds.id))
    assert r.status_code == 400 and "ended Error" in r.get_json()["errors"]["dataset"][0]


def test_new_model_page_lists_datasets_and_networks(signed_in, dataset):
    html = signed_in.get("/models/images/classification/new", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert dataset.id in html and "ResNet-50" in html and "GoogLeNet" in html
    text = signed_in.get("/models/networks/caffe/lenet").get_data(as_text=True)
    assert 'type: "Convolution"' in text
    assert signed_in.get("/models/networks/torch/nope").status_code == 404


def test_pretrained_weights_must_be_a_readable_server_file(signed_in, dataset, tmp_path):
    r = create(signed_in, base(dataset.id, custom_network_snapshot=str(tmp_path / "missing.pt")))
    assert r.status_code == 400 and "does not exist" in r.get_json()["errors"]["custom_network_snapshot"][0]
