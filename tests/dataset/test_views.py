"""The dataset form and pages through Flask's test client, with real dataset workers."""

import io
import os
import re

import pytest

from tests.support.accounts import add_accounts
from tests.support.apps import sign_in
from tests.support.forms import dataset_form
from tests.support.imagegen import add_odd_and_broken, make_shapes
from tests.support.waiting import LONG_S, record
from tests.support.zips import folder_zip

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
# Color 16x16 PNG records of the shapes.
COLOR = {"resize_channels": "3", "resize_width": "16", "resize_height": "16", "encoding": "png"}


def base_form(folder, **extra):
    return dataset_form(folder, **{**COLOR, **extra})


def create(client, form, **kw):
    return client.post("/datasets/images/classification/json", data=form, content_type="multipart/form-data", **kw)


def zip_of(folder, extra: dict[str, bytes] | None = None) -> io.BytesIO:
    return io.BytesIO(folder_zip(folder, extra))


def test_folder_with_odd_and_broken_files_builds_and_reports(signed_in, recorder, workspace, tmp_path):
    src = tmp_path / "src"
    make_shapes(str(src), per_class=12)
    odd, broken = add_odd_and_broken(str(src))
    r = create(signed_in, base_form(src, folder_pct_val="25"))
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert r.get_json()["name"] == "shapes"
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    js = signed_in.get(f"/datasets/{job_id}/json").get_json()
    entries = {t["name"]: t["entries"] for t in js["CreateDbTasks"]}
    valid = 36 + len(odd)
    assert sum(entries.values()) == valid
    parse = js["ParseFolderTasks"][0]
    assert parse["label_count"] == 3 and parse["train_count"] + parse["val_count"] == valid + 3
    assert {t["image_width"] for t in js["CreateDbTasks"]} == {16}
    skipped = {os.path.basename(s["path"]): s["reason"] for s in js["skipped"]}
    assert set(skipped) == set(broken)
    page = signed_in.get(f"/datasets/{job_id}").get_data(as_text=True)
    for name in broken:
        assert name in page
    job_dir = workspace.store.job_dir(job_id)
    for name in ("labels.txt", "train.txt", "val.txt", "mean.binaryproto", "mean.png", "stats.json"):
        assert os.path.isfile(os.path.join(job_dir, name)), name
    with signed_in.get(f"/datasets/{job_id}/mean.png") as mean:  # a file response: closed when read
        assert mean.status_code == 200
    explore = signed_in.get(f"/datasets/{job_id}/explore?split=val&label=1")
    assert explore.status_code == 200 and f"/datasets/{job_id}/records/val/" in explore.get_data(as_text=True)
    image = signed_in.get(f"/datasets/{job_id}/records/train/0")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert signed_in.get(f"/datasets/{job_id}/records/train/99999").status_code == 404
    assert signed_in.get(f"/datasets/{job_id}/records/nope/0").status_code == 404


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"folder_train": "/no/such/folder"}, "folder_train", "does not exist"),
        ({"folder_train": "relative/path"}, "folder_train", "not an absolute path"),
        ({"dataset_name": ""}, "dataset_name", "required"),
        ({"resize_width": "0"}, "resize_width", "at least 1"),
        ({"resize_height": "tall"}, "resize_height", "whole number"),
        ({"folder_pct_val": "150"}, "folder_pct_val", "at most 100"),
        ({"folder_pct_val": "60", "folder_pct_test": "40"}, "folder_pct_val", "leave some images"),
        (
            {"folder_train_min_per_class": "9", "folder_train_max_per_class": "3"},
            "folder_train_max_per_class",
            "smaller",
        ),
        ({"resize_mode": "stretch"}, "resize_mode", "squash"),
        ({"encoding": "gif"}, "encoding", "png"),
        ({"resize_channels": "4"}, "resize_channels", "Choose one of"),
        ({"method": "magic"}, "method", "folder"),
    ],
)
def test_bad_input_is_a_field_error_and_creates_nothing(signed_in, workspace, tmp_path, change, field, words):
    make_shapes(str(tmp_path / "src"), per_class=2)
    r = create(signed_in, base_form(tmp_path / "src", **change))
    assert r.status_code == 400
    errors = r.get_json()["errors"]
    assert field in errors and words in " ".join(errors[field])
    assert workspace.store.all() == []
    leftovers = [e for e in os.listdir(workspace.store.jobs_dir) if not e.startswith(".")]
    assert [e for e in leftovers if e not in ("digits.log", "audit.log")] == []


def test_a_folder_with_one_class_is_refused(signed_in, tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=2, classes=("circle",))
    r = create(signed_in, base_form(tmp_path / "src"))
    assert r.status_code == 400 and "at least 2" in r.get_json()["errors"]["folder_train"][0]


def test_the_html_form_shows_errors_in_place(signed_in):
    r = signed_in.post(
        "/datasets/images/classification", data={"method": "folder", "folder_train": "/nowhere"}, headers=BROWSER
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "The dataset was not created" in html and "/nowhere does not exist" in html
    assert 'value="/nowhere"' in html


def test_creating_needs_a_signed_in_user(client, tmp_path):
    r = create(client, base_form(tmp_path))
    assert r.status_code == 401
    r = client.get("/datasets/images/classification/new", headers=BROWSER)
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_zip_upload_of_class_folders(signed_in, recorder, workspace, tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=4)
    form = base_form(None, folder_train_zip=(zip_of(tmp_path / "src"), "shapes.zip"), folder_pct_val="25")
    r = create(signed_in, form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    js = signed_in.get(f"/datasets/{job_id}/json").get_json()
    assert sum(t["entries"] for t in js["CreateDbTasks"]) == 12


@pytest.mark.parametrize("name, words", [("../evil.png", "outside the archive"), ("/etc/evil.png", "absolute path")])
def test_zip_with_unsafe_paths_is_refused(signed_in, workspace, tmp_path, name, words):
    make_shapes(str(tmp_path / "src"), per_class=2)
    form = base_form(None, folder_train_zip=(zip_of(tmp_path / "src", {name: b"x"}), "bad.zip"))
    r = create(signed_in, form)
    assert r.status_code == 400 and words in r.get_json()["errors"]["folder_train_zip"][0]
    assert workspace.store.all() == []
    assert not os.path.exists(tmp_path / "evil.png")


def test_text_lists_uploaded_with_the_form(signed_in, recorder, tmp_path):
    made = make_shapes(str(tmp_path / "img"), per_class=4)
    lines = "".join(f"{os.path.relpath(p, tmp_path / 'img')} {i}\n" for i, c in enumerate(made) for p in made[c])
    form = {
        "method": "textfile",
        "dataset_name": "lists",
        "resize_width": "8",
        "resize_height": "8",
        "textfile_train_images": (io.BytesIO(lines.encode()), "train.txt"),
        "textfile_train_folder": str(tmp_path / "img"),
        "textfile_use_val": "true",
        "textfile_val_images": (io.BytesIO(lines.encode()), "val.txt"),
        "textfile_val_folder": str(tmp_path / "img"),
        "textfile_labels_file": (io.BytesIO(b"circle\nsquare\ntriangle\n"), "labels.txt"),
    }
    r = create(signed_in, form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    js = signed_in.get(f"/datasets/{job_id}/json").get_json()
    assert [t["entries"] for t in js["CreateDbTasks"]] == [12, 12]
    assert js["labels"] == ["circle", "square", "triangle"]

    bad = lines + "img/missing.png 1\n"
    form.update(
        textfile_train_images=(io.BytesIO(bad.encode()), "train.txt"),
        textfile_val_images=(io.BytesIO(lines.encode()), "val.txt"),
        textfile_labels_file=(io.BytesIO(b"circle\nsquare\ntriangle\n"), "labels.txt"),
    )
    r = create(signed_in, form)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Error"
    status = signed_in.get(f"/datasets/{job_id}/status").get_json()
    assert "line 13: file not found" in status["error"]


def test_data_roots_limit_server_paths(tmp_path, make_app):
    allowed = tmp_path / "allowed"
    make_shapes(str(allowed / "shapes"), per_class=2)
    make_shapes(str(tmp_path / "elsewhere"), per_class=2)
    c = sign_in(make_app(data_roots=[str(allowed)]))
    r = create(c, base_form(tmp_path / "elsewhere"))
    assert r.status_code == 400 and "outside the data roots" in r.get_json()["errors"]["folder_train"][0]
    roots = c.get("/datasets/folders/json").get_json()
    assert [f["path"] for f in roots["folders"]] == [os.path.realpath(allowed)]
    inside = c.get(f"/datasets/folders/json?path={allowed}").get_json()
    assert [f["name"] for f in inside["folders"]] == ["shapes"] and inside["parent"] is None
    assert c.get("/datasets/folders/json?path=/etc").status_code == 400


def test_a_server_on_the_network_without_data_roots_reads_no_folders(tmp_path, make_app):
    make_shapes(str(tmp_path / "src"), per_class=2)
    app = make_app(host="0.0.0.0", auth="password")
    add_accounts(app.extensions["digits"].accounts, "ann")
    r = create(sign_in(app), base_form(tmp_path / "src"))
    assert r.status_code == 400 and "no --data-root" in r.get_json()["errors"]["folder_train"][0]


def test_a_team_server_without_data_roots_takes_uploads_only(tmp_path, make_app):
    """A loopback --auth password server (what a reverse proxy or an SSH tunnel looks like): no server paths at
    all, not even to probe; a zip upload builds."""
    make_shapes(str(tmp_path / "src"), per_class=3)
    app = make_app(auth="password")
    workspace = app.extensions["digits"]
    recorder = record(workspace)
    add_accounts(workspace.accounts, "ann")
    c = sign_in(app)
    messages = set()
    for folder in (tmp_path / "src", tmp_path / "nowhere", workspace.store.jobs_dir):
        r = create(c, base_form(folder))
        assert r.status_code == 400
        messages.add(r.get_json()["errors"]["folder_train"][0])
    (message,) = messages  # one answer whatever the path: nothing is probed
    assert "reads no server folders" in message and "--data-root" in message and "Upload" in message
    r = c.get("/datasets/folders/json")
    assert r.status_code == 400 and r.get_json()["error"]["message"] == message
    form = base_form(None, folder_train_zip=(zip_of(tmp_path / "src"), "shapes.zip"), folder_pct_val="0")
    r = create(c, form)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert recorder.wait_status(r.get_json()["id"], timeout=LONG_S) == "Done"


def test_the_folder_picker_never_shows_the_jobs_folder(tmp_path, make_app):
    root = tmp_path / "data"
    make_shapes(str(root / "shapes"), per_class=1)
    c = make_app(root / "jobs", data_roots=[str(root)]).test_client()
    listed = c.get(f"/datasets/folders/json?path={root}").get_json()
    assert [f["name"] for f in listed["folders"]] == ["shapes"]
    r = c.get(f"/datasets/folders/json?path={root / 'jobs'}")
    assert r.status_code == 400 and "does not exist or is outside the data roots" in r.get_json()["error"]["message"]


def test_a_folder_in_the_home_of_the_servers_account_builds(signed_in, recorder, workspace, tmp_path, monkeypatch):
    home = tmp_path / "home"
    make_shapes(str(home / "mnist" / "train"), per_class=4)
    make_shapes(str(home / "mnist" / "test"), per_class=2)
    monkeypatch.setenv("HOME", str(home))
    form = base_form("~/mnist/train", has_val_folder="true", folder_val="~/mnist/test")
    r = create(signed_in, form)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    job = workspace.store.get(job_id)
    assert job.form["folder_train"] == "~/mnist/train"  # as typed: a clone types it again
    parse_args = job.tasks[0].args
    assert parse_args["train"]["path"] == os.path.realpath(home / "mnist" / "train")
    assert parse_args["val"]["path"] == os.path.realpath(home / "mnist" / "test")
    entries = {t["split"]: t["entries"] for t in signed_in.get(f"/datasets/{job_id}/json").get_json()["CreateDbTasks"]}
    assert entries == {"train": 12, "val": 6}


def test_errors_name_the_fields_by_their_labels(signed_in, tmp_path):
    form = base_form("~/nowhere", has_val_folder="true", folder_val="mnist/test", resize_width="0", dataset_name="")
    r = create(signed_in, form)
    assert r.status_code == 400
    body = r.get_json()
    # Scripts keep the field names as keys; the message a person reads names the labels.
    assert set(body["errors"]) == {"folder_train", "folder_val", "resize_width", "dataset_name"}
    message = body["error"]["message"]
    for label in ("Training images: ~/nowhere (", "Validation images: mnist/test is not an absolute path", "Width: "):
        assert label in message
    assert "Dataset name: This field is required." in message
    assert "folder_val" not in message and "resize_width" not in message

    page = signed_in.post("/datasets/images/classification", data=form, headers=BROWSER).get_data(as_text=True)
    summary = page[page.index('id="form-errors"') : page.index("</ul>", page.index('id="form-errors"'))]
    assert '<a href="#folder_val" class="alert-link" data-field="folder_val">Validation images</a>' in summary
    assert "folder_val<" not in summary and ">folder_train" not in summary
    assert "js/form-errors.js" in page  # moves focus to the first invalid field
    # Beside the field: marked invalid, described by its message.
    field = page[page.index('id="folder_val"') - 200 : page.index('id="folder_val-error"') + 200]
    assert "is-invalid" in field and 'aria-invalid="true"' in field
    assert 'aria-describedby="folder_val-error folder_val-preview"' in field
    assert 'id="folder_val-error">mnist/test is not an absolute path' in field


def test_a_folder_one_level_too_high_is_refused_with_the_one_meant(signed_in, tmp_path):
    make_shapes(str(tmp_path / "mnist" / "train"), per_class=2)
    r = create(signed_in, base_form(tmp_path / "mnist"))
    (message,) = r.get_json()["errors"]["folder_train"]
    assert "holds 1 class folder" in message and message.endswith(f"Did you mean {tmp_path / 'mnist' / 'train'}?")


def test_clone_fills_in_new_dataset_with_every_field(signed_in, recorder, tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=4)
    make_shapes(str(tmp_path / "val"), per_class=2)
    form = base_form(
        tmp_path / "src",
        has_val_folder="true",
        folder_val=str(tmp_path / "val"),
        resize_mode="crop",
        encoding="jpg",
        group_name="shapes & <friends>",
        folder_train_max_per_class="3",
        folder_pct_test="10",
    )
    r = signed_in.post("/datasets/images/classification", data={**form, "csrf_token": "x"}, headers=BROWSER)
    assert r.status_code == 302, r.get_data(as_text=True)
    job_id = r.headers["Location"].rsplit("/", 1)[1]
    recorder.wait_status(job_id, timeout=LONG_S)
    show = signed_in.get(f"/datasets/{job_id}").get_data(as_text=True)
    assert f'href="/datasets/images/classification/new?clone={job_id}"' in show

    page = signed_in.get(f"/datasets/images/classification/new?clone={job_id}").get_data(as_text=True)
    for name, value in [
        ("folder_train", str(tmp_path / "src")),
        ("folder_val", str(tmp_path / "val")),
        ("resize_width", "16"),
        ("folder_train_max_per_class", "3"),
        ("folder_pct_test", "10"),
        ("group_name", "shapes &amp; &lt;friends&gt;"),
        ("dataset_name", "shapes (clone)"),
    ]:
        assert re.search(rf'<input[^>]*name="{name}"[^>]*value="{re.escape(value)}"', page), name
    assert '<option value="crop" selected>' in page and '<option value="jpg" selected>' in page
    assert re.search(r'<input[^>]*id="has_val_folder"[^>]*checked', page)
    assert not re.search(r'<input[^>]*id="has_test_folder"[^>]*checked', page)
    assert 'id="clone-note"' in page and "choose them again" not in page  # nothing was uploaded
    assert "csrf_token" not in signed_in.application.extensions["digits"].store.get(job_id).form
    assert signed_in.get("/datasets/images/classification/new?clone=20000101-000000-dead").status_code == 404


def test_clone_of_a_zip_dataset_asks_for_the_zip_again(signed_in, recorder, tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=2)
    r = create(signed_in, base_form(None, folder_train_zip=(zip_of(tmp_path / "src"), "shapes.zip")))
    job_id = r.get_json()["id"]
    page = signed_in.get(f"/datasets/images/classification/new?clone={job_id}").get_data(as_text=True)
    assert "choose them again: Training images (zip of class folders)." in page


def test_the_dataset_page_links_its_labels_and_lists(signed_in, recorder, tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=4)
    job_id = create(signed_in, base_form(tmp_path / "src", folder_pct_val="25")).get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    page = signed_in.get(f"/datasets/{job_id}").get_data(as_text=True)
    links = [f'href="/datasets/{job_id}/{name}"' for name in ("labels.txt", "train.txt", "val.txt")]
    assert all(link in page for link in links) and f"/datasets/{job_id}/test.txt" not in page
    with signed_in.get(f"/datasets/{job_id}/labels.txt") as labels:  # a file response: closed when read
        assert labels.mimetype == "text/plain" and labels.get_data(as_text=True) == "circle\nsquare\ntriangle\n"
    with signed_in.get(f"/datasets/{job_id}/train.txt") as listed:
        train = listed.get_data(as_text=True).splitlines()
    assert len(train) == 9 and all(line.startswith(str(tmp_path / "src")) for line in train)
    assert signed_in.get(f"/datasets/{job_id}/test.txt").status_code == 404
