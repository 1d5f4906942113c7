"""Property-based fuzzing: whatever a form or a prototxt holds, the answer is a 4xx with a message, never a 500."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digits.model.caffe import analyze
from digits.webapp import create_app
from tests.support.apps import app_settings, sign_in
from tests.support.fakejobs import fake_job

DATASET_FIELDS = [
    "dataset_name",
    "method",
    "folder_train",
    "folder_pct_val",
    "folder_pct_test",
    "resize_channels",
    "resize_width",
    "resize_height",
    "resize_mode",
    "encoding",
    "backend",
    "compression",
    "has_val_folder",
    "folder_val",
    "folder_train_min_per_class",
    "folder_train_max_per_class",
    "textfile_use_local_files",
    "textfile_local_train_images",
    "textfile_local_labels_file",
    "random_seed",
]
MODEL_FIELDS = [
    "dataset",
    "model_name",
    "framework",
    "method",
    "standard_networks",
    "custom_network",
    "train_epochs",
    "learning_rate",
    "batch_size",
    "solver_type",
    "lr_policy",
    "lr_step_size",
    "lr_multistep_values",
    "momentum",
    "weight_decay",
    "crop_size",
    "use_mean",
    "aug_flip",
    "aug_rot",
    "random_seed",
    "snapshot_interval",
    "val_interval",
    "select_gpus",
    "custom_network_snapshot",
]
values = st.one_of(
    st.text(max_size=40),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "",
            "folder",
            "textfile",
            "caffe",
            "torch",
            "standard",
            "custom",
            "lenet",
            "none",
            "true",
            "false",
            "nan",
            "-1",
            "0",
            "1e309",
            "../../etc",
            "/etc/passwd",
        ]
    ),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "roots").mkdir()
    # An empty data root: every server path a fuzzer invents is refused, none is ever scanned.
    app = create_app(app_settings(root / "jobs", data_roots=[str(root / "roots")]))
    yield sign_in(app, "fuzz")
    app.extensions["digits"].close()


@SETTINGS
@given(st.dictionaries(st.sampled_from(DATASET_FIELDS), values, max_size=12))
def test_dataset_form_never_fails_with_a_500(client, form):
    r = client.post("/datasets/images/classification/json", data=form)
    assert 400 <= r.status_code < 500, (form, r.status_code, r.get_data(as_text=True)[:300])
    assert r.get_json()["error"]["message"]


@SETTINGS
@given(st.dictionaries(st.sampled_from(MODEL_FIELDS), values, max_size=14))
def test_model_form_never_fails_with_a_500(client, form):
    r = client.post("/models/images/classification/json", data=form)
    assert 400 <= r.status_code < 500, (form, r.status_code, r.get_data(as_text=True)[:300])


TOKENS = [
    "layer",
    "{",
    "}",
    "name:",
    "type:",
    "bottom:",
    "top:",
    '"data"',
    '"conv"',
    '"Convolution"',
    '"Pooling"',
    '"InnerProduct"',
    '"ReLU"',
    '"Concat"',
    '"Eltwise"',
    '"SoftmaxWithLoss"',
    '"Input"',
    '"Data"',
    "convolution_param",
    "pooling_param",
    "inner_product_param",
    "num_output:",
    "kernel_size:",
    "stride:",
    "pad:",
    "pool:",
    "MAX",
    "AVE",
    "include",
    "stage:",
    '"train"',
    '"deploy"',
    "input_param",
    "shape",
    "dim:",
    "1",
    "3",
    "0",
    "-1",
    "28",
    "1e9",
    "#",
    "\n",
    ":",
    "[",
    "]",
    "<",
    ">",
    "'",
    '"',
    "\\",
]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join)))
def test_prototxt_analysis_raises_only_its_own_errors(text):
    for stage in ("train", "deploy"):
        try:
            analyze(text, stage=stage, input_shape=(1, 28, 28), num_classes=3)
        except ValueError as e:  # TextFormatError, SchemaError, NetworkError: all say what is wrong
            assert str(e)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_custom_network_in_the_form_never_fails_with_a_500(client, text):
    r = client.post("/models/visualize/json", data={"custom_network": text, "framework": "caffe"})
    assert r.status_code in (200, 400), (text, r.status_code)


def test_a_prototxt_nested_5000_deep_is_a_400_naming_the_line(client):
    deep = "name: 'deep'\n" + "layer { " * 5000 + "}" * 5000
    dataset = fake_job(name="for-deep", category="dataset")
    dataset.extra["image"] = {"channels": 1, "width": 28, "height": 28, "resize_mode": "squash", "encoding": "png"}
    client.application.extensions["digits"].add_job(dataset)
    form = {"dataset": dataset.id, "model_name": "deep", "method": "custom", "framework": "caffe"}
    r = client.post("/models/images/classification/json", data={**form, "custom_network": deep})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    (message,) = r.get_json()["errors"]["custom_network"]
    assert message.startswith("line 2, column ") and "nested more than 100 messages deep" in message
    r = client.post("/models/visualize/json", data={"custom_network": deep, "framework": "caffe"})
    assert r.status_code in (200, 400)
    error = r.get_json()["error"]
    assert error["line"] == 2 and "nested more than 100 messages deep" in error["message"]
