"""Visualize and the lr policy preview on the new-model page."""

import pytest

BAD_SHAPE = (
    'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }\n'
    'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 8 '
    "kernel_size: 5 } }\n"
    'layer { name: "big" type: "Convolution" bottom: "conv" top: "big" convolution_param { num_output: 2 '
    "kernel_size: 400 } }\n"
)
BAD_BOTTOM = (
    'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }\n'
    'layer { name: "ip" type: "InnerProduct" bottom: "nope" top: "ip" inner_product_param { num_output: 3 } }\n'
)


# Without a dataset the drawing assumes 256x256 color images; 10 classes given: the 1000-class counts of AlexNet
# (60,965,224) and GoogLeNet (6,998,552) less 990 classes of their last layer (4096 and 1024 inputs + bias).
@pytest.mark.parametrize(
    "name, layers, params", [("alexnet", 24, 60_965_224 - 990 * 4097), ("googlenet", 143, 6_998_552 - 990 * 1025)]
)
def test_standard_networks_are_drawn_with_shapes(client, name, layers, params):
    form = {"standard_networks": name, "framework": "caffe", "num_classes": "10"}
    r = client.post("/models/visualize/json", data=form)
    graph = r.get_json()
    assert r.status_code == 200 and "error" not in graph
    assert len(graph["nodes"]) == layers
    assert sum(n["param_count"] for n in graph["nodes"]) == params
    assert all(n["output_shapes"] for n in graph["nodes"])


def test_lenet_on_a_dataset_uses_its_shape_and_classes(signed_in, dataset):
    graph = signed_in.post(
        "/models/visualize/json", data={"standard_networks": "lenet", "dataset": dataset.id}
    ).get_json()
    shapes = {n["name"]: n["output_shapes"] for n in graph["nodes"]}
    assert shapes["conv1"]["conv1"] == [20, 24, 24] and shapes["ip2"]["ip2"] == [3]
    assert sum(n["param_count"] for n in graph["nodes"]) == 431_080 - 7 * 501  # 3 classes, not 10


@pytest.mark.parametrize("text, layer, words", [(BAD_SHAPE, "big", "kernel 400"), (BAD_BOTTOM, "ip", "nope")])
def test_a_faulty_layer_is_marked_and_named(client, text, layer, words):
    graph = client.post("/models/visualize/json", data={"custom_network": text, "framework": "caffe"}).get_json()
    assert graph["error"]["layer"] == layer and words in graph["error"]["message"]
    marked = [n["name"] for n in graph["nodes"] if n.get("error")]
    assert marked == [layer]


def test_python_networks_are_not_drawn_in_the_web_process(client):
    r = client.post("/models/visualize/json", data={"standard_networks": "resnet18", "framework": "torch"})
    assert r.status_code == 400 and "PyTorch" in r.get_json()["error"]["message"]


def test_lr_policy_preview(client):
    js = client.get(
        "/models/lr_policy/json?lr_policy=step&learning_rate=0.1&lr_step_size=50&lr_step_gamma=0.5"
    ).get_json()
    points = dict((pct, lr) for pct, lr in js["points"])
    assert points[0.0] == pytest.approx(0.1) and points[49.0] == pytest.approx(0.1)
    assert points[50.0] == pytest.approx(0.05) and points[100.0] == pytest.approx(0.025)
    r = client.get("/models/lr_policy/json?lr_policy=multistep&lr_multistep_values=60,20")
    assert r.status_code == 400 and "lr_multistep_values" in r.get_json()["errors"]
