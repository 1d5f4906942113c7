"""The metric history behind the charts: decimation that keeps every extreme, an incremental reader that answers
exactly what read_metrics does, and the route the model page draws from."""

from __future__ import annotations

import json
import math
import os
import random

import numpy as np
import pytest

from digits.folders.model import read_metrics
from digits.model.metric_history import decimate, metric_history
from tests.support import JSON
from tests.support.fakejobs import run_fake_job


def test_decimation_keeps_each_columns_extremes_and_both_ends():
    rnd = random.Random(1)
    x = np.arange(100_000) / 100.0
    y = np.array([math.sin(i / 50) + rnd.gauss(0, 0.2) for i in range(100_000)])
    y[54_321] = 9.0  # a one-point spike
    y[7] = -9.0
    xs, ys, decimated = decimate(x, y, x[0], x[-1], 500)
    assert decimated and len(xs) <= 2 * 501 + 2
    assert np.all(np.diff(xs) > 0), "x stays increasing"
    assert (xs[0], ys[0]) == (x[0], y[0]) and (xs[-1], ys[-1]) == (x[-1], y[-1]), "both ends kept"
    assert ys.max() == 9.0 and ys.min() == -9.0
    # Every column's minimum and maximum, at their own x, are among the points drawn.
    column = np.floor((x - x[0]) * (500 / (x[-1] - x[0]))).astype(int)
    kept = dict(zip(xs.tolist(), ys.tolist(), strict=True))
    for c in range(0, 501, 37):
        idx = np.flatnonzero(column == c)
        lo, hi = idx[np.argmin(y[idx])], idx[np.argmax(y[idx])]
        assert kept[x[lo]] == y[lo] and kept[x[hi]] == y[hi], f"column {c}"
    # Every point drawn is a real point.
    assert all(y[int(round(v * 100))] == w for v, w in zip(xs, ys, strict=True))


def test_decimation_of_a_window_runs_to_its_edges_and_keeps_all_when_few():
    x = np.arange(100_000) / 100.0
    y = np.cos(x)
    xs, ys, decimated = decimate(x, y, 100, 200, 500)
    assert decimated and xs[0] < 100 and xs[-1] > 200 and len(xs) <= 2 * 501 + 2
    xs, ys, decimated = decimate(x, y, 100, 101, 500)  # 101 points and one beyond each edge: all of them
    assert not decimated and len(xs) == 103
    assert xs[0] == pytest.approx(99.99) and xs[-1] == pytest.approx(101.01)
    assert np.array_equal(ys, y[9999:10102])


def write_lines(path, lines):
    with open(path, "a") as fh:
        for line in lines:
            fh.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


def point(phase, name, epoch, value):
    return {"task": "train", "time": 1.0, "phase": phase, "name": name, "value": value, "epoch": epoch}


def test_history_answers_what_read_metrics_does_as_the_file_grows(tmp_path):
    job_dir = str(tmp_path)
    path = os.path.join(job_dir, "metrics.jsonl")
    write_lines(path, [point("train", "loss", e / 10, 1 / (e + 1)) for e in range(50)])
    assert metric_history(job_dir).as_dict() == read_metrics(job_dir)
    odd = [
        point("train", "loss", 5, 0.5),  # an int epoch
        point("train", "loss", 5.5, None),  # no value
        point("val", "accuracy", 1.0, float("nan")),
        "this is not json {",
        "[1, 2]",
        {"name": "loss", "epoch": 6.0, "value": 0.1},  # no phase: train
        point("train", "loss", 2.0, 0.9),  # a resumed run reports this stretch again
        point("val", "accuracy", 2.0, 0.75),
    ]
    write_lines(path, odd)
    with open(path, "a") as fh:
        fh.write('{"phase": "val", "name": "loss", "epo')  # being written
    got = metric_history(job_dir).as_dict()
    assert json.dumps(got) == json.dumps(read_metrics(job_dir)), "exactly: ints, nulls and NaN as reported"
    with open(path, "a") as fh:
        fh.write('ch": 2.0, "value": 0.25}\n')
    assert json.dumps(metric_history(job_dir).as_dict()) == json.dumps(read_metrics(job_dir))
    # What a chart draws: finite points, each past the ones before it.
    x, y = metric_history(job_dir).series[("train", "loss")].chart()
    assert np.all(np.diff(x) > 0) and len(x) == 50 + 1 + 1  # 5 and 6.0 kept; the null and the repeat are not
    assert x[-1] == 6.0 and y[-1] == 0.1
    x, y = metric_history(job_dir).series[("val", "accuracy")].chart()
    assert x.tolist() == [2.0] and y.tolist() == [0.75]
    # A file replaced (not appended to) is read again from its start.
    os.replace(path, path + ".old")
    write_lines(path, [point("val", "loss", 1.0, 0.3)])
    assert metric_history(job_dir).as_dict() == {"val": {"loss": [[1.0, 0.3]]}} == read_metrics(job_dir)
    os.remove(path)
    assert metric_history(job_dir).as_dict() == {} == read_metrics(job_dir)


@pytest.fixture
def model_with_history(workspace):
    """A finished model job (its fake worker reported three points), then 30,000 more train loss points and 300
    val accuracy points."""
    job = run_fake_job(workspace, category="model", name="long run")
    job_dir = workspace.store.job_dir(job.id)
    rnd = random.Random(2)
    losses = [
        point("train", "loss", 3 + (i + 1) / 1000, 2 * math.exp(-i / 9000) + rnd.random() / 10) for i in range(30_000)
    ]
    losses[12_345]["value"] = 50.0
    write_lines(job_dir + "/metrics.jsonl", losses)
    write_lines(job_dir + "/metrics.jsonl", [point("val", "accuracy", 3 + i / 10, i / 300) for i in range(300)])
    return job


def test_the_metrics_route_serves_a_decimated_history_and_detail_on_zoom(signed_in, model_with_history):
    job_id = model_with_history.id
    r = signed_in.get(f"/models/{job_id}/metrics/json?points=1000", headers=JSON)
    assert r.status_code == 200
    info = r.get_json()
    assert info["status"] == "Done" and info["progress"] == 1 and info["points"] == 1000
    series = {(s["phase"], s["name"]): s for s in info["series"]}
    loss = series[("train", "loss")]
    assert loss["count"] == loss["in_range"] == 30_003 and loss["decimated"]
    assert 900 <= len(loss["points"]) <= 1004
    assert loss["points"][0] == [1, 1.0] and loss["points"][-1][0] == 33.0
    assert max(v for _, v in loss["points"]) == 50.0, "the spike survives"
    acc = series[("val", "accuracy")]
    assert acc["count"] == 300 and not acc["decimated"] and len(acc["points"]) == 300
    lr = series[("train", "learning_rate")]
    assert lr["points"] == [[1, 0.01], [2, 0.01], [3, 0.01]]

    # Zoomed into ten epochs: every point there (and one beyond each edge) once the width allows it.
    r = signed_in.get(f"/models/{job_id}/metrics/json?from=10&to=20&points=20000", headers=JSON)
    zoomed = {(s["phase"], s["name"]): s for s in r.get_json()["series"]}[("train", "loss")]
    assert zoomed["count"] == 30_003 and zoomed["in_range"] == 10_001 and not zoomed["decimated"]
    assert len(zoomed["points"]) == 10_003
    assert zoomed["points"][0][0] < 10 < 20 < zoomed["points"][-1][0]
    assert zoomed["points"][1] == [10.0, pytest.approx(2 * math.exp(-7000 / 9000), abs=0.1)]
    # ...and decimated to the pixels when it does not.
    r = signed_in.get(f"/models/{job_id}/metrics/json?from=10&to=20&points=400", headers=JSON)
    zoomed = {(s["phase"], s["name"]): s for s in r.get_json()["series"]}[("train", "loss")]
    assert zoomed["decimated"] and len(zoomed["points"]) <= 404

    # The JSON twin still holds every point, in its own shape.
    twin = signed_in.get(f"/models/{job_id}/json", headers=JSON).get_json()
    assert twin["metrics"] == read_metrics(workspace_dir(signed_in, job_id))
    assert len(twin["metrics"]["train"]["loss"]) == 30_003


def workspace_dir(client, job_id: str) -> str:
    return client.application.extensions["digits"].store.job_dir(job_id)


@pytest.mark.parametrize(
    ("query", "field", "label"),
    [
        ("points=many", "points", "Points"),
        ("points=3", "points", "Points"),
        ("from=abc", "from", "From (epoch)"),
        ("to=nan", "to", "To (epoch)"),
        ("from=5&to=2", "to", "To (epoch)"),
    ],
)
def test_the_metrics_route_names_a_bad_parameter(signed_in, model_with_history, query, field, label):
    r = signed_in.get(f"/models/{model_with_history.id}/metrics/json?{query}", headers=JSON)
    assert r.status_code == 400
    body = r.get_json()
    assert label in body["error"]["message"] and "Traceback" not in r.get_data(as_text=True)
    assert signed_in.get("/models/20990101-000000-abcd/metrics/json", headers=JSON).status_code == 404


def long_history(job_dir, n=30_000):
    rnd = random.Random(3)
    lines = []
    for i in range(n):
        lines.append(point("train", "loss", i / 1000, rnd.random()))
        if i % 100 == 0:
            lines.append(point("val", "accuracy", i / 1000, rnd.random()))
    lines.append(point("val", "accuracy", 31, None))  # a value a float cannot hold
    lines.append(point("train", "loss", 32, 1))  # an int, kept as one
    write_lines(os.path.join(job_dir, "metrics.jsonl"), lines)


def fresh(job_dir):
    """The history as a server just started would read it (nothing of it in memory)."""
    from digits.model import metric_history as mh

    mh._CACHE.clear()
    return metric_history(str(job_dir))


def test_a_long_history_is_kept_on_disk_and_read_back_after_a_restart(tmp_path, monkeypatch):
    from digits.model import metric_history as mh

    long_history(tmp_path)
    assert os.path.getsize(tmp_path / "metrics.jsonl") >= mh.PERSIST_BYTES
    assert fresh(tmp_path).as_dict() == read_metrics(str(tmp_path))
    assert (tmp_path / "metrics.cache.npz").is_file()

    write_lines(tmp_path / "metrics.jsonl", [point("train", "loss", 40.0, 0.5)])
    parsed = []
    real_parse = mh._parse
    monkeypatch.setattr(mh, "_parse", lambda data: parsed.append(data) or real_parse(data))
    assert fresh(tmp_path).as_dict() == read_metrics(str(tmp_path))
    assert len(parsed) == 1 and parsed[0].count(b"\n") == 1, "only the appended line was parsed"


@pytest.mark.parametrize(
    "tamper",
    ["another file", "shapes", "a pickle", "garbage", "past the end"],
)
def test_a_cache_that_does_not_match_is_ignored(tmp_path, tamper):
    from digits.model import metric_history as mh

    long_history(tmp_path)
    fresh(tmp_path)
    cache = tmp_path / "metrics.cache.npz"
    with np.load(cache, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes())
    if tamper == "another file":
        meta["inode"] += 1
    elif tamper == "past the end":
        meta["offset"] = os.path.getsize(tmp_path / "metrics.jsonl") + 10
    elif tamper == "shapes":
        arrays["e0"] = arrays["e0"][:-5]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    if tamper == "a pickle":
        arrays["e0"] = np.array([{"not": "numbers"}], dtype=object)
    with open(cache, "wb") as fh:
        if tamper == "garbage":
            fh.write(b"PK\x03\x04 not a zip at all")
        else:
            np.savez(fh, **arrays)
    assert os.path.getsize(tmp_path / "metrics.jsonl") >= mh.PERSIST_BYTES  # so the cache is consulted
    assert fresh(tmp_path).as_dict() == read_metrics(str(tmp_path))
