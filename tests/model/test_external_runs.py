"""External runs through the in-process app: create, log (one point, a list, JSON lines), finish, the heartbeat
check, refusals, owners, the page and the console."""

from __future__ import annotations

import json

from digits.model.external import _lines, to_records
from tests.support import JSON
from tests.support.accounts import add_accounts, bearer
from tests.support.apps import sign_in, with_settings
from tests.support.waiting import SHORT_S


def create(client, **body):
    r = client.post("/runs/json", json={"name": "script run", **body}, headers=JSON)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_a_run_takes_points_in_every_shape_and_finishes_done(signed_in, recorder):
    run = create(signed_in, epochs=4, settings={"lr": 0.1, "arch": "mlp"}, notes="from a notebook")
    assert run["status"] == "Running" and run["log_url"] == f"/runs/{run['id']}/log"
    one = signed_in.post(run["log_url"], json={"epoch": 0.5, "loss": 2.0, "lr": 0.1}, headers=JSON)
    assert one.status_code == 200 and one.get_json()["values"] == 2
    many = [{"epoch": 1, "phase": "val", "loss": 1.5, "accuracy": 0.6}, {"epoch": 1, "val_top5": 0.9, "loss": 1.7}]
    assert signed_in.post(run["log_url"], json=many, headers=JSON).get_json()["values"] == 4
    lines = "\n".join(json.dumps({"epoch": 2 + i / 10, "loss": 1.0 - i / 100}) for i in range(10)) + "\n"
    r = signed_in.post(run["log_url"], data=lines, headers={**JSON, "Content-Type": "application/x-ndjson"})
    assert r.get_json()["values"] == 10
    batch = recorder.wait_for(lambda e, p: e == "metrics" and p["job_id"] == run["id"] and len(p["points"]) == 4)
    assert ["val", "accuracy", 1.0, 0.6, None] in batch[1]["points"]
    assert ["val", "top5", 1.0, 0.9, None] in batch[1]["points"]
    info = signed_in.get(run["json_url"]).get_json()
    assert info["metrics"]["train"]["learning_rate"] == [[0.5, 0.1]]
    assert info["metrics"]["val"]["accuracy"] == [[1.0, 0.6]]
    assert len(info["metrics"]["train"]["loss"]) == 12
    assert info["epoch"] == 2.9 and info["progress"] == round(2.9 / 4, 4)
    assert info["settings"] == {"lr": 0.1, "arch": "mlp"} and info["notes"] == "from a notebook"
    # The model twin and the charts' route read the same points.
    assert signed_in.get(f"/models/{run['id']}/json").get_json()["metrics"]["val"]["loss"] == [[1.0, 1.5]]
    charts = signed_in.get(f"/runs/{run['id']}/metrics/json?points=100").get_json()
    assert charts["epochs"] == 4 and {(s["phase"], s["name"]) for s in charts["series"]} >= {("train", "loss")}
    assert signed_in.post(run["finish_url"], headers=JSON).get_json()["status"] == "Done"
    assert recorder.wait_status(run["id"]) == "Done"
    again = signed_in.post(run["log_url"], json={"epoch": 3, "loss": 0.5}, headers=JSON)
    assert again.status_code == 409 and "ended (Done)" in again.get_json()["error"]["message"]


def test_finish_with_an_error_and_the_page_and_console_show_it(signed_in):
    run = create(signed_in, name="<b>crashy</b>")
    signed_in.post(run["log_url"], json={"step": 10, "loss": 3.0}, headers=JSON)
    r = signed_in.post(run["finish_url"], json={"error": "ZeroDivisionError: <division> by zero"}, headers=JSON)
    assert r.get_json()["status"] == "Error"
    status = signed_in.get(f"/jobs/{run['id']}/status").get_json()
    assert status["status"] == "Error" and status["error"] == "ZeroDivisionError: <division> by zero"
    page = signed_in.get(run["url"]).get_data(as_text=True)
    assert "&lt;b&gt;crashy&lt;/b&gt;" in page and "<b>crashy</b>" not in page
    assert "ZeroDivisionError: &lt;division&gt; by zero" in page and 'id="model-charts"' in page
    assert f'data-metrics-url="/runs/{run["id"]}/metrics/json"' in page
    assert signed_in.get(run["json_url"]).get_json()["x"] == "step"
    home = signed_in.get("/").get_data(as_text=True)
    assert f'href="/runs/{run["id"]}"' in home
    assert run["id"] in [m["id"] for m in signed_in.get("/index/json").get_json()["models"]]


@with_settings({"run_heartbeat_s": 0.5})
def test_a_run_whose_script_goes_quiet_ends_in_error(signed_in, recorder):
    run = create(signed_in)
    signed_in.post(run["heartbeat_url"], headers=JSON)
    assert recorder.wait_status(run["id"], timeout=SHORT_S) == "Error"
    status = signed_in.get(f"/jobs/{run['id']}/status").get_json()
    assert status["error"].startswith("no heartbeat since ")
    assert signed_in.post(run["heartbeat_url"], headers=JSON).status_code == 409


@with_settings({"run_heartbeat_s": 0.5})
def test_heartbeats_keep_a_run_open(signed_in, recorder, workspace):
    run = create(signed_in)
    runs = signed_in.application.extensions["digits_runs"]
    job = workspace.store.get(run["id"])
    runs.seen[job.id] = 100.0
    assert runs.check(now=100.4) is True and job.status.value == "Running"
    signed_in.post(run["heartbeat_url"], headers=JSON)
    assert runs.check(now=runs.seen[job.id] + 0.4) is True and job.status.value == "Running"
    assert runs.check(now=runs.seen[job.id] + 0.6) is False and job.status.value == "Error"


def test_bad_points_are_refused_naming_the_point_and_nothing_is_kept(signed_in):
    run = create(signed_in)
    cases = [
        (b"", "holds no points"),
        (b"{nope", "not JSON"),
        (json.dumps([{"epoch": 1, "loss": 1}, {"loss": 2}]).encode(), "point 2: give its epoch or its step"),
        (json.dumps({"epoch": "one", "loss": 1}).encode(), "epoch must be a number"),
        (json.dumps({"epoch": 1, "loss": "low"}).encode(), "point 1: loss must be a number"),
        (json.dumps({"epoch": 1, "phase": "test", "loss": 1}).encode(), "phase must be train or val"),
        (json.dumps({"epoch": 1}).encode(), "names no metric"),
        (json.dumps([1, 2]).encode(), "point 1: expected an object"),
    ]
    for body, message in cases:
        r = signed_in.post(run["log_url"], data=body, headers={**JSON, "Content-Type": "application/json"})
        assert r.status_code == 400, body
        assert message in r.get_json()["error"]["message"], (body, r.get_json())
    assert signed_in.get(run["json_url"]).get_json()["metrics"] == {}
    signed_in.post(run["log_url"], json={"epoch": 1, "loss": 1}, headers=JSON)
    r = signed_in.post(run["log_url"], json={"step": 5, "loss": 1}, headers=JSON)
    assert r.status_code == 400 and "charted by epoch" in r.get_json()["error"]["message"]


def test_create_refusals_name_the_field(signed_in):
    r = signed_in.post("/runs/json", json={"name": "", "epochs": -1, "settings": [1]}, headers=JSON)
    message = r.get_json()["error"]["message"]
    assert r.status_code == 400 and "Name:" in message and "Epochs:" in message and "Settings:" in message


def test_records_chart_steps_when_points_carry_no_epoch():
    records, x, last = to_records([{"step": 7, "loss": 1, "lr": 0.5}], None, 1.0)
    assert x == "step" and last is None
    assert [(r["phase"], r["name"], r["epoch"], r["iteration"]) for r in records] == [
        ("train", "loss", 7.0, 7),
        ("train", "learning_rate", 7.0, 7),
    ]


@with_settings({"auth": "password"})
def test_only_the_owner_or_an_admin_logs_to_a_run(app, workspace):
    tokens = add_accounts(workspace.accounts, "ann", "bob", "root", admins=("root",))
    client = app.test_client()
    r = client.post("/runs/json", json={"name": "ann's"}, headers=bearer(tokens["ann"]))
    run = r.get_json()
    point = {"epoch": 1, "loss": 1.0}
    refused = client.post(run["log_url"], json=point, headers=bearer(tokens["bob"]))
    assert refused.status_code == 403 and "belongs to ann" in refused.get_json()["error"]["message"]
    assert client.post(run["finish_url"], headers=bearer(tokens["bob"])).status_code == 403
    assert client.post(run["log_url"], json=point, headers=bearer(tokens["root"])).status_code == 200
    assert client.post(run["log_url"], json=point, headers=bearer(tokens["ann"])).status_code == 200
    assert client.post(run["log_url"], json=point, headers=JSON).status_code == 401
    assert sign_in(app, "bob").get(run["url"]).status_code == 200  # everyone sees every job


def test_metrics_lines_are_what_json_writes():
    """The ingest writes metrics.jsonl lines by hand (its hot loop); they must be json.dumps' bytes exactly."""
    points = [
        {"epoch": i / 7, "step": i, "loss": 1 / (i + 1), "val_accuracy": 0.5, "lr": 1e-20 * i, 'we"ird\\name': None}
        for i in range(20)
    ]
    points.append({"epoch": 3, "phase": "val", "loss": float("inf"), "big": 10**400, "nope": float("nan")})
    records, _, _ = to_records(points, None, 1234.5678)
    assert _lines(records) == "".join(json.dumps(r) + "\n" for r in records).encode()
    assert [json.loads(line) for line in _lines(records).splitlines()] == records
