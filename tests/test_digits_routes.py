"""DIGITS 6's spellings of our routes: each answers what DIGITS' clients read, behind our usual rules."""

from __future__ import annotations

import base64
import bz2
import io
import json
import os
import re
import tarfile

import pytest
from PIL import Image

from digits.job import Job, Task, new_job_id
from digits.model import MODEL_TYPE
from digits.model.download_archive import Member, stream_tar, stream_tar_bz2
from digits.model.settings import TRAIN_TASK, TrainSettings
from digits.model.standard import get_network
from digits.status import Status
from digits.webapp import create_app
from tests.support import JSON
from tests.support.accounts import add_accounts
from tests.support.apps import app_settings, sign_in
from tests.support.datasets import add_ready_dataset, create_db
from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_S

OTHER_SITE = {"Origin": "http://evil.example", "Accept": "application/json"}


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory) -> str:
    """A real dataset folder (gray 28x28 shapes, 3 classes) made once by the create-db tool."""
    root = tmp_path_factory.mktemp("digits-routes-ds")
    make_shapes(str(root / "src"), per_class=6, size=(24, 40))
    return create_db(root / "dataset", root / "src")


@pytest.fixture
def dataset(workspace, shapes_dir) -> Job:
    """A finished dataset job, with the tasks the form would have given it."""
    job = add_ready_dataset(workspace, shapes_dir, name="shapes <b>bold</b>")
    job.tasks = [Task("parse_folder", "dataset.parse")]
    job.tasks += [Task(f"create_db_{s}", "dataset.create_db", {"split": s}) for s in ("train", "val")]
    for task in job.tasks:
        task.history.set(Status.DONE)
    workspace.store.save(job)
    return job


def read_bytes(path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def add_model(workspace, dataset: Job, *, status=Status.DONE, owner="ann", snapshot=True) -> Job:
    """A model job as training leaves it (LeNet for Caffe, one snapshot and its deployable files), made without
    a worker: the routes here only read its folder."""
    task = Task(TRAIN_TASK, "model.train", TrainSettings().to_dict())
    job = Job(
        id=new_job_id(),
        type=MODEL_TYPE,
        category="model",
        name="lenet on shapes",
        owner=owner,
        tasks=[task],
        depends_on=[dataset.id],
        extra={"network_name": "lenet", "dataset_id": dataset.id, "image": dataset.extra["image"]},
    )
    job.history.set(status)
    task.history.set(status)
    workspace.store.add(job)
    job_dir = workspace.store.job_dir(job.id)
    with open(os.path.join(job_dir, "network.prototxt"), "w") as fh:
        fh.write(get_network("lenet").text("caffe"))
    if snapshot:
        for name, data in [
            ("snapshot_epoch_1.pt", os.urandom(300_000)),  # incompressible: the archive must carry it whole
            ("deploy_epoch_1.ts", b"torchscript bytes"),
            ("deploy_epoch_1.json", json.dumps({"input_shape": [1, 28, 28]}).encode()),
            ("deploy_epoch_1.caffemodel", b"caffemodel bytes"),  # a Caffe model's weights in Caffe's format
        ]:
            with open(os.path.join(job_dir, name), "wb") as fh:
                fh.write(data)
        task.snapshots = [{"epoch": 1, "path": "snapshot_epoch_1.pt"}]
    workspace.store.save(job)
    return job


# ---- /completed_jobs/json -------------------------------------------------------------------------------------------
def test_completed_jobs_lists_finished_datasets_and_models_and_running_jobs(signed_in, workspace, dataset):
    done = add_model(workspace, dataset)
    running = add_model(workspace, dataset, status=Status.RUNNING)
    for url in ("/completed_jobs/json", "/completed_jobs.json"):
        body = signed_in.get(url).get_json()
        assert [d["id"] for d in body["datasets"]] == [dataset.id]
        assert [m["id"] for m in body["models"]] == [done.id]
        assert [r["id"] for r in body["running"]] == [running.id]
        model = body["models"][0]
        assert model["status"] == "Done" and model["status_css"] == "success" and model["progress"] == 100
        assert model["framework"] == "caffe" and model["dataset_id"] == dataset.id and model["type"] == "model"
        assert body["datasets"][0]["name"] == "shapes <b>bold</b>" and body["datasets"][0]["type"] == "dataset"


def test_completed_jobs_needs_sign_in_on_a_team_server(make_app):
    app = make_app(auth="password")
    r = app.test_client().get("/completed_jobs/json")
    assert r.status_code == 401 and "sign in" in r.get_json()["error"]["message"]


# ---- PUT /jobs/<id> -------------------------------------------------------------------------------------------------
def test_put_job_renames_and_edits_notes(signed_in, workspace, dataset):
    r = signed_in.put(f"/jobs/{dataset.id}", data={"job_name": "  circles  ", "job_notes": "first try"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["name"] == "circles"
    saved = json.loads(read_bytes(os.path.join(workspace.store.job_dir(dataset.id), "job.json")))
    assert saved["name"] == "circles" and saved["notes"] == "first try"
    r = signed_in.put(f"/jobs/{dataset.id}", data={"job_notes": ""})
    assert r.status_code == 200 and workspace.store.get(dataset.id).name == "circles"
    assert workspace.store.get(dataset.id).notes == ""


def test_put_job_refuses_a_blank_name_nothing_to_change_and_unknown_jobs(signed_in, workspace, dataset):
    r = signed_in.put(f"/jobs/{dataset.id}", data={"job_name": "   "})
    assert r.status_code == 400 and "Name" in r.get_json()["error"]["message"]
    assert signed_in.put(f"/jobs/{dataset.id}", data={}).status_code == 400
    assert workspace.store.get(dataset.id).name == "shapes <b>bold</b>"
    assert signed_in.put("/jobs/20200101-000000-abcd", data={"job_name": "x"}).status_code == 404


def test_put_job_is_for_the_owner_or_an_admin_and_from_our_own_pages(make_app, shapes_dir):
    app = make_app(auth="password")
    ws = app.extensions["digits"]
    add_accounts(ws.accounts, "ann", "bob", "root", admins=["root"])
    job = add_ready_dataset(ws, shapes_dir)  # owned by ann
    bob = sign_in(app.test_client(), "bob")
    r = bob.put(f"/jobs/{job.id}", data={"job_name": "mine now"}, headers=JSON)
    assert r.status_code == 403 and "belongs to ann" in r.get_json()["error"]["message"]
    ann = sign_in(app.test_client(), "ann")
    r = ann.put(f"/jobs/{job.id}", data={"job_name": "forged"}, headers=OTHER_SITE)
    assert r.status_code == 403 and "refused" in r.get_json()["error"]["message"]
    assert app.test_client().put(f"/jobs/{job.id}", data={"job_name": "x"}).status_code == 401
    assert ws.store.get(job.id).name == "shapes"
    root = sign_in(app.test_client(), "root")
    assert root.put(f"/jobs/{job.id}", data={"job_name": "by the admin"}, headers=JSON).status_code == 200
    assert ws.store.get(job.id).name == "by the admin"


# ---- /autocomplete/path ---------------------------------------------------------------------------------------------
@pytest.fixture
def data_tree(tmp_path):
    data = tmp_path / "data"
    for folder in ("mnist/train", "mnist/val", "mnist-small", ".hidden", "cifar"):
        (data / folder).mkdir(parents=True)
    (data / "mnist" / "train.txt").write_text("a 0\n")
    (tmp_path / "outside-secret").mkdir()
    return data


def test_autocomplete_suggests_paths_inside_the_data_roots(make_app, data_tree):
    app = make_app(data_roots=[str(data_tree)])
    client = sign_in(app.test_client())
    suggestions = client.get("/autocomplete/path", query_string={"query": f"{data_tree}/mni"}).get_json()
    assert suggestions == {"suggestions": [f"{data_tree}/mnist", f"{data_tree}/mnist-small"]}
    inside = client.get("/autocomplete/path", query_string={"query": f"{data_tree}/mnist/"}).get_json()
    assert inside["suggestions"] == [
        f"{data_tree}/mnist/train",
        f"{data_tree}/mnist/train.txt",
        f"{data_tree}/mnist/val",
    ]
    hidden = client.get("/autocomplete/path", query_string={"query": f"{data_tree}/."}).get_json()
    assert hidden["suggestions"] == []
    # Above the roots only the roots themselves are suggested; beside them, nothing, whether it exists or not.
    top = client.get("/autocomplete/path", query_string={"query": str(data_tree)[:-2]}).get_json()
    assert top["suggestions"] == [str(data_tree)]
    for query in (f"{data_tree.parent}/outside", f"{data_tree.parent}/no-such", f"{data_tree}/../outside"):
        assert client.get("/autocomplete/path", query_string={"query": query}).get_json()["suggestions"] == []


def test_autocomplete_never_shows_the_jobs_folder_inside_a_data_root(make_app, data_tree):
    app = make_app(data_tree / "jobs", data_roots=[str(data_tree)])
    client = sign_in(app.test_client())
    body = client.get("/autocomplete/path", query_string={"query": f"{data_tree}/"}).get_json()
    assert f"{data_tree}/cifar" in body["suggestions"]
    assert not any(s.startswith(f"{data_tree}/jobs") for s in body["suggestions"]), body
    nested = client.get("/autocomplete/path", query_string={"query": f"{data_tree}/jobs/"}).get_json()
    assert nested["suggestions"] == []


def test_autocomplete_is_refused_where_the_server_reads_no_server_folders(make_app):
    app = make_app(auth="password")
    add_accounts(app.extensions["digits"].accounts, "ann")
    r = sign_in(app.test_client(), "ann").get("/autocomplete/path", query_string={"query": "/"})
    assert r.status_code == 400 and "--data-root" in r.get_json()["error"]["message"]
    assert app.test_client().get("/autocomplete/path?query=/", headers=JSON).status_code == 401


# ---- /datasets/summary, explore, mean.jpg ---------------------------------------------------------------------------
def test_dataset_summary_is_a_short_html_fragment(signed_in, workspace, dataset):
    for url in ("/datasets/summary", "/datasets/images/classification/summary"):
        r = signed_in.get(url, query_string={"job_id": dataset.id})
        assert r.status_code == 200 and r.mimetype == "text/html"
        page = r.get_data(as_text=True)
        assert "<html" not in page and "shapes &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
        assert "28 × 28" in page and "grayscale" in page and re.search(r"Create DB \(train\).*?\d+ images", page, re.S)


def test_dataset_summary_refuses_a_missing_or_wrong_job(signed_in, workspace, dataset):
    r = signed_in.get("/datasets/summary")
    assert r.status_code == 400 and "job_id" in r.get_json()["error"]["message"]
    model = add_model(workspace, dataset)
    assert signed_in.get("/datasets/summary", query_string={"job_id": model.id}).status_code == 404


def test_digits_explore_url_leads_to_our_explorer(signed_in, dataset):
    r = signed_in.get(
        "/datasets/images/classification/explore", query_string={"job_id": dataset.id, "db": "val_db", "page": 1}
    )
    assert r.status_code == 302
    assert r.headers["Location"] == f"/datasets/{dataset.id}/explore?split=val&page=1"
    page = signed_in.get(r.headers["Location"])
    assert page.status_code == 200 and "records/val/" in page.get_data(as_text=True)
    bad = signed_in.get("/datasets/images/classification/explore", query_string={"job_id": dataset.id, "db": "x"})
    assert bad.status_code == 404


def test_mean_jpg_is_the_datasets_mean_image(signed_in, workspace, dataset):
    r = signed_in.get(f"/files/{dataset.id}/mean.jpg")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    jpeg = Image.open(io.BytesIO(r.data))
    with Image.open(os.path.join(workspace.store.job_dir(dataset.id), "mean.png")) as png:
        assert jpeg.format == "JPEG" and jpeg.size == png.size
    # The other files of the folder are still served as they were.
    png = signed_in.get(f"/files/{dataset.id}/mean.png")
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"
    png.close()


def test_mean_jpg_of_a_model_or_an_unknown_job_is_not_found(signed_in, workspace, dataset):
    model = add_model(workspace, dataset)
    assert signed_in.get(f"/files/{model.id}/mean.jpg").status_code == 404
    assert signed_in.get("/files/20200101-000000-abcd/mean.jpg").status_code == 404


# ---- /datasets/images/resize-example --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["squash", "crop", "fill", "half_crop"])
def test_resize_example_shows_the_example_picture_as_settings_make_it(signed_in, mode):
    form = {"width": 64, "height": 32, "channels": 1, "resize_mode": mode, "encoding": "jpg"}
    r = signed_in.post("/datasets/images/resize-example", data=form)
    assert r.status_code == 200 and r.mimetype == "text/html", r.get_data(as_text=True)
    html = r.get_data(as_text=True)
    src = re.search(r'src="data:image/jpeg;base64,([^"]+)"', html).group(1)
    img = Image.open(io.BytesIO(base64.b64decode(src)))
    assert img.size == (64, 32) and img.mode == "L"
    assert re.search(r"Image size: [\d.]+ (B|KB)", html)


def test_resize_example_answers_json_when_asked(signed_in):
    form = {"width": 20, "height": 10, "channels": 3, "resize_mode": "squash", "encoding": "none"}
    body = signed_in.post("/datasets/images/resize-example", data=form, headers=JSON).get_json()
    assert body["size"] == 20 * 10 * 3  # a raw record: the pixels themselves
    img = Image.open(io.BytesIO(base64.b64decode(body["image"].split(",", 1)[1])))
    assert img.size == (20, 10) and img.mode == "RGB"


def test_resize_example_names_the_wrong_field(signed_in):
    r = signed_in.post("/datasets/images/resize-example", data={"width": 0, "height": 10, "resize_mode": "squash"})
    assert r.status_code == 400 and "Width" in r.get_json()["error"]["message"]
    r = signed_in.post("/datasets/images/resize-example", data={"width": 10, "height": 10, "resize_mode": "zoom"})
    assert r.status_code == 400 and "Resize transformation" in r.get_json()["error"]["message"]


# ---- /models/customize, visualize-network, visualize-lr -------------------------------------------------------------
def test_customize_answers_a_standard_networks_text(signed_in):
    for method in (signed_in.get, signed_in.post):
        body = method("/models/customize?network=lenet&framework=caffe").get_json()
        assert body == {"network": get_network("lenet").text("caffe"), "snapshot": None}


def test_customize_answers_a_previous_models_network_and_snapshot(signed_in, workspace, dataset):
    model = add_model(workspace, dataset)
    body = signed_in.post(f"/models/customize?network={model.id}", data={"snapshot_epoch": "1"}).get_json()
    assert body["network"] == get_network("lenet").text("caffe") and body["snapshot"] == "snapshot_epoch_1.pt"
    assert signed_in.get(f"/models/customize?network={model.id}").get_json()["snapshot"] is None
    r = signed_in.post(f"/models/customize?network={model.id}", data={"snapshot_epoch": "7"})
    assert r.status_code == 404 and "epoch 7" in r.get_json()["error"]["message"]


def test_customize_refuses_unknown_networks(signed_in, dataset):
    assert signed_in.get("/models/customize?network=nonet&framework=caffe").status_code == 404
    assert signed_in.get(f"/models/customize?network={dataset.id}").status_code == 404  # a dataset, not a model
    assert signed_in.get("/models/customize").status_code == 400
    assert signed_in.get("/models/customize?network=lenet&framework=theano").status_code == 400


def test_visualize_network_draws_the_posted_prototxt(signed_in):
    text = get_network("lenet").text("caffe")
    url = "/models/visualize-network"
    posted = signed_in.post(url, query_string={"framework": "caffe"}, data={"custom_network": text})
    asked = signed_in.get(url, query_string={"framework": "caffe", "custom_network": text})
    for r in (posted, asked):
        assert r.status_code == 200, r.get_data(as_text=True)
        graph = r.get_json()
        assert graph == signed_in.post("/models/visualize/json", data={"custom_network": text}).get_json()
        # No dataset, so no class count: every layer is drawn up to ip2, whose num_output waits for one.
        assert graph["error"]["layer"] == "ip2" and "number of classes" in graph["error"]["message"]
        assert [n["name"] for n in graph["nodes"]][-1] == "ip2" and graph["nodes"][-2]["output_shapes"]


def test_visualize_network_marks_a_broken_network_and_refuses_bad_requests(signed_in):
    broken = signed_in.post("/models/visualize-network?framework=caffe", data={"custom_network": "layer { type: "})
    assert broken.status_code == 200 and broken.get_json()["error"]["message"]
    assert signed_in.post("/models/visualize-network", data={"custom_network": "x"}).status_code == 400
    r = signed_in.post("/models/visualize-network?framework=torch", data={"custom_network": "x"})
    assert r.status_code == 400 and "Caffe" in r.get_json()["error"]["message"]


def test_visualize_lr_answers_digits_columns(signed_in):
    form = {"lr_policy": "step", "learning_rate": "0.01,0.1", "lr_step_size": "50", "lr_step_gamma": "0.1"}
    body = signed_in.post("/models/visualize-lr", data=form).get_json()
    columns = body["data"]["columns"]
    assert [c[0] for c in columns] == ["Learning Rate 0", "Learning Rate 1"]
    first = columns[0][1:]
    assert len(first) == 101
    assert first[0] == pytest.approx(0.01) and first[49] == pytest.approx(0.01)
    assert first[50] == pytest.approx(0.001) and first[100] == pytest.approx(0.0001)
    assert columns[1][1] == pytest.approx(0.1)


def test_visualize_lr_names_the_wrong_field(signed_in):
    r = signed_in.post("/models/visualize-lr", data={"lr_policy": "zigzag", "learning_rate": "0.01"})
    assert r.status_code == 400 and "Learning rate policy" in r.get_json()["error"]["message"]
    r = signed_in.post("/models/visualize-lr", data={"lr_policy": "fixed", "learning_rate": "fast"})
    assert r.status_code == 400 and "Base learning rate" in r.get_json()["error"]["message"]


# ---- model downloads as .tar, .tar.bz2, .tgz ------------------------------------------------------------------------
def test_tar_streams_round_trip(tmp_path):
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(3 * (1 << 20) + 17))

    def members():
        return [Member.from_path("weights.bin", str(big)), Member.from_bytes("info.json", b"{}")]

    for stream, mode in ((stream_tar, "r:"), (stream_tar_bz2, "r:bz2")):
        chunks = list(stream("model", members()))
        assert max(map(len, chunks)) <= 1 << 21  # sent in pieces, never the whole archive at once
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode=mode) as tf:
            assert tf.extractfile("model/weights.bin").read() == big.read_bytes()
            assert tf.extractfile("model/info.json").read() == b"{}"


@pytest.mark.parametrize("fmt,mode", [("tar", "r:"), ("tar.bz2", "r:bz2"), ("tgz", "r:gz")])
def test_model_downloads_as_digits_other_archive_kinds(signed_in, workspace, dataset, fmt, mode):
    model = add_model(workspace, dataset)
    r = signed_in.get(f"/models/{model.id}/download.{fmt}")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Disposition"].endswith(f'.{fmt}"')
    if fmt == "tar.bz2":
        assert r.data[:3] == b"BZh" and bz2.decompress(r.data)
    with tarfile.open(fileobj=io.BytesIO(r.data), mode=mode) as tf:
        names = {m.name.split("/", 1)[-1] for m in tf.getmembers()}
        snapshot = tf.extractfile(next(m for m in tf.getmembers() if m.name.endswith("snapshot_epoch_1.pt"))).read()
    assert {"network.prototxt", "snapshot_epoch_1.pt", "snapshot.caffemodel", "labels.txt", "info.json"} <= names
    assert "predict.py" in names
    assert snapshot == read_bytes(os.path.join(workspace.store.job_dir(model.id), "snapshot_epoch_1.pt"))


def test_model_download_refusals_hold_for_the_new_kinds(signed_in, workspace, dataset):
    model = add_model(workspace, dataset, snapshot=False)
    r = signed_in.get(f"/models/{model.id}/download.tar.bz2", headers=JSON)
    assert r.status_code == 409 and "no snapshot" in r.get_json()["error"]["message"]
    assert signed_in.get(f"/models/{dataset.id}/download.tar", headers=JSON).status_code == 404
    assert signed_in.get(f"/models/{model.id}/download.rar", headers=JSON).status_code == 404


# ---- the real server (gevent: the work these routes hand off the event loop) ----------------------------------------
def test_the_real_server_serves_the_digits_routes(tmp_path, shapes_dir):
    jobs = tmp_path / "jobs"
    app = create_app(app_settings(jobs))
    ws = app.extensions["digits"]
    try:
        dataset = add_ready_dataset(ws, shapes_dir)
        model = add_model(ws, dataset)
    finally:
        ws.close()
    server = LiveServer(jobs).start()
    try:
        http = server.sign_in()
        with http.get(f"{server.url}/models/{model.id}/download.tar.bz2", stream=True, timeout=LONG_S) as r:
            assert r.status_code == 200 and "Content-Length" not in r.headers  # streamed as it is written
            pieces = r.iter_content(1 << 16)
            first = next(pieces)
            # Another request is answered while the archive is being sent.
            assert http.get(f"{server.url}/completed_jobs/json", timeout=LONG_S).json()["models"][0]["id"] == model.id
            data = first + b"".join(pieces)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:bz2") as tf:
            assert any(m.name.endswith("/snapshot_epoch_1.pt") for m in tf.getmembers())
        example = http.post(
            f"{server.url}/datasets/images/resize-example",
            data={"width": 30, "height": 30, "channels": 3, "resize_mode": "crop", "encoding": "png"},
            headers=JSON,
            timeout=LONG_S,
        )
        assert example.status_code == 200 and example.json()["image"].startswith("data:image/png;base64,")
        mean = http.get(f"{server.url}/files/{dataset.id}/mean.jpg", timeout=LONG_S)
        assert mean.status_code == 200 and mean.content[:2] == b"\xff\xd8"
        folder = shapes_dir.rstrip("/")
        found = http.get(f"{server.url}/autocomplete/path", params={"query": folder + "/"}, timeout=LONG_S).json()
        assert f"{folder}/train_db" in found["suggestions"], found
    finally:
        server.stop()
