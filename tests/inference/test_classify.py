"""Classify one and many through the real views, pool and workers, on LeNet trained in both frameworks."""

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.inference.conftest import FRAMEWORKS

pytestmark = pytest.mark.slow  # every test uses LeNet trained twice by the `served` fixture


def png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def shape_image(mode: str) -> tuple[bytes, str]:
    """A 36x30 image in `mode` (a bright square on a dark ground) and a file format that keeps that mode."""
    gray = np.zeros((30, 36), dtype=np.uint8)
    gray[6:24, 9:27] = 220
    base = Image.fromarray(gray, "L")
    if mode == "1":
        img = base.convert("1")
    elif mode == "LA":
        img = Image.merge("LA", (base, Image.new("L", base.size, 200)))
    elif mode == "P":
        img = base.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
    elif mode == "I;16":
        img = Image.fromarray(gray.astype(np.uint16) * 257).convert("I;16")
    elif mode == "I":
        img = Image.fromarray(gray.astype(np.int32) * 100, "I")
    elif mode == "F":
        img = Image.fromarray(gray.astype(np.float32) / 255.0, "F")
    else:
        img = base.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    data = png(img, fmt)
    assert Image.open(io.BytesIO(data)).mode == mode, f"{fmt} did not keep mode {mode}"
    return data, f"image.{fmt.lower()}"


def val_image(served, index: int = 0) -> str:
    return served.val_list().splitlines()[index].rsplit(" ", 1)[0]


def test_digits_rest_example_classify_one_json(served):
    """DIGITS' documented call: POST classify_one/json with job_id and image_file."""
    with open(val_image(served), "rb") as fh:
        r = served.classify_one("torch", fh.read(), "digit.jpg")
    assert r.status_code == 200, r.get_data(as_text=True)
    js = r.get_json()
    predictions = js["predictions"]
    assert 1 <= len(predictions) <= 5 and len(predictions) == 3  # three classes
    assert {label for label, _ in predictions} == {"circle", "square", "triangle"}
    percents = [p for _, p in predictions]
    assert percents == sorted(percents, reverse=True)
    assert sum(percents) == pytest.approx(100, abs=0.05)
    assert js["epoch"] == 2 and js["server_ms"] > 0
    seen = Image.open(io.BytesIO(__import__("base64").b64decode(js["image"].split(",", 1)[1])))
    assert js["image"].startswith("data:image/png;base64,") and seen.size == (28, 28)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_classify_many_on_val_txt_scores_what_training_reported(served, framework):
    text = served.val_list()
    r = served.classify_many(framework, text)
    assert r.status_code == 200, r.get_data(as_text=True)
    js = r.get_json()
    lines = text.splitlines()
    assert js["errors"] == []
    assert set(js["classifications"]) == {line.rsplit(" ", 1)[0] for line in lines}
    assert all(len(top) == 3 for top in js["classifications"].values())
    model = served.client.get(f"/models/{served.models[framework]}/json").get_json()
    final_val_accuracy = model["metrics"]["val"]["accuracy"][-1][1]
    assert js["top1_accuracy"] == final_val_accuracy  # exactly: the same pixels through the same pipeline
    assert js["top5_accuracy"] == 1.0
    matrix = js["confusion_matrix"]["matrix"]
    assert js["confusion_matrix"]["labels"] == ["circle", "square", "triangle"]
    assert sum(map(sum, matrix)) == len(lines)
    assert sum(matrix[i][i] for i in range(3)) / len(lines) == final_val_accuracy
    assert set(js["per_class_accuracy"]) <= {"circle", "square", "triangle"}
    with served.client.get(js["confusion_matrix_url"]) as picture:  # a file response: closed when read
        assert picture.status_code == 200 and picture.mimetype == "image/png"
        with Image.open(io.BytesIO(picture.data)) as image:
            assert image.format == "PNG"


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_image_mode_classifies(served, mode):
    data, name = shape_image(mode)
    r = served.classify_one("caffe" if mode in ("P", "I") else "torch", data, name)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert sum(p for _, p in r.get_json()["predictions"]) == pytest.approx(100, abs=0.05)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"this is not an image", "not an image"),
        (b"", "empty"),
        (png(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")[:300], "truncated or corrupt"),
    ],
    ids=["text", "empty", "truncated"],
)
def test_junk_is_a_400_with_a_message(served, data, message):
    r = served.classify_one("torch", data, "junk.png")
    assert r.status_code == 400
    assert message in r.get_json()["error"]["message"]


def test_missing_fields_are_400(served):
    r = served.client.post("/models/images/classification/classify_one/json", data={"job_id": served.models["torch"]})
    assert r.status_code == 400 and "image_file" in r.get_json()["error"]["message"]
    r = served.client.post("/models/images/classification/classify_one/json", data={})
    assert r.status_code == 400 and "job_id" in r.get_json()["errors"]


def test_unknown_job_and_epoch_are_404(served):
    data = png(Image.new("L", (28, 28), 9))
    r = served.client.post(
        "/models/images/classification/classify_one/json",
        data={"job_id": "20200101-000000-0000", "image_file": (io.BytesIO(data), "x.png")},
    )
    assert r.status_code == 404 and r.get_json()["error"]["type"] == "not_found"
    r = served.client.post(
        "/models/images/classification/classify_one/json",
        data={"job_id": served.dataset.id, "image_file": (io.BytesIO(data), "x.png")},
    )
    assert r.status_code == 404  # a dataset is not a model
    r = served.classify_one("torch", data, snapshot_epoch="7")
    assert r.status_code == 404
    assert "epochs: 1, 2" in r.get_json()["error"]["message"]
    assert served.classify_one("torch", data, snapshot_epoch="1").get_json()["epoch"] == 1


def test_a_list_with_unreadable_lines_classifies_the_rest_and_names_them(served, tmp_path):
    good = served.val_list().splitlines()[:4]
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    lines = [
        good[0],
        str(tmp_path / "missing.png") + " 1",
        str(tmp_path / "notes.txt"),
        "",
        "# a comment",
        good[1],
        str(tmp_path / "empty.png") + " square",
        "relative/path.png",
        "http://127.0.0.1:9/image.png",
        good[2].rsplit(" ", 1)[0] + " 9",
        good[3],
    ]
    r = served.classify_many("torch", "\n".join(lines))
    assert r.status_code == 200, r.get_data(as_text=True)
    js = r.get_json()
    assert set(js["classifications"]) == {g.rsplit(" ", 1)[0] for g in (good[0], good[1], good[3])}
    errors = {e["line"]: e for e in js["errors"]}
    assert sorted(errors) == [2, 3, 7, 8, 9, 10]
    assert "does not exist" in errors[2]["message"]
    assert "not an image" in errors[3]["message"] and errors[3]["path"] == str(tmp_path / "notes.txt")
    assert "empty" in errors[7]["message"]
    assert "not an absolute path" in errors[8]["message"]
    assert "loopback" in errors[9]["message"]
    assert "label 9 is not a class" in errors[10]["message"]
    assert js["labeled_count"] == 3  # the unlabeled notes.txt line and the failures are not scored


def test_relative_paths_and_a_zip_of_class_folders(served, tmp_path):
    good = [line.rsplit(" ", 1) for line in served.val_list().splitlines()[:6]]
    folder = os.path.dirname(os.path.dirname(good[0][0]))
    relative = "\n".join(f"{os.path.relpath(p, folder)} {label}" for p, label in good)
    r = served.classify_many("torch", relative, image_folder=folder)
    assert r.status_code == 200 and len(r.get_json()["classifications"]) == 6
    labels = ["circle", "square", "triangle"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, label in good:
            zf.write(path, f"shapes/{labels[int(label)]}/{os.path.basename(path)}")
    form = {"job_id": served.models["caffe"], "image_folder_zip": (io.BytesIO(buf.getvalue()), "shapes.zip")}
    js = served.client.post("/models/images/classification/classify_many/json", data=form).get_json()
    assert len(js["classifications"]) == 6 and js["labeled_count"] == 6, js
    assert all(path.split(os.sep)[0] in labels for path in js["classifications"])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_visualizations_for_lenet(served, framework):
    with open(val_image(served, 1), "rb") as fh:
        r = served.classify_one(framework, fh.read(), show_visualizations="true")
    assert r.status_code == 200, r.get_data(as_text=True)
    js = r.get_json()
    layers = {v["name"]: v for v in js["visualizations"]}
    conv = layers["conv1" if framework == "caffe" else "features.0"]
    assert conv["type"] in ("Convolution", "Conv2d") and conv["shape"] == [20, 24, 24]
    for v in js["visualizations"]:
        assert v["activations"].startswith("data:image/png;base64,")
        assert set(v["stats"]) >= {"mean", "std", "histogram"}
        assert len(v["stats"]["histogram"]["counts"]) + 1 == len(v["stats"]["histogram"]["edges"])
    with_weights = [v for v in js["visualizations"] if v["weights"]]
    assert len(with_weights) == 4  # two convolutions, two fully connected
    assert all(v["weight_stats"]["std"] > 0 for v in with_weights)
    assert js["gradcam"].startswith("data:image/png;base64,")
    assert js["predictions"][0][1] >= js["predictions"][-1][1]


def test_a_second_request_reuses_the_warm_worker(served):
    data = png(Image.new("L", (28, 28), 100))
    served.classify_one("torch", data)
    pids = served.pool.pids()
    loaded = served.pool.loaded()
    for _ in range(3):
        assert served.classify_one("torch", data).status_code == 200
    assert served.pool.pids() == pids and served.pool.loaded() == loaded
    key = next(k for k in loaded if k.startswith(served.models["torch"] + "@2@"))
    assert loaded[key] in pids


def test_top_n_per_class(served):
    r = served.classify_many("torch", served.val_list(), route="top_n/json", top_n="2")
    assert r.status_code == 200, r.get_data(as_text=True)
    classes = r.get_json()["top_n"]
    assert [c["label"] for c in classes] == ["circle", "square", "triangle"]
    for entry in classes:
        percents = [image["percent"] for image in entry["images"]]
        assert len(percents) == 2 and percents == sorted(percents, reverse=True)
        assert all(image["image"].startswith("data:image/png") for image in entry["images"])


def test_hardest_samples_of_the_val_split(served):
    job_id = served.models["caffe"]
    r = served.client.get(f"/models/{job_id}/hardest/json?split=val&n=3")
    assert r.status_code == 200, r.get_data(as_text=True)
    js = r.get_json()
    val_accuracy = served.client.get(f"/models/{job_id}/json").get_json()["metrics"]["val"]["accuracy"][-1][1]
    assert js["total"] == 30 and js["accuracy"] == val_accuracy
    assert js["misclassified"] == round(30 * (1 - val_accuracy))
    hardest = js["hardest"]
    assert len(hardest) == min(3, js["misclassified"])
    assert [h["confidence"] for h in hardest] == sorted((h["confidence"] for h in hardest), reverse=True)
    val_paths = {line.rsplit(" ", 1)[0] for line in served.val_list().splitlines()}
    for h in hardest:
        assert h["path"] in val_paths and h["true_label"] != h["predicted_label"]
    assert served.client.get(f"/models/{job_id}/hardest/json?split=test").status_code == 404
    assert served.client.get(f"/models/{job_id}/hardest/json?split=nope").status_code == 400


def test_result_files_are_only_the_ones_made(served):
    job_id = served.models["torch"]
    assert served.client.get(f"/models/{job_id}/results/job.json").status_code == 404
    assert served.client.get(f"/models/{job_id}/results/confusion-0000000000000000.png").status_code == 404


def test_server_paths_are_checked_against_the_data_roots(served, tmp_path, monkeypatch):
    inside = tmp_path / "inside.png"
    Image.new("L", (28, 28), 50).save(inside)
    outside = val_image(served)
    monkeypatch.setattr(served.workspace.settings, "data_roots", [str(tmp_path)])
    js = served.classify_many("torch", f"{inside}\n{outside}\n").get_json()
    assert list(js["classifications"]) == [str(inside)], js
    assert js["errors"][0]["line"] == 2 and "outside the data roots" in js["errors"][0]["message"]
    assert served.classify_one("torch", image_path=str(inside)).status_code == 200
    r = served.classify_one("torch", image_path=outside)
    assert r.status_code == 400 and "outside the data roots" in r.get_json()["error"]["message"]


def test_a_long_list_reports_progress_on_the_bus(served):
    job_id = served.models["caffe"]
    served.recorder.events.clear()
    assert served.classify_many("caffe", served.val_list()).status_code == 200
    _, last = served.recorder.wait_for(
        lambda e, p: e == "inference_progress" and p["job_id"] == job_id and p["done"] == 30
    )
    assert last == {"job_id": job_id, "done": 30, "total": 30}


def test_the_jobs_folder_is_not_readable_through_a_data_root(served, tmp_path, monkeypatch):
    """A data root that holds the jobs folder: a list may name images beside it, never inside it, and a path
    inside it reads exactly like a missing one."""
    jobs = served.workspace.settings.jobs_path
    root = os.path.dirname(jobs)
    os.makedirs(os.path.join(root, "pictures"), exist_ok=True)
    beside = os.path.join(root, "pictures", "beside.png")
    Image.new("L", (28, 28), 50).save(beside)
    inside_jobs = os.path.join(jobs, served.dataset.id, "inside.png")
    Image.new("L", (28, 28), 50).save(inside_jobs)
    missing = os.path.join(root, "pictures", "missing.png")
    monkeypatch.setattr(served.workspace.settings, "data_roots", [root])
    js = served.classify_many("torch", f"{beside}\n{inside_jobs}\n{missing}\n").get_json()
    assert list(js["classifications"]) == [beside]
    assert [(e["line"], e["message"]) for e in js["errors"]] == [
        (2, f"{inside_jobs} does not exist or is outside the data roots ({root})"),
        (3, f"{missing} does not exist or is outside the data roots ({root})"),
    ]
    r = served.classify_one("torch", image_path=inside_jobs)
    assert r.status_code == 400 and r.get_json()["error"]["message"].endswith(f"is outside the data roots ({root})")


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(served, tmp_path, monkeypatch):
    bomb = io.BytesIO()
    Image.new("1", (8001, 8001)).save(bomb, "PNG")  # 64,016,001 pixels in a few kilobytes
    assert len(bomb.getvalue()) < 100_000
    r = served.classify_one("torch", bomb.getvalue(), "bomb.png")
    assert r.status_code == 400, r.get_data(as_text=True)
    assert "8001x8001 pixels (64,016,001; this server's limit is 64,000,000)" in r.get_json()["error"]["message"]

    monkeypatch.setattr(served.workspace.settings, "max_image_pixels", 1000)
    small, big = tmp_path / "small.png", tmp_path / "big.png"
    Image.new("L", (25, 40), 50).save(small)  # 1,000 pixels: at the limit
    Image.new("L", (36, 30), 50).save(big)  # 1,080 pixels
    with open(big, "rb") as fh:
        r = served.classify_one("torch", fh.read(), "big.png")
    assert r.status_code == 400
    assert "36x30 pixels (1,080; this server's limit is 1,000)" in r.get_json()["error"]["message"]
    js = served.classify_many("torch", f"{small}\n{big}\n").get_json()
    assert list(js["classifications"]) == [str(small)]
    (error,) = js["errors"]
    assert error["line"] == 2 and "36x30 pixels (1,080; this server's limit is 1,000)" in error["message"]
