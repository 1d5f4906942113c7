"""Upload a pretrained model (POST /pretrained_models/new): Caffe, PyTorch state dicts and TorchScript archives
imported by the real worker, classified by the real inference workers as real Caffe or the source module does,
refused with the field named, and fine-tuned from."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from digits.engine.inference.model import LoadedModel
from digits.formats.caffe_pb import write_mean
from digits.inference.app import install
from digits.inference.spec import model_spec
from digits.model.standard import get_network
from digits.webapp import create_app
from tests.model.conftest import shapes_dataset_dir  # noqa: F401 - a session fixture
from tests.support import ROOT
from tests.support.apps import app_settings, sign_in
from tests.support.datasets import add_ready_dataset
from tests.support.forms import model_form
from tests.support.waiting import LONG_S, record

pytestmark = pytest.mark.slow  # real import, inference and training workers
LENET_DEPLOY = ROOT / "tests/data/caffe_nets/bvlc_caffe/examples/mnist/lenet.prototxt"
DIGITS_LABELS = [str(d) for d in range(10)]
COLOR_DEPLOY = """name: "tiny-color"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.01 }
                      bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc"
  inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "constant" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


class Server:
    def __init__(self, app):
        self.app = app
        self.workspace = app.extensions["digits"]
        self.recorder = record(self.workspace)
        self.client = sign_in(app)

    def upload(self, files: dict[str, tuple[bytes, str]], **fields):
        form = {
            "job_name": "imported",
            "framework": "caffe",
            "image_type": "1",
            "width": "28",
            "height": "28",
            "resize_mode": "squash",
            **fields,
        }
        form.update({name: (io.BytesIO(data), filename) for name, (data, filename) in files.items()})
        return self.client.post("/pretrained_models/new/json", data=form, content_type="multipart/form-data")

    def imported(self, files, **fields) -> tuple[str, dict]:
        """Upload, wait for the import to end; (job id, the model's JSON twin)."""
        r = self.upload(files, **fields)
        assert r.status_code == 200, r.get_data(as_text=True)
        job_id = r.get_json()["id"]
        self.recorder.wait_status(job_id, timeout=LONG_S)
        return job_id, self.client.get(f"/models/{job_id}/json").get_json()

    def classify(self, job_id: str, image: bytes, **fields) -> dict:
        form = {"job_id": job_id, "image_file": (io.BytesIO(image), "image.png"), **fields}
        r = self.client.post("/models/images/classification/classify_one/json", data=form)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    def loaded(self, job_id: str) -> LoadedModel:
        """The model as an inference worker loads it (same spec, same code), in this process."""
        job = self.workspace.store.get(job_id)
        return LoadedModel(model_spec(job, self.workspace.store.job_dir(job_id), None), torch.device("cpu"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = create_app(app_settings(tmp_path_factory.mktemp("pretrained") / "jobs", cpu_slots=2, inference_workers=1))
    pool = install(app)
    yield Server(app)
    pool.close()
    app.extensions["digits"].close()


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array.squeeze()).save(buf, "PNG")
    return buf.getvalue()


def gray_image(seed: int = 1) -> bytes:
    return png(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8))


def labels_file(labels) -> tuple[bytes, str]:
    return ("\n".join(labels) + "\n").encode(), "labels.txt"


@pytest.fixture(scope="module")
def caffe_lenet(caffe, tmp_path_factory) -> tuple[object, bytes]:
    """BVLC's LeNet deploy network filled by real Caffe (conv1 scaled for 0..255 inputs) and saved as .caffemodel:
    (the pycaffe net, the .caffemodel's bytes)."""
    folder = tmp_path_factory.mktemp("caffe-lenet")
    caffe.set_random_seed(3)
    net = caffe.Net(str(LENET_DEPLOY), caffe.TEST)
    net.params["conv1"][0].data[...] /= 64.0
    net.params["ip2"][0].data[...] *= 4.0
    net.save(str(folder / "lenet.caffemodel"))
    net.blobs["data"].reshape(1, 1, 28, 28)
    net.reshape()
    return net, (folder / "lenet.caffemodel").read_bytes()


def caffe_files(weights: bytes, labels=DIGITS_LABELS) -> dict:
    return {
        "model_def_file": (LENET_DEPLOY.read_bytes(), "lenet.prototxt"),
        "weights_file": (weights, "lenet.caffemodel"),
        "labels_file": labels_file(labels),
    }


@pytest.fixture(scope="module")
def lenet_import(server, caffe_lenet) -> str:
    job_id, info = server.imported(caffe_files(caffe_lenet[1]), job_name="bvlc lenet")
    assert info["status"] == "Done", info["error"]
    return job_id


def test_caffe_lenet_classifies_as_real_caffe(server, caffe_lenet, lenet_import):
    net, _ = caffe_lenet
    job_dir = server.workspace.store.job_dir(lenet_import)
    for name in ("network.prototxt", "snapshot_epoch_0.pt", "upload/weights.caffemodel", "dataset/labels.txt"):
        assert os.path.isfile(os.path.join(job_dir, name)), name
    info = server.client.get(f"/models/{lenet_import}/json").get_json()
    assert info["snapshots"] == [0] and info["framework"] == "caffe" and info["network"].startswith("pretrained")
    model = server.loaded(lenet_import)
    for seed in (1, 2, 3):
        image = gray_image(seed)
        array = model.read(image)
        x = model.inputs([array])
        net.blobs["data"].data[...] = x.numpy()
        expected = net.forward()["prob"][0].copy()
        _, probs = model.predict([array])
        np.testing.assert_allclose(probs[0], expected, atol=1e-5)
        answer = server.classify(lenet_import, image)
        top_label, top_percent = answer["predictions"][0]
        assert top_label == DIGITS_LABELS[int(expected.argmax())]
        assert top_percent == pytest.approx(expected.max() * 100, abs=0.006)
        assert answer["epoch"] == 0


def test_color_caffe_model_takes_bgr_and_its_mean_as_caffe_does(server, caffe, tmp_path):
    """Caffe feeds BGR: the imported net gives, on our RGB input, what Caffe gives on the BGR one."""
    (tmp_path / "deploy.prototxt").write_text(COLOR_DEPLOY)
    caffe.set_random_seed(5)
    net = caffe.Net(str(tmp_path / "deploy.prototxt"), caffe.TEST)
    net.save(str(tmp_path / "w.caffemodel"))
    mean = np.random.default_rng(0).uniform(60, 180, (8, 8, 3)).astype(np.float32)
    write_mean(str(tmp_path / "mean.binaryproto"), mean)
    files = {
        "model_def_file": (COLOR_DEPLOY.encode(), "deploy.prototxt"),
        "weights_file": ((tmp_path / "w.caffemodel").read_bytes(), "w.caffemodel"),
        "labels_file": labels_file("abcde"),
        "mean_file": ((tmp_path / "mean.binaryproto").read_bytes(), "mean.binaryproto"),
    }
    job_id, info = server.imported(files, image_type="3", width="8", height="8")
    assert info["status"] == "Done", info["error"]
    model = server.loaded(job_id)
    rgb = np.random.default_rng(9).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    rgb[:, :, 0] = 255  # a strong red: the channel order decides the answer
    array = model.read(png(rgb))
    x = model.inputs([array]).numpy()
    np.testing.assert_allclose(x[0], (rgb - mean).transpose(2, 0, 1), atol=1e-3)  # the mean, in RGB
    net.blobs["data"].data[...] = x[:, ::-1]  # the same pixels as Caffe gets them: BGR
    expected = net.forward()["prob"][0].copy()
    _, probs = model.predict([array])
    np.testing.assert_allclose(probs[0], expected, atol=1e-5)
    assert server.classify(job_id, png(rgb))["predictions"][0][0] == "abcde"[int(expected.argmax())]


# ---- PyTorch ----------------------------------------------------------------------------------------------
LENET_PY = get_network("lenet").text("torch")


def torch_lenet(num_classes: int = 3):
    namespace: dict = {}
    exec(compile(LENET_PY, "lenet.py", "exec"), namespace)
    torch.manual_seed(11)
    module = namespace["build_model"](num_classes=num_classes, channels=1, height=28, width=28).eval()
    with torch.no_grad():
        module.classifier[-1].weight.mul_(8)  # peaked answers: the top-1 is clear
    return module, namespace["INPUT_SCALE"]


class Scaled(torch.nn.Module):
    """A network that takes 0..255 pixels itself (a TorchScript archive carries no INPUT_SCALE)."""

    def __init__(self, net, scale: float):
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x):
        return self.net(x * self.scale)


def saved(obj, save=torch.save) -> bytes:
    buf = io.BytesIO()
    save(obj, buf)
    return buf.getvalue()


@pytest.mark.filterwarnings(r"ignore:.*torch\.jit:DeprecationWarning")  # TorchScript still traces and loads
@pytest.mark.parametrize("kind", ["state_dict", "torchscript"])
def test_pytorch_upload_classifies_as_the_module_it_came_from(server, kind):
    module, scale = torch_lenet()
    labels = ["circle", "square", "triangle"]
    if kind == "state_dict":
        files = {
            "model_def_file": (LENET_PY.encode(), "network.py"),
            "weights_file": (saved(module.state_dict()), "lenet.pth"),
        }
        reference = Scaled(module, scale)
    else:
        reference = Scaled(module, scale).eval()
        files = {"weights_file": (saved(torch.jit.trace(reference, torch.zeros(1, 1, 28, 28)), torch.jit.save), "m.ts")}
    files["labels_file"] = labels_file(labels)
    job_id, info = server.imported(files, framework="torch")
    assert info["status"] == "Done", info["error"]
    assert info["framework"] == "torch" and info["network file"] == "network.py"
    model = server.loaded(job_id)
    for seed in (4, 5):
        image = gray_image(seed)
        array = model.read(image)
        raw = torch.from_numpy(array.transpose(2, 0, 1)[None].astype(np.float32))
        with torch.no_grad():
            expected = torch.softmax(reference(raw), dim=1)[0].numpy()
        _, probs = model.predict([array])
        np.testing.assert_allclose(probs[0], expected, atol=1e-5)
        answer = server.classify(job_id, image)
        assert answer["predictions"][0][0] == labels[int(expected.argmax())]
        assert answer["predictions"][0][1] == pytest.approx(expected.max() * 100, abs=0.006)
    # Layers as a trained model shows them; a TorchScript archive's run inside its compiled code, unseen, and
    # the answer says so (the input and the prediction are still there).
    shown = server.classify(job_id, gray_image(4), show_visualizations="true")
    names = [layer["name"] for layer in shown["visualizations"]]
    if kind == "state_dict":
        assert names[0] == "data" and len(names) > 4 and shown["gradcam_layers"]
        assert shown["visualizations_note"] is None
    else:
        assert names == ["data"] and shown["gradcam_layers"] == []
        assert "TorchScript" in shown["visualizations_note"]
        form = {"job_id": job_id, "image_file": (io.BytesIO(gray_image(4)), "image.png"), "show_visualizations": "true"}
        page = server.client.post("/models/images/classification/classify_one", data=form).get_data(as_text=True)
        assert 'id="layers-note"' in page and "compiled code" in page


# ---- refusals -------------------------------------------------------------------------------------------------
class NotATensor:
    pass


def test_mismatches_fail_the_import_naming_the_field(server, caffe_lenet):
    weights = caffe_lenet[1]
    _, info = server.imported(caffe_files(weights, labels=[*DIGITS_LABELS, "ten"]))
    assert info["status"] == "Error"
    assert info["error"].startswith("Labels file: 11 labels, but the network has only 10 outputs")

    _, info = server.imported(caffe_files(weights[: len(weights) // 3] + b"\xff" * 40))
    assert info["status"] == "Error" and info["error"].startswith("Weights file: "), info["error"]

    wrong = LENET_DEPLOY.read_text().replace("num_output: 500", "num_output: 400")
    files = {**caffe_files(weights), "model_def_file": (wrong.encode(), "lenet.prototxt")}
    _, info = server.imported(files)
    assert info["status"] == "Error" and info["error"].startswith("Weights file: does not fit the network: ")
    assert "'ip1'" in info["error"] and "500 x 800" in info["error"] and "400 x 800" in info["error"]

    module, _ = torch_lenet()
    state = {**module.state_dict(), "extra": NotATensor()}
    files = {
        "model_def_file": (LENET_PY.encode(), "network.py"),
        "weights_file": (saved(state, lambda o, f: torch.save(o, f, pickle_protocol=pickle.DEFAULT_PROTOCOL)), "w.pt"),
        "labels_file": labels_file("abc"),
    }
    _, info = server.imported(files, framework="torch")
    assert info["status"] == "Error" and info["error"].startswith("Weights file: holds more than plain tensors")

    state = {k.replace("classifier.3", "head"): v for k, v in module.state_dict().items()}
    files["weights_file"] = (saved(state), "w.pt")
    _, info = server.imported(files, framework="torch")
    assert info["status"] == "Error" and info["error"].startswith("Weights file: does not fit the network: ")
    assert "classifier.3.weight" in info["error"] and "head.weight" in info["error"]


def test_the_form_names_fields_in_place(server):
    r = server.upload({"weights_file": (b"x", "w.bin")}, width="", job_name="")
    assert r.status_code == 400
    message = r.get_json()["error"]["message"]
    for label in ("Model name", "Width", "Weights file", "Network definition", "Labels file"):
        assert label in message
    form = {"job_name": "x", "framework": "caffe", "width": "0", "height": "28", "image_type": "2"}
    r = server.client.post("/pretrained_models/new", data=form, headers={"Accept": "text/html"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and 'id="width-error"' in page and 'id="image_type-error"' in page
    assert 'aria-invalid="true"' in page and "Traceback" not in page


def test_a_browser_form_client_is_sent_to_the_new_model(server, caffe_lenet):
    form = {
        "job_name": "by form",
        "framework": "caffe",
        "image_type": "1",
        "width": "28",
        "height": "28",
        "resize_mode": "squash",
        **{name: (io.BytesIO(data), filename) for name, (data, filename) in caffe_files(caffe_lenet[1]).items()},
    }
    r = server.client.post("/pretrained_models/new", data=form, content_type="multipart/form-data")
    assert r.status_code == 302 and "/models/" in r.headers["Location"]
    job_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    assert server.recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    page = server.client.get(f"/models/{job_id}", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "imported, not trained here: Caffe .caffemodel (lenet.caffemodel)" in page
    assert 'id="model-charts"' not in page and 'id="classify-one' in page


# ---- fine-tuning --------------------------------------------------------------------------------------------
def test_a_new_model_starts_from_the_imported_one(server, lenet_import, shapes_dataset_dir):  # noqa: F811
    dataset = add_ready_dataset(server.workspace, shapes_dataset_dir, name="shapes for fine-tuning")
    form = model_form(dataset.id, method="previous", previous_networks=lenet_import, train_epochs="1")
    form.pop("standard_networks")
    r = server.client.post("/models/images/classification/json", data=form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert server.recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    info = server.client.get(f"/models/{job_id}/json").get_json()
    assert info["framework"] == "caffe"
    assert info["solver"]["pretrained"] == os.path.join("..", lenet_import, "snapshot_epoch_0.pt")
    assert info["metrics"]["val"]["accuracy"]
