"""DIGITS' digits/model/images/classification/test_views.py, ported: models trained on DIGITS' imageset through
DIGITS' form (method=custom with DIGITS' own test network: one InnerProduct on the data, no data layers, which
DIGITS adds), then classified, downloaded, cloned, retrained, swept and deleted through DIGITS' routes.

ours                                               DIGITS (the Caffe classes; the Torch ones run the same tests)
test_new_model_page                                BaseTestViews.test_page_model_new
test_a_model_that_does_not_exist                   BaseTestViews.test_nonexistent_model
test_visualize_network                             BaseTestViews.test_visualize_network (Caffe)
test_customize[caffe|torch]                        BaseTestViews.test_customize
test_create_json                                   BaseTestCreation.test_create_json
test_create_delete                                 BaseTestCreation.test_create_delete
test_create_wait_delete                            BaseTestCreation.test_create_wait_delete
test_create_abort_delete                           BaseTestCreation.test_create_abort_delete
test_snapshot_interval[...]                        BaseTestCreation.test_snapshot_interval_2, _0_5
test_classify_one_mean[image|pixel|none]           BaseTestCreation.test_classify_one_mean_image, _pixel, _none (*)
test_retrain, test_retrain_twice                   BaseTestCreation.test_retrain, test_retrain_twice
test_bad_network_definition_caffe                  BaseTestCreation.test_bad_network_definition (Caffe) (**)
test_bad_network_definition_torch                  BaseTestCreation.test_bad_network_definition (Torch)
test_clone                                         BaseTestCreation.test_clone (***)
test_download[tar|zip|tar.gz|tar.bz2]              BaseTestCreated.test_download
test_index_json, test_model_json                   BaseTestCreated.test_index_json, test_model_json
test_edit_name, test_edit_notes                    BaseTestCreated.test_edit_name, test_edit_notes
test_classify_one                                  BaseTestCreated.test_classify_one
test_classify_one_json                             BaseTestCreated.test_classify_one_json
test_classify_many, ..._from_folder,               BaseTestCreated.test_classify_many, _from_folder,
  ..._invalid_ground_truth, ..._json                 _invalid_ground_truth, _json
test_top_n, test_top_n_from_folder                 BaseTestCreated.test_top_n, test_top_n_from_folder
test_inference_while_training                      BaseTestCreated.test_inference_while_training
test_variant_trains_and_classifies[...]            TestCaffeCreatedWideMoreNumOutput, TestCaffeCreatedCropInForm,
                                                   TestCaffeCreatedCropInNetwork, TestCaffeCreatedTallMultiStepLR,
                                                   TestCaffeLeNet, TestTorchCreatedUnencodedShuffle,
                                                   TestTorchCreatedDataAug, TestTorchCreatedWideMultiStepLR,
                                                   TestTorchCreatedHdf5, TestTorchCreatedTallHdf5Shuffle, and
                                                   batch accumulation (TestBatchAccumulationCaffe's model)
test_a_pytorch_network_like_digits_torch_one       the Torch classes' TORCH_NETWORK, in PyTorch
test_create_model_deleted_dataset                  BaseTestDatasetModelInteractions.test_create_model_deleted_dataset
test_create_model_running_dataset                  ...test_create_model_running_dataset
test_delete_dataset_dependent_model                ...test_delete_dataset_dependent_model
test_delete_running_dataset_dependent_model        ...test_delete_running_dataset_dependent_model
test_sweep                                         TestSweepCreation.test_sweep

(*) DIGITS read each prediction from the classify_one page; the page is test_classify_one's concern (answered to
    a client without an Accept header as DIGITS did: 200, the page itself), so these read classify_one.json.
(**) DIGITS created the job (200) and it ended in Error naming BogusCode; ours checks a Caffe network when the
     form is posted and refuses it, 400 naming the layer type, no job made.
(***) DIGITS compared the two models' JSON less id, directory, creation time and job id, and the jobs' form_data
      from its scheduler; ours compares the JSON less those and the times and metrics our JSON adds, and the
      forms from GET /jobs/<id>/json.
"""

from __future__ import annotations

import io
import os
import re
from html.parser import HTMLParser

import pytest

from digits.model.standard import get_network
from tests.digits_views.conftest import start_digits, stop_digits
from tests.support.digits_networks import DIGITS_CAFFE_NETWORK
from tests.support.waiting import LONG_S, wait_until

pytestmark = pytest.mark.slow

CAFFE_NETWORK = DIGITS_CAFFE_NETWORK
# DIGITS' CropInNetwork network: the same, after two data layers that crop to 8x8.
CROP_IN_NETWORK = (
    "".join(
        f'layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: {phase} }}'
        " transform_param { crop_size: 8 } }\n"
        for phase in ("TRAIN", "TEST")
    )
    + CAFFE_NETWORK
)
WIDE_OUTPUT_NETWORK = CAFFE_NETWORK.replace(
    'top: "output"\n}', 'top: "output"\n    inner_product_param { num_output: 1000 }\n}', 1
)
# DIGITS' Torch test network (flatten, one Linear filled with zeros) as a PyTorch network file.
PYTORCH_NETWORK = """
from torch import nn


def build_model(*, num_classes, channels, height, width):
    linear = nn.Linear(channels * height * width, num_classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(nn.Flatten(), linear)
"""
CREATE = "/models/images/classification"


class Predictions(HTMLParser):
    """The labels of a classify_one page's predictions, best first. DIGITS' page listed them as ul.list-group li
    "percent% label"; ours is table#predictions, a row per class with its label in the row's header cell."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self._in_table = False
        self._th: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == "predictions":
            self._in_table = True
        elif tag == "th" and self._in_table and dict(attrs).get("scope") == "row":
            self._th = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif tag == "th" and self._th is not None:
            self.labels.append("".join(self._th).strip())
            self._th = None

    def handle_data(self, data):
        if self._th is not None:
            self._th.append(data)


def model_fields(dataset_id: str, network: str = CAFFE_NETWORK, **fields) -> dict:
    """DIGITS' create_model form (BaseViewsTestWithDataset.create_model)."""
    return {
        "model_name": "test_model",
        "group_name": "test_group",
        "dataset": dataset_id,
        "method": "custom",
        "custom_network": network,
        "batch_size": "10",
        "train_epochs": "1",
        "framework": "caffe",
        "random_seed": str(0xCAFEBABE),
        "shuffle": "false",
        **fields,
    }


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    client = start_digits(tmp_path_factory.mktemp("digits-models"), inference=True)
    yield client
    stop_digits(client)


@pytest.fixture(scope="module")
def dataset(digits) -> str:
    job_id = digits.create_dataset(json=True)
    assert digits.wait(job_id, "datasets") == "Done"
    return job_id


@pytest.fixture(scope="module")
def model(digits, dataset) -> str:
    job_id = digits.create_model(json=True, **model_fields(dataset))
    assert digits.wait(job_id, "models") == "Done"
    assert digits.workspace.inference.wait_ready(LONG_S)
    return job_id


def image_upload(digits, category: str, index: int = 0) -> tuple[io.BytesIO, str]:
    with open(os.path.join(digits.imageset, digits.paths[category][index]), "rb") as fh:
        return io.BytesIO(fh.read()), "image.png"


def image_list(digits, absolute: bool = True, label=lambda label_id: label_id) -> tuple[io.BytesIO, str]:
    lines = ""
    for label_id, paths in enumerate(digits.paths.values()):
        for path in paths:
            lines += f"{os.path.join(digits.imageset, path) if absolute else path} {label(label_id)}\n"
    return io.BytesIO(lines.encode()), "images.txt"


def classify_one_json(digits, job_id: str, category: str, index: int = 0) -> list:
    r = digits.http.post(
        f"{CREATE}/classify_one.json?job_id={job_id}",
        data={"image_file": image_upload(digits, category, index), "show_visualizations": "y"},
    )
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return r.get_json()["predictions"]


# ---- pages and helpers (BaseTestViews) -----------------------------------------------------------------------------
def test_new_model_page(digits):
    r = digits.http.get(f"{CREATE}/new")
    assert r.status_code == 200 and "New Image Classification Model" in r.get_data(as_text=True)


def test_a_model_that_does_not_exist(digits):
    assert not digits.exists("foo", "models")


def test_visualize_network(digits):
    r = digits.http.post("/models/visualize-network?framework=caffe", data={"custom_network": CAFFE_NETWORK})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert "hidden" in [node["name"] for node in r.get_json()["nodes"]]


@pytest.mark.parametrize("framework", ["caffe", "torch"])
def test_customize(digits, framework):
    r = digits.http.post(f"/models/customize?network=lenet&framework={framework}")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["network"] == get_network("lenet").text(framework)


# ---- creating (BaseTestCreation) -----------------------------------------------------------------------------------
def test_create_json(digits, dataset, gates):
    with digits.slots_held(gates):
        job_id = digits.create_model(json=True, **model_fields(dataset))
        assert digits.abort(job_id, "models") == 200
    assert digits.wait(job_id, "models") == "Aborted"


def test_create_delete(digits, dataset):
    job_id = digits.create_model(**model_fields(dataset))
    assert digits.exists(job_id, "models")
    assert digits.delete(job_id, "models") == 200
    assert not digits.exists(job_id, "models")


def test_create_wait_delete(digits, dataset):
    job_id = digits.create_model(**model_fields(dataset))
    assert digits.wait(job_id, "models") == "Done"
    assert digits.delete(job_id, "models") == 200
    assert not digits.exists(job_id, "models")


def test_create_abort_delete(digits, dataset, gates):
    with digits.slots_held(gates):
        job_id = digits.create_model(**model_fields(dataset))
        assert digits.abort(job_id, "models") == 200
    assert digits.delete(job_id, "models") == 200
    assert not digits.exists(job_id, "models")


@pytest.mark.parametrize(
    "fields, check",
    [
        ({"snapshot_interval": "0.5"}, lambda snapshots: len(snapshots) > 1),
        ({"train_epochs": "4", "snapshot_interval": "2"}, lambda snapshots: len(snapshots) == 2),
    ],
    ids=["interval_0.5", "4_epochs_interval_2"],
)
def test_snapshot_interval(digits, dataset, fields, check):
    job_id = digits.create_model(**model_fields(dataset, **fields))
    assert digits.wait(job_id, "models") == "Done"
    r = digits.http.get(f"/models/{job_id}.json")
    assert r.status_code == 200 and check(r.get_json()["snapshots"]), r.get_json()["snapshots"]


@pytest.mark.parametrize("mean", ["image", "pixel", "none"])
def test_classify_one_mean(digits, dataset, mean):
    job_id = digits.create_model(**model_fields(dataset, use_mean=mean))
    assert digits.wait(job_id, "models") == "Done"
    assert digits.workspace.inference.wait_ready(LONG_S)
    for category in digits.paths:
        predictions = classify_one_json(digits, job_id, category)
        if mean != "none":  # DIGITS did not expect the right class without the mean
            assert predictions[0][0] == category, predictions


@pytest.fixture(scope="module")
def retrained(digits, dataset, model) -> str:
    """DIGITS' test_retrain: a model trained from the last snapshot of the module's model."""
    snapshots = digits.info(model, "models")["snapshots"]
    assert snapshots
    fields = model_fields(dataset, method="previous", previous_networks=model, **{f"{model}-snapshot": snapshots[-1]})
    job_id = digits.create_model(**fields)
    assert digits.wait(job_id, "models") == "Done"
    return job_id


def test_retrain(digits, retrained):
    assert digits.info(retrained, "models")["snapshots"]


def test_retrain_twice(digits, dataset, retrained):
    """From a model that itself started from another's weights, with -1: the weights it started from."""
    fields = model_fields(dataset, method="previous", previous_networks=retrained, **{f"{retrained}-snapshot": "-1"})
    job_id = digits.create_model(**fields)
    assert digits.wait(job_id, "models") == "Done"


def test_bad_network_definition_caffe(digits, dataset):
    bogus = CAFFE_NETWORK.replace("'InnerProduct'", "'BogusCode'")
    before = len(digits.workspace.store.all())
    r = digits.http.post(f"{CREATE}.json", data=model_fields(dataset, network=bogus))
    assert r.status_code == 400 and "BogusCode" in r.get_json()["error"]["message"]
    assert list(r.get_json()["errors"]) == ["custom_network"]
    assert len(digits.workspace.store.all()) == before


def test_bad_network_definition_torch(digits, dataset):
    bogus = "model = BogusCode(0)\n\n\ndef build_model(**kw):\n    return model\n"
    job_id = digits.create_model(json=True, **model_fields(dataset, network=bogus, framework="torch"))
    assert digits.wait(job_id, "models") == "Error"
    page = digits.http.get(f"/models/{job_id}")
    assert page.status_code == 200 and "BogusCode" in page.get_data(as_text=True)


# Our model JSON's additions that say when, how fast, and what each run measured.
RUN_FIELDS = ("id", "directory", "creation time", "job id", "history", "elapsed", "metrics")


def test_clone(digits, dataset):
    options = {
        "shuffle": "true",
        "snapshot_interval": "2.0",
        "lr_step_size": "33.0",
        "lr_inv_power": "0.5",
        "lr_inv_gamma": "0.1",
        "lr_poly_power": "3.0",
        "lr_exp_gamma": "0.9",
        "use_mean": "image",
        "lr_multistep_gamma": "0.5",
        "lr_policy": "exp",
        "val_interval": "3.0",
        "random_seed": "123",
        "learning_rate": "0.0125",
        "lr_step_gamma": "0.1",
        "lr_sigmoid_step": "50.0",
        "lr_sigmoid_gamma": "0.1",
        "lr_multistep_values": "50,85",
    }
    first = digits.create_model(**model_fields(dataset, **options))
    assert digits.wait(first, "models") == "Done"
    second = digits.create_model(clone=first)
    assert digits.wait(second, "models") == "Done"
    one, two = ({k: v for k, v in digits.info(j, "models").items() if k not in RUN_FIELDS} for j in (first, second))
    assert one == two
    forms = [digits.http.get(f"/jobs/{j}/json").get_json()["form"] for j in (first, second)]
    assert forms[0] == forms[1]


# ---- a model that has been trained (BaseTestCreated) --------------------------------------------------------------
@pytest.mark.parametrize("extension", ["tar", "zip", "tar.gz", "tar.bz2"])
def test_download(digits, model, extension):
    r = digits.http.get(f"/models/{model}/download.{extension}")
    assert r.status_code == 200 and r.data


def test_index_json(digits, model):
    r = digits.http.get("/index.json")
    assert r.status_code == 200 and model in [m["id"] for m in r.get_json()["models"]]


def test_model_json(digits, dataset, model):
    r = digits.http.get(f"/models/{model}.json")
    assert r.status_code == 200
    content = r.get_json()
    assert content["id"] == model and content["dataset_id"] == dataset and content["snapshots"]


def test_edit_name(digits, model):
    assert digits.edit(model, name="new name") == 200
    assert digits.info(model, "models")["name"] == "new name"


def test_edit_notes(digits, model):
    assert digits.edit(model, notes="new notes") == 200
    assert digits.http.get(f"/jobs/{model}/json").get_json()["notes"] == "new notes"


def test_classify_one(digits, model):
    category = next(iter(digits.paths))
    r = digits.http.post(
        f"{CREATE}/classify_one?job_id={model}",
        data={"image_file": image_upload(digits, category), "show_visualizations": "y"},
    )
    assert r.status_code == 200 and r.mimetype == "text/html", (r.status_code, r.mimetype)
    page = Predictions()
    page.feed(r.get_data(as_text=True))
    assert page.labels and page.labels[0] == category, page.labels


def test_classify_one_json(digits, model):
    category = list(digits.paths)[-1]
    assert classify_one_json(digits, model, category, index=-1)[0][0] == category


def test_classify_many(digits, model):
    r = digits.http.post(f"{CREATE}/classify_many?job_id={model}", data={"image_list": image_list(digits)})
    assert r.status_code == 200, r.get_data(as_text=True)[:500]


def test_classify_many_from_folder(digits, model):
    form = {"image_list": image_list(digits, absolute=False), "image_folder": digits.imageset}
    r = digits.http.post(f"{CREATE}/classify_many?job_id={model}", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]


def test_classify_many_invalid_ground_truth(digits, model):
    """Labels of -1 and past the last class: still classified."""
    form = {"image_list": image_list(digits, label=lambda label_id: 3 * label_id - 1)}
    r = digits.http.post(f"{CREATE}/classify_many?job_id={model}", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]


def test_classify_many_json(digits, model):
    r = digits.http.post(f"{CREATE}/classify_many.json?job_id={model}", data={"image_list": image_list(digits)})
    assert r.status_code == 200
    classifications = r.get_json()["classifications"]
    for category, paths in digits.paths.items():
        assert classifications[os.path.join(digits.imageset, paths[0])][0][0] == category


@pytest.mark.parametrize("absolute", [True, False], ids=["top_n", "top_n_from_folder"])
def test_top_n(digits, model, absolute):
    form = {"image_list": image_list(digits, absolute=absolute)}
    if not absolute:
        form["image_folder"] = digits.imageset
    r = digits.http.post(f"{CREATE}/top_n?job_id={model}", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    body = r.get_data(as_text=True)
    for category in digits.paths:
        assert category in body


def test_inference_while_training(digits, dataset, model):
    long_one = digits.create_model(**model_fields(dataset, train_epochs="1000"))
    try:
        wait_until(lambda: digits.status(long_one, "models") == "Running", LONG_S, "the long training to run")
        category = list(digits.paths)[-1]
        assert classify_one_json(digits, model, category, index=-1)
        assert digits.status(long_one, "models") == "Running"
    finally:
        assert digits.delete(long_one, "models") == 200


# ---- DIGITS' TestCaffeCreated* / TestTorchCreated* classes --------------------------------------------------------
# variant: (dataset fields, model fields). Each trains once and classifies an image of every class.
VARIANTS = {
    "wide_more_num_output": ({"resize_width": "20"}, {"custom_network": WIDE_OUTPUT_NETWORK}),
    "crop_in_form": ({}, {"crop_size": "8"}),
    "crop_in_network": ({}, {"custom_network": CROP_IN_NETWORK}),
    "tall_multistep_lr": ({"resize_height": "20"}, {"lr_policy": "multistep", "lr_multistep_values": "50,75,90"}),
    "wide_multistep_lr": ({"resize_width": "20"}, {"lr_policy": "multistep", "lr_multistep_values": "50,75,90"}),
    "unencoded_shuffle": ({"encoding": "none"}, {"shuffle": "true"}),
    "data_aug": (
        {"resize_height": "20"},
        {
            "train_epochs": "2",
            "aug_flip": "fliplrud",
            "aug_quad_rot": "rotall",
            "aug_rot": "45",
            "aug_scale": "0.07",
            "aug_noise": "0.03",
            "aug_hsv_use": "True",
            "aug_hsv_h": "0.02",
            "aug_hsv_s": "0.04",
            "aug_hsv_v": "0.06",
        },
    ),
    "lenet": (
        {"resize_width": "28", "resize_height": "28"},
        {"custom_network": get_network("lenet").text("caffe")},
    ),
    "hdf5": ({"backend": "hdf5"}, {}),
    "tall_hdf5_shuffle": ({"backend": "hdf5", "resize_height": "20"}, {"shuffle": "true"}),
    "batch_accumulation": ({}, {"batch_accumulation": "2"}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_trains_and_classifies(digits, variant):
    dataset_fields, fields = VARIANTS[variant]
    dataset_id = digits.create_dataset(json=True, **dataset_fields)
    assert digits.wait(dataset_id, "datasets") == "Done"
    job_id = digits.create_model(json=True, **model_fields(dataset_id, **fields))
    assert digits.wait(job_id, "models") == "Done"
    assert digits.info(job_id, "models")["snapshots"]
    assert digits.workspace.inference.wait_ready(LONG_S)
    for category in digits.paths:
        assert classify_one_json(digits, job_id, category)[0][0] == category


def test_a_pytorch_network_like_digits_torch_one(digits, dataset):
    job_id = digits.create_model(json=True, **model_fields(dataset, network=PYTORCH_NETWORK, framework="torch"))
    assert digits.wait(job_id, "models") == "Done"
    assert digits.workspace.inference.wait_ready(LONG_S)
    for category in digits.paths:
        assert classify_one_json(digits, job_id, category)[0][0] == category


# ---- datasets and models together (BaseTestDatasetModelInteractions) ---------------------------------------------
def test_create_model_deleted_dataset(digits):
    dataset_id = digits.create_dataset()
    assert digits.delete(dataset_id, "datasets") == 200
    assert not digits.exists(dataset_id, "datasets")
    r = digits.http.post(CREATE, data=model_fields(dataset_id))
    assert not 300 <= r.status_code <= 310 and r.status_code == 400
    assert re.search(r"[Dd]ataset", r.get_data(as_text=True))


def test_create_model_running_dataset(digits, gates):
    with digits.slots_held(gates):
        dataset_id = digits.create_dataset()
        model_id = digits.create_model(**model_fields(dataset_id))
        assert digits.status(dataset_id, "datasets") != "Done"
        assert digits.status(model_id, "models") in ("Initialized", "Waiting")
    assert digits.wait(dataset_id, "datasets") == "Done"
    wait_until(lambda: digits.status(model_id, "models") in ("Running", "Done"), LONG_S, "the model to start")
    digits.abort(model_id, "models")  # DIGITS did not mind whether it had finished meanwhile
    assert digits.wait(model_id, "models") in ("Aborted", "Done")


def test_delete_dataset_dependent_model(digits):
    dataset_id = digits.create_dataset()
    model_id = digits.create_model(**model_fields(dataset_id))
    assert digits.wait(dataset_id, "datasets") == "Done"
    assert digits.delete(dataset_id, "datasets") == 403
    digits.abort(model_id, "models")
    assert digits.wait(model_id, "models") in ("Aborted", "Done")
    assert digits.exists(dataset_id, "datasets")


def test_delete_running_dataset_dependent_model(digits, gates):
    with digits.slots_held(gates):
        dataset_id = digits.create_dataset()
        model_id = digits.create_model(**model_fields(dataset_id))
        assert digits.delete(dataset_id, "datasets") == 403
        assert digits.abort(dataset_id, "datasets") == 200
        assert digits.abort(model_id, "models") == 200
    assert digits.exists(dataset_id, "datasets")


# ---- sweeps (TestSweepCreation) -----------------------------------------------------------------------------------
def test_sweep(digits, dataset):
    job_ids = digits.create_model(
        json=True, **model_fields(dataset, learning_rate="[0.01, 0.02]", batch_size="[8, 10]")
    )
    assert len(job_ids) == 4
    for job_id in job_ids:
        assert digits.wait(job_id, "models") == "Done"
        assert digits.delete(job_id, "models") == 200
        assert not digits.exists(job_id, "models")
