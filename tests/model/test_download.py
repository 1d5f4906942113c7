"""Model downloads: the archive runs without DIGITS and classifies exactly as the engine does; metrics as CSV."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from digits.engine.augment import BatchTransform
from digits.engine.data import load_mean
from digits.engine.export import deploy_path_for, export_deployable, snapshot_exporter
from digits.engine.networks import build_network
from digits.engine.solvers import make_optimizer
from digits.engine.trainer import Split, Trainer
from digits.folders.dataset import open_dataset
from digits.folders.model import DATASET_COPY
from digits.formats.caffe_pb import read_mean, write_mean
from digits.formats.images import load_for_network
from digits.model import download
from digits.model.lr_policy import LRPolicy
from digits.model.predict_template import build_predict_script
from digits.model.settings import model_settings
from digits.model.standard import get_network
from tests.model.test_training import create
from tests.support import JSON, ROOT
from tests.support.forms import model_form
from tests.support.real_caffe import real_caffe
from tests.support.waiting import LONG_S

# Where torch, numpy and Pillow are installed: with `python -S` and only this on the path, the editable
# install of digits (a .pth file) is not loaded, so predict.py runs as on a machine without DIGITS.
SITE_PACKAGES = os.path.dirname(os.path.dirname(np.__file__))


@pytest.fixture(autouse=True)
def download_routes(app):
    """The download blueprint, for as long as the app factory does not register it yet."""
    if download.bp.name not in app.blueprints:
        app.register_blueprint(download.bp)


def train(client, recorder, workspace, dataset, **form):
    """A finished model job (2 epochs of LeNet), with its deployable models."""
    r = create(client, model_form(dataset.id, **form))
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", client.get(f"/models/{job_id}/status").get_json()
    job_dir = workspace.store.job_dir(job_id)
    if not os.path.exists(os.path.join(job_dir, "deploy_epoch_2.ts")):  # the worker does not export (yet)
        run_export(job_dir)
    return job_id, job_dir


def run_export(job_dir):
    subprocess.run([sys.executable, "-m", "digits.engine.export", job_dir], cwd=ROOT, check=True, capture_output=True)


def members(data: bytes, fmt: str) -> dict[str, bytes]:
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {name: zf.read(name) for name in zf.namelist()}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        return {m.name: tf.extractfile(m).read() if m.isfile() else None for m in tf.getmembers()}


def standalone_env():
    return {**os.environ, "PYTHONPATH": SITE_PACKAGES}


def engine_predictions(workspace, job_id, dataset, paths, epoch=2, with_inputs=False):
    """What DIGITS' own code computes for each image: probabilities by label, from the snapshot's weights (and
    the preprocessed batch it fed the network, with `with_inputs`)."""
    job = workspace.store.get(job_id)
    job_dir = workspace.store.job_dir(job_id)
    state = torch.load(os.path.join(job_dir, f"snapshot_epoch_{epoch}.pt"), weights_only=True)
    settings = model_settings(job)
    with open(os.path.join(job_dir, settings.network_file)) as fh:
        text = fh.read()
    shape = tuple(state["input_shape"])
    net = build_network(text, settings.framework, input_shape=shape, num_classes=len(state["labels"]))
    net.module.load_state_dict(state["model"])
    net.module.eval()
    ds = open_dataset(workspace.store.job_dir(dataset.id))
    transform = BatchTransform(
        in_shape=ds.shape,
        mean=load_mean(ds, settings.use_mean),
        crop=shape[1] if shape != ds.shape else None,
        scale=net.input_scale,
        mirror=False,
        aug=None,
        train=False,
    )
    channels, height, width = ds.shape
    arrays = [load_for_network(p, channels, height, width, ds.image["resize_mode"])[0] for p in paths]
    x = torch.from_numpy(np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)))
    with torch.no_grad():
        batch = transform(x)
        probs = torch.softmax(net.logits(batch).float(), dim=1)
    result = [dict(zip(state["labels"], row, strict=True)) for row in probs.tolist()]
    return (result, batch.float().numpy()) if with_inputs else result


@pytest.mark.slow
@pytest.mark.parametrize(
    "framework, extra",
    [("torch", {"use_mean": "image"}), ("caffe", {"use_mean": "pixel", "crop_size": "24"})],
)
def test_the_archive_classifies_without_digits_exactly_like_the_engine(
    signed_in, workspace, recorder, dataset, tmp_path, framework, extra
):
    job_id, _ = train(signed_in, recorder, workspace, dataset, framework=framework, **extra)
    folder = "lenet-epoch2"
    expected = {"network.py" if framework == "torch" else "network.prototxt", "snapshot_epoch_2.pt", "model.ts"}
    expected |= {"model.onnx"}  # tests/model/test_exports.py runs it with onnxruntime
    expected |= {"labels.txt", "mean.binaryproto", "mean.png", "info.json", "predict.py", "README.txt"}
    if framework == "caffe":
        expected |= {"deploy.prototxt", "snapshot.caffemodel"}
    archives = {}
    for url, fmt in [("download", "tar.gz"), ("download.tar.gz", "tar.gz"), ("download.zip", "zip")]:
        r = signed_in.get(f"/models/{job_id}/{url}")
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.headers["Content-Disposition"] == f'attachment; filename="{folder}.{fmt}"'
        files = members(r.get_data(), fmt)
        assert {name for name, data in files.items() if data is not None} == {f"{folder}/{n}" for n in expected}
        archives[url] = files
    assert archives["download"] == archives["download.tar.gz"]
    assert archives["download.zip"] == {k: v for k, v in archives["download"].items() if v is not None}

    info = json.loads(archives["download.zip"][f"{folder}/info.json"])
    assert info["labels"] == ["circle", "square", "triangle"] and info["epoch"] == 2
    assert info["image"] == {"width": 28, "height": 28, "channels": 1, "resize_mode": "squash"}
    assert info["use_mean"] == extra["use_mean"] and info["framework"] == framework
    assert info["crop_size"] == (24 if framework == "caffe" else None)
    assert info["input_shape"] == ([1, 24, 24] if framework == "caffe" else [1, 28, 28])
    assert info["dataset"] == {"id": dataset.id, "name": "shapes"}
    assert 0.0 <= info["metrics"]["val"]["accuracy"] <= 1.0 and "loss" in info["metrics"]["train"]
    if framework == "caffe":
        assert "Input" in archives["download.zip"][f"{folder}/deploy.prototxt"].decode()

    with tarfile.open(fileobj=io.BytesIO(signed_in.get(f"/models/{job_id}/download").get_data()), mode="r:gz") as tf:
        tf.extractall(tmp_path, filter="data")
    unpacked = tmp_path / folder
    assert os.access(unpacked / "predict.py", os.X_OK)
    with open(os.path.join(workspace.store.job_dir(dataset.id), "val.txt")) as fh:
        paths = [line.rstrip("\n").rsplit(" ", 1)[0] for line in fh][:100]
    assert len(paths) >= 20

    env = standalone_env()
    probe = "import importlib.util; print(importlib.util.find_spec('digits'))"
    no_digits = subprocess.run([sys.executable, "-S", "-c", probe], cwd=unpacked, env=env, capture_output=True)
    assert no_digits.stdout.decode().strip() == "None", no_digits
    command = [sys.executable, "-S", "predict.py", "--json", *paths]
    run = subprocess.run(command, cwd=unpacked, env=env, capture_output=True, text=True, timeout=LONG_S)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)

    engine = engine_predictions(workspace, job_id, dataset, paths)
    assert [r["path"] for r in results] == paths
    for result, probs in zip(results, engine, strict=True):
        ranked = sorted(probs, key=lambda label: -probs[label])
        assert [label for label, _ in result["predictions"]] == ranked, result["path"]
        for label, probability in result["predictions"]:
            assert probability == pytest.approx(probs[label], abs=1e-5), (result["path"], label)

    if framework == "caffe":  # real Caffe runs the archive's deploy.prototxt and snapshot.caffemodel alike
        caffe = real_caffe()
        real = caffe.Net(str(unpacked / "deploy.prototxt"), caffe.TEST, weights=str(unpacked / "snapshot.caffemodel"))
        engine, inputs = engine_predictions(workspace, job_id, dataset, paths, with_inputs=True)
        real.blobs[real.inputs[0]].reshape(*inputs.shape)
        out = real.forward(**{real.inputs[0]: inputs})[real.outputs[0]]
        for row, probs in zip(out, engine, strict=True):
            np.testing.assert_allclose(row, [probs[label] for label in info["labels"]], rtol=1e-5, atol=1e-5)
        return  # the text output once is enough
    text = subprocess.run(
        [sys.executable, "-S", "predict.py", paths[0]], cwd=unpacked, env=env, capture_output=True, text=True
    )
    assert text.returncode == 0 and text.stdout.splitlines()[0] == paths[0]
    assert text.stdout.splitlines()[1].split()[0] == results[0]["predictions"][0][0]
    assert text.stdout.splitlines()[1].endswith("%")


@pytest.mark.slow
def test_epochs_names_metrics_csv_and_missing_files(signed_in, app, workspace, recorder, dataset):
    job_id, job_dir = train(signed_in, recorder, workspace, dataset, model_name="Le Net/../ü *v2?")
    anonymous = app.test_client()  # anyone who can see a model may download it
    r = anonymous.get(f"/models/{job_id}/download.zip?epoch=1")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == 'attachment; filename="Le_Net_.._v2-epoch1.zip"'
    info = json.loads(members(r.get_data(), "zip")["Le_Net_.._v2-epoch1/info.json"])
    assert info["epoch"] == 1 and info["snapshot"] == "snapshot_epoch_1.pt"

    r = signed_in.get(f"/models/{job_id}/download?epoch=99", headers=JSON)
    assert r.status_code == 404
    assert "no snapshot at epoch 99" in r.get_json()["error"]["message"]
    assert "epochs 1, 2" in r.get_json()["error"]["message"]
    assert signed_in.get(f"/models/{job_id}/download?epoch=99").status_code == 404  # the page, for a browser
    assert signed_in.get(f"/models/{job_id}/download?epoch=two", headers=JSON).status_code == 400
    assert signed_in.get("/models/20990101-000000-abcd/download", headers=JSON).status_code == 404

    r = signed_in.get(f"/models/{job_id}/metrics.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    with open(os.path.join(job_dir, "metrics.jsonl")) as fh:
        points = [json.loads(line) for line in fh]
    assert rows[0] == ["phase", "name", "epoch", "iteration", "value", "time"]
    assert len(rows) - 1 == len(points) > 0
    assert rows[-1] == [str(points[-1][k]) for k in rows[0]]

    for name in ("deploy_epoch_2.ts", "deploy_epoch_2.json"):
        os.remove(os.path.join(job_dir, name))
    r = signed_in.get(f"/models/{job_id}/download", headers=JSON)
    assert r.status_code == 409
    message = r.get_json()["error"]["message"]
    assert "deployable model" in message and "retraining" in message and "digits.engine.export" in message
    run_export(job_dir)  # what the message suggests, for a model trained before deployable models
    assert signed_in.get(f"/models/{job_id}/download").status_code == 200

    assert signed_in.delete(f"/datasets/{dataset.id}", headers=JSON).status_code == 403  # the model uses it
    shutil.rmtree(workspace.store.job_dir(dataset.id))  # gone all the same, from outside the app
    # The model kept its labels, settings and mean (digits/folders/model.py DATASET_COPY): it still downloads.
    assert signed_in.get(f"/models/{job_id}/download.zip").status_code == 200
    shutil.rmtree(os.path.join(job_dir, DATASET_COPY))  # a model trained before that copy existed
    r = signed_in.get(f"/models/{job_id}/download.zip", headers=JSON)
    assert r.status_code == 409
    assert "dataset" in r.get_json()["error"]["message"] and "deleted" in r.get_json()["error"]["message"]
    assert signed_in.get(f"/models/{job_id}/metrics.csv").status_code == 200  # the model's own files remain


@pytest.mark.filterwarnings("ignore:.*torch.jit.load:DeprecationWarning")
def test_export_leaves_training_as_it_was(tmp_path):
    net = build_network(get_network("lenet").text("torch"), "torch", input_shape=(1, 28, 28), num_classes=3)
    net.module.train()
    before = {k: v.clone() for k, v in net.module.state_dict().items()}
    rng = torch.get_rng_state()
    path = deploy_path_for(str(tmp_path / "snapshot_epoch_1.5.pt"))
    assert path == str(tmp_path / "deploy_epoch_1.5.ts")
    export_deployable(net, (1, 28, 28), path, image_shape=(1, 32, 32), use_mean="pixel")
    assert torch.equal(rng, torch.get_rng_state()) and net.module.training
    assert all(torch.equal(before[k], v) for k, v in net.module.state_dict().items())
    with open(tmp_path / "deploy_epoch_1.5.json") as fh:
        meta = json.load(fh)
    assert meta["input_shape"] == [1, 28, 28] and meta["crop_size"] == 28 and meta["mean"] == "pixel"
    assert meta["input_scale"] == pytest.approx(0.0125)
    traced = torch.jit.load(path)
    x = torch.randn(5, 1, 28, 28)
    net.module.eval()
    with torch.no_grad():
        assert torch.allclose(traced(x), net.logits(x), atol=1e-6)


class QuietSink:
    def progress(self, fraction, epoch=None): ...
    def metric(self, phase, name, value, epoch=None, iteration=None): ...
    def lr(self, value, epoch=None): ...
    def snapshot(self, epoch, path): ...
    def log(self, message, level="info"): ...


def train_in_process(folder, export: bool):
    """Two epochs of LeNet on random crops of noise: every batch draws from torch's global generator."""
    torch.manual_seed(3)
    images = torch.randint(0, 256, (24, 1, 32, 32), dtype=torch.uint8)
    labels = torch.arange(24) % 3
    net = build_network(get_network("lenet").text("torch"), "torch", input_shape=(1, 28, 28), num_classes=3)
    common = dict(in_shape=(1, 32, 32), mean=None, crop=28, scale=net.input_scale, mirror=False, aug=None)
    optimizer = make_optimizer(framework="torch", solver_type="SGD", param_groups=net.param_groups(), lr=0.01)
    trainer = Trainer(
        model=net,
        optimizer=optimizer,
        policy=LRPolicy.from_form("fixed", 0.01, 6),
        train=Split(images, labels),
        val=None,
        train_transform=BatchTransform(**common, train=True),
        val_transform=BatchTransform(**common, train=False),
        sink=QuietSink(),
        epochs=2,
        batch_size=8,
        snapshot_dir=str(folder),
        # exactly what the training worker passes
        on_snapshot=snapshot_exporter(net, (1, 28, 28), image_shape=(1, 32, 32), use_mean="none") if export else None,
    )
    trainer.run()
    return net.module.state_dict()


def test_exporting_each_snapshot_does_not_change_training(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "exported").mkdir()
    plain = train_in_process(tmp_path / "plain", export=False)
    exported = train_in_process(tmp_path / "exported", export=True)
    assert sorted(os.listdir(tmp_path / "plain")) == ["snapshot_epoch_1.pt", "snapshot_epoch_2.pt"]
    assert sorted(os.listdir(tmp_path / "exported")) == [
        f"{kind}_epoch_{n}.{ext}"
        for n in (1, 2)
        for kind, ext in [("deploy", "json"), ("deploy", "onnx"), ("deploy", "ts")]
    ] + ["snapshot_epoch_1.pt", "snapshot_epoch_2.pt"]
    assert all(torch.equal(plain[k], exported[k]) for k in plain)
    with open(tmp_path / "exported" / "deploy_epoch_2.json") as fh:
        assert json.load(fh)["crop_size"] == 28


def load_predict_module(tmp_path):
    script = tmp_path / "predict_module.py"
    script.write_text(build_predict_script())
    spec = importlib.util.spec_from_file_location("predict_module", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_predict_reads_mean_files_as_digits_does(tmp_path, shapes_dataset_dir):
    module = load_predict_module(tmp_path)
    gray = os.path.join(shapes_dataset_dir, "mean.binaryproto")
    assert np.array_equal(module.read_mean(gray), read_mean(gray))
    color = np.random.default_rng(0).uniform(0, 255, (5, 7, 3)).astype(np.float32)
    write_mean(str(tmp_path / "color.binaryproto"), color)
    assert np.array_equal(module.read_mean(str(tmp_path / "color.binaryproto")), color)


def test_predict_script_is_clean_and_carries_digits_source(tmp_path):
    source = build_predict_script()
    assert not re.search(r"^\s*(import|from) digits", source, re.MULTILINE)
    assert "def load_for_network(" in source and "class BatchTransform:" in source
    assert '@register_resize_mode("half_crop")' in source
    script = tmp_path / "predict.py"
    script.write_text(source)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--line-length", "120", "--select", "E,F,W,I", script],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout


def test_the_web_side_never_imports_torch():
    code = (
        "import sys; from digits.model import download; from digits.model.predict_template import "
        "build_predict_script; build_predict_script(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
