"""Routes through Flask's test client on an in-process app."""

import os
import re
from html import unescape as html_unescape
from pathlib import Path

from digits.dataset.forms import FIELD_LABELS as DATASET_LABELS
from digits.model.forms import FIELD_LABELS as MODEL_LABELS
from tests.support import JSON, ROOT
from tests.support.apps import sign_in
from tests.support.disk import fill, small_disk
from tests.support.fakejobs import fake_job, run_fake_job
from tests.support.waiting import wait_until

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_index_json_lists_datasets_and_models(client, workspace, recorder):
    ds = fake_job(name="digits", category="dataset")
    model = fake_job(name="lenet", category="model", depends_on=[ds.id])
    workspace.add_job(ds)
    workspace.add_job(model)
    recorder.wait_status(model.id)
    js = client.get("/index/json").get_json()
    assert js["version"]
    assert [(d["id"], d["name"], d["status"]) for d in js["datasets"]] == [(ds.id, "digits", "Done")]
    assert [m["id"] for m in js["models"]] == [model.id]
    assert {"owner", "submitted", "elapsed", "progress"} <= set(js["models"][0])


def test_console_page_lists_jobs_with_running_first(client, workspace, recorder):
    run_fake_job(workspace, name="finished-set")
    running = fake_job(name="running-set", tasks=[{"steps": 1000, "delay": 0.05}])
    workspace.add_job(running)
    recorder.wait_for(lambda e, p: e == "task_progress" and p["job_id"] == running.id)
    html = client.get("/").get_data(as_text=True)
    assert html.index("running-set") < html.index("finished-set")
    assert "New Dataset" in html and "New Model" in html
    workspace.scheduler.abort(running)
    recorder.wait_status(running.id)


def test_status_json_and_unknown_job(client, workspace):
    job = run_fake_job(workspace)
    for kind in ("jobs", "datasets"):
        js = client.get(f"/{kind}/{job.id}/status").get_json()
        assert js["status"] == "Done" and js["name"] == "fake" and js["type"] == "fake-dataset" and js["error"] is None
    r = client.get(f"/models/{job.id}/status")  # a dataset is not a model
    assert r.status_code == 404
    r = client.get("/jobs/20000101-000000-dead/status")
    assert r.status_code == 404 and r.get_json()["error"]["type"] == "not_found"
    r = client.get("/jobs/..%2f..%2fetc/status")
    assert r.status_code == 404


def test_errors_are_json_for_scripts_and_pages_for_browsers(client):
    r = client.get("/no/such/page", headers=BROWSER)
    assert r.status_code == 404 and b"<html" in r.data and b"Traceback" not in r.data
    r = client.get("/no/such/page", headers=JSON)
    assert r.status_code == 404 and r.get_json()["error"]["type"] == "not_found"
    r = client.delete("/jobs/20000101-000000-dead", headers={"Accept": "*/*"})
    assert r.status_code == 404 and r.get_json()["error"]["message"]


def test_unexpected_errors_never_show_a_traceback(app, client):
    @app.route("/boom/json")
    def boom():
        raise RuntimeError("secret internals")

    r = client.get("/boom/json")
    assert r.status_code == 500
    assert "secret internals" not in r.get_data(as_text=True)
    assert r.get_json()["error"]["type"] == "internal_error"


def test_login_sets_the_session_user(client):
    r = client.post("/login", data={"username": "../evil"}, headers=JSON)
    assert r.status_code == 400 and "username" in r.get_json()["errors"]
    r = client.post("/login", data={"username": "ann", "next": "https://elsewhere.example/"}, headers=BROWSER)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "Signed in as <strong>ann</strong>" in client.get("/").get_data(as_text=True)
    client.post("/logout", headers=BROWSER)
    assert "Signed in as" not in client.get("/").get_data(as_text=True)


def test_abort_and_delete_need_the_owner(client, workspace, recorder):
    job = fake_job(owner="ann", tasks=[{"steps": 1000, "delay": 0.05}])
    workspace.add_job(job)
    recorder.wait_for(lambda e, p: e == "task_progress" and p["job_id"] == job.id)
    assert client.post(f"/jobs/{job.id}/abort").status_code == 401
    sign_in(client, "bob")
    r = client.post(f"/jobs/{job.id}/abort")
    assert r.status_code == 403 and "ann" in r.get_json()["error"]["message"]
    assert client.delete(f"/datasets/{job.id}").status_code == 403
    sign_in(client, "ann")
    r = client.post(f"/datasets/{job.id}/abort")
    assert r.status_code == 200
    assert recorder.wait_status(job.id) == "Aborted"
    assert client.post(f"/jobs/{job.id}/abort").status_code == 409
    job_dir = workspace.store.job_dir(job.id)
    r = client.delete(f"/datasets/{job.id}")
    assert r.status_code == 200 and r.get_json() == {"id": job.id, "deleted": True}
    recorder.wait_for(lambda e, p: e == "job_deleted" and p["job_id"] == job.id)
    assert client.get(f"/jobs/{job.id}/status").status_code == 404
    wait_until(lambda: not os.path.exists(job_dir), what="the folder going once the worker has stopped")


def test_a_dataset_in_use_cannot_be_deleted(client, workspace, recorder):
    ds = fake_job(owner="ann", tasks=[{"steps": 1000, "delay": 0.05}])
    model = fake_job(owner="ann", category="model", depends_on=[ds.id])
    workspace.add_job(ds)
    workspace.add_job(model)
    sign_in(client, "ann")
    r = client.delete(f"/datasets/{ds.id}")
    assert r.status_code == 403 and model.id in r.get_json()["error"]["message"]
    client.post(f"/jobs/{model.id}/abort")
    client.post(f"/jobs/{ds.id}/abort")
    recorder.wait_status(ds.id)


def test_job_page_and_log(client, workspace):
    job = run_fake_job(workspace, name="<script>alert(1)</script>", tasks=[{"crash_at": 0}])
    html = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "worker exited with code 3" in html and "stderr line 29" in html
    with client.get(f"/jobs/{job.id}/logs/step0") as r:  # a file sent as it is: closed with the response
        assert r.status_code == 200 and "stderr line 29" in r.get_data(as_text=True)
    assert client.get(f"/jobs/{job.id}/logs/..%2fjob.json").status_code == 404
    js = client.get(f"/jobs/{job.id}/json").get_json()
    assert js["id"] == job.id and js["tasks"][0]["status"] == "Error"


def test_templates_reference_no_external_url():
    pattern = re.compile(r"""(?:src|href|action)\s*=\s*["'](?:https?:)?//""")
    for path in (ROOT / "digits" / "templates").rglob("*.html"):
        assert not pattern.search(path.read_text()), path


def test_vendor_assets_are_served(client):
    for asset in ("vendor/bootstrap/bootstrap.min.css", "vendor/socket.io/socket.io.min.js", "js/console.js"):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200, asset
        r.close()


def test_url_prefix(make_app):
    prefix = "/digits"
    c = make_app(url_prefix=prefix).test_client()
    assert c.get(f"{prefix}/index/json").status_code == 200
    html = c.get(f"{prefix}/").get_data(as_text=True)
    assert f'href="{prefix}/static/vendor/bootstrap/bootstrap.min.css"' in html
    assert f'content="{prefix}"' in html
    assert c.get("/index/json").status_code == 404


def test_rename_and_notes_by_the_owner_only(client, workspace):
    job = run_fake_job(workspace, owner="ann")
    sign_in(client, "bob")
    assert client.post(f"/jobs/{job.id}/edit", data={"name": "mine now"}).status_code == 403
    sign_in(client, "ann")
    r = client.post(f"/datasets/{job.id}/edit", data={"name": "<b>renamed</b>", "notes": "try lr 0.001"})
    assert r.status_code == 200 and r.get_json()["name"] == "<b>renamed</b>"
    assert client.post(f"/jobs/{job.id}/edit", data={"name": ""}).status_code == 400
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "&lt;b&gt;renamed&lt;/b&gt;" in page and "try lr 0.001" in page
    assert workspace.store.get(job.id).name == "<b>renamed</b>"


def test_unreadable_jobs_are_listed_and_left_as_they_are(tmp_path, make_app):
    jobs = tmp_path / "jobs"
    (jobs / "20240101-000000-0bad").mkdir(parents=True)
    (jobs / "20240101-000000-0bad" / "job.json").write_text("{ not json")
    c = make_app(jobs).test_client()
    reason = "job.json is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 3 (char 2))"
    js = c.get("/index/json").get_json()
    assert js["unreadable"] == [{"folder": "20240101-000000-0bad", "reason": reason}]
    assert js["datasets"] == [] and js["models"] == []
    html = c.get("/", headers=BROWSER).get_data(as_text=True)
    assert 'data-unreadable="20240101-000000-0bad"' in html and "not valid JSON" in html
    assert (jobs / "20240101-000000-0bad" / "job.json").read_text() == "{ not json"


def test_an_edit_that_cannot_be_saved_changes_nothing(tmp_path, make_app):
    with small_disk(tmp_path / "disk", "4m") as disk:
        app = make_app(disk)
        workspace = app.extensions["digits"]
        try:
            job = run_fake_job(workspace, owner="ann")
            client = sign_in(app)
            saved = (Path(disk) / job.id / "job.json").read_text()
            fill(disk, keep=8192)  # room for the audit line, not for a job.json with 10,000 bytes of notes
            r = client.post(f"/jobs/{job.id}/edit", data={"name": "renamed", "notes": "n" * 10_000})
            assert r.status_code == 507, r.get_data(as_text=True)
            error = r.get_json()["error"]
            assert error["type"] == "insufficient_storage"
            assert error["message"].startswith(f"the disk holding the jobs folder is full: could not write {job.id}/")
            assert workspace.store.get(job.id).name == "fake" and workspace.store.get(job.id).notes == ""
            js = client.get(f"/jobs/{job.id}/json").get_json()
            assert js["name"] == "fake" and js["notes"] == ""
            assert (Path(disk) / job.id / "job.json").read_text() == saved
        finally:
            workspace.close()


def _page_labels(html: str) -> dict[str, str]:
    """{control id: its label's text} of a page's <label for=...> elements."""
    found = re.findall(r'<label[^>]*\bfor="([^"]+)"[^>]*>(.*?)</label>', html, flags=re.S)
    return {name: " ".join(html_unescape(re.sub(r"<[^>]+>", "", text)).split()) for name, text in found}


def test_form_messages_name_fields_by_the_labels_their_pages_show(client):
    """Each form's labels for messages (dataset and model wings) are the labels its page shows (or that label with
    the detail that tells apart fields a page shows under one word, such as Gamma)."""
    signed = sign_in(client)
    for url, labels, at_least in [
        ("/datasets/images/classification/new", DATASET_LABELS, 25),
        ("/models/images/classification/new", MODEL_LABELS, 35),
    ]:
        shown = _page_labels(signed.get(url, headers=BROWSER).get_data(as_text=True))
        matched = 0
        for name, label in labels.items():
            if name in shown:
                assert label.startswith(shown[name]) or shown[name].startswith(label), (url, name, shown[name], label)
                matched += 1
        assert matched >= at_least, (url, matched)


def test_model_form_errors_name_the_labels_and_keep_the_field_keys(client):
    form = {
        "dataset": "20000101-000000-dead",
        "model_name": "",
        "method": "standard",
        "standard_networks": "lenet",
        "framework": "torch",
        "train_epochs": "0",
        "lr_policy": "step",
        "lr_step_gamma": "-1",
        "custom_network_snapshot": "weights/model.pt",
    }
    r = sign_in(client).post("/models/images/classification/json", data=form, headers=JSON)
    assert r.status_code == 400
    body = r.get_json()
    assert set(body["errors"]) == {"dataset", "model_name", "train_epochs", "lr_step_gamma", "custom_network_snapshot"}
    message = body["error"]["message"]
    for text in (
        "Dataset: No dataset with id",
        "Model name: This field is required.",
        "Training epochs: Must be at least 1.",
        "Gamma (step down): Must be at least 0.",
        "Pretrained weights: weights/model.pt is not an absolute path on the server",
    ):
        assert text in message, message
    assert not re.search(r"\b(train_epochs|lr_step_gamma|custom_network_snapshot|model_name)\b", message)
    # The page a browser gets back names them by their labels too, each linked to its field.
    page = sign_in(client).post("/models/images/classification", data=form, headers=BROWSER).get_data(as_text=True)
    summary = page[page.index('id="form-errors"') : page.index("</div>", page.index('id="form-errors"'))]
    assert '<a href="#train_epochs" class="alert-link" data-field="train_epochs">Training epochs</a>' in summary
    assert ">Gamma (step down)</a>" in summary and ">train_epochs<" not in summary


def test_model_clone_fills_in_every_field_and_marks_the_name(client, workspace, recorder):
    """The model's Clone follows the dataset's: every field of the job's form, the name marked as a clone."""
    job = fake_job(name="lenet", category="model")
    job.form = {"model_name": "lenet", "train_epochs": "7", "learning_rate": "0.05"}
    workspace.add_job(job)
    recorder.wait_status(job.id)
    page = sign_in(client).get(f"/models/images/classification/new?clone={job.id}", headers=BROWSER)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for name, value in [("model_name", "lenet (clone)"), ("train_epochs", "7"), ("learning_rate", "0.05")]:
        assert re.search(rf'<input[^>]*name="{name}"[^>]*value="{re.escape(value)}"', html), name
    assert client.get("/models/images/classification/new?clone=20000101-000000-dead").status_code == 404
