"""Generic datasets (CSV / NumPy) built by the real worker through the form's JSON twin: rows, classes, target
stats, the explore table, and every bad input named by file, line and column."""

from __future__ import annotations

import io

import numpy as np
import pytest

from digits.folders.generic import open_generic
from tests.support.generic_data import blobs, linear, write_csv
from tests.support.waiting import LONG_S

CREATE = "/datasets/generic/json"


def create(client, **fields):
    return client.post(CREATE, data=fields, content_type="multipart/form-data")


def build(client, recorder, **fields) -> tuple[str, dict]:
    r = create(client, **fields)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    status = recorder.wait_status(job_id, timeout=LONG_S)
    js = client.get(f"/datasets/{job_id}/json").get_json()
    assert status == "Done", js["error"]
    return job_id, js


def failed(client, recorder, **fields) -> str:
    r = create(client, **fields)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Error"
    return client.get(f"/datasets/{job_id}/json").get_json()["error"]


def test_a_csv_upload_builds_a_classification_dataset(signed_in, recorder, workspace, tmp_path):
    x, y = blobs(100, features=3)
    path = write_csv(tmp_path / "blobs.csv", x, y, names=["a", "b", "c"], target="side")
    with open(path, "rb") as fh:
        job_id, js = build(
            signed_in,
            recorder,
            dataset_name="blobs",
            train_file=(fh, "blobs.csv"),
            target_column="side",
            val_percent="20",
        )
    assert js["problem"] == "classification" and js["features"] == ["a", "b", "c"] and js["target"] == "side"
    assert js["labels"] == ["left", "right"]
    assert js["rows"] == {"train": 80, "val": 20}
    counts = [js["stats"][s]["per_class"] for s in ("train", "val")]
    assert np.sum(counts, axis=0).tolist() == [int((y == "left").sum()), int((y == "right").sum())]
    dataset = open_generic(workspace.store.job_dir(job_id))
    tx, ty = dataset.load("train")
    vx, _ = dataset.load("val")
    assert tx.dtype == np.float32 and ty.dtype == np.int64
    assert np.allclose(np.asarray(dataset.mean), tx.mean(axis=0), atol=1e-4)
    # every source row is in exactly one split
    assert sorted(map(tuple, np.concatenate([tx, vx]).tolist())) == sorted(map(tuple, x.tolist()))
    page = signed_in.get(f"/datasets/{job_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="class-counts-train"' in html and 'id="generic-rows"' in html
    rows = signed_in.get(f"/datasets/generic/{job_id}/rows.json?split=val").get_json()
    assert rows["total"] == 20 and rows["columns"] == ["a", "b", "c"] and len(rows["rows"]) == 20
    assert rows["rows"][0]["features"] == pytest.approx(vx[0].tolist()) and rows["rows"][0]["target"] in (
        "left",
        "right",
    )
    assert signed_in.get(f"/datasets/generic/{job_id}/rows?split=train&page=1").status_code == 200


def test_a_server_csv_and_a_second_file_build_a_regression_dataset(signed_in, recorder, tmp_path):
    x, y, _ = linear(60)
    train = write_csv(tmp_path / "train.csv", x[:50], y[:50], target="y")
    val = write_csv(tmp_path / "val.csv", x[50:], y[50:], target="y")
    job_id, js = build(signed_in, recorder, dataset_name="lin", train_path=train, val_path=val, problem="regression")
    assert js["rows"] == {"train": 50, "val": 10} and js["labels"] == []
    target = js["stats"]["train"]["target"]
    assert target["min"] == pytest.approx(float(y[:50].min()), rel=1e-5) and sum(target["histogram"]["counts"]) == 50
    assert js["stats"]["val"]["source"] == "val.csv"
    assert 'id="target-histogram-train"' in signed_in.get(f"/datasets/{job_id}").get_data(as_text=True)


def test_numpy_npz_and_npy(signed_in, recorder, tmp_path):
    x, y = blobs(40, features=2)
    buf = io.BytesIO()
    np.savez(buf, features=x, labels=(y == "right").astype(np.int64))
    buf.seek(0)
    _, js = build(signed_in, recorder, dataset_name="npz", train_file=(buf, "d.npz"), val_percent="25")
    assert js["labels"] == ["0", "1"] and js["rows"] == {"train": 30, "val": 10} and js["features"] == ["f0", "f1"]
    xr, yr, _ = linear(30, features=2)
    path = tmp_path / "d.npy"
    np.save(path, np.concatenate([xr, yr[:, None]], axis=1))
    _, js = build(signed_in, recorder, dataset_name="npy", train_path=str(path), problem="regression", val_percent="0")
    assert js["rows"] == {"train": 30} and js["stats"]["train"]["target"]["max"] == pytest.approx(
        float(yr.max()), rel=1e-5
    )


def test_a_pickled_npy_is_refused(signed_in, recorder, tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([[1, "a"], [2, "b"]], dtype=object), allow_pickle=True)
    error = failed(signed_in, recorder, dataset_name="bad", train_path=str(path))
    assert "obj.npy" in error and "pickle" in error.lower()


@pytest.mark.parametrize(
    "text, fields, expected",
    [
        ("a,b,label\n1,2,x\n3,oops,y\n", {}, "bad.csv, line 3, column 'b': 'oops' is not a number"),
        ("a,b,label\n1,2,x\n3,4\n", {}, "bad.csv, line 3: 2 cells, but the header names 3 columns"),
        (
            "a,b,label\n1,2,x\n",
            {"target_column": "kind"},
            "bad.csv, line 1: no column named 'kind' (columns: a, b, label)",
        ),
        ("a,b,t\n1,2,3\n4,5,high\n", {"problem": "regression"}, "bad.csv, line 3, column 't': 'high' is not a number"),
        ("a,b,label\n1,2,x\n3,4,x\n", {}, "bad.csv: the label column has 1 class"),
        ("", {}, "bad.csv: the file is empty"),
    ],
)
def test_bad_csv_cells_are_named_by_file_line_and_column(signed_in, recorder, tmp_path, text, fields, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    error = failed(signed_in, recorder, dataset_name="bad", train_path=str(path), val_percent="0", **fields)
    assert expected in error


def test_the_form_names_its_fields(signed_in, tmp_path):
    r = create(signed_in, dataset_name="")
    errors = r.get_json()["errors"] if "errors" in r.get_json() else r.get_json()["error"]
    assert r.status_code == 400
    text = str(errors)
    assert "Dataset name" in text or "dataset_name" in text
    assert "train_file" in text or "Training data file" in text
    r = create(signed_in, dataset_name="x", train_path=str(tmp_path / "nope.csv"))
    assert r.status_code == 400 and "nope.csv" in r.get_data(as_text=True)
    r = create(signed_in, dataset_name="x", train_file=(io.BytesIO(b"x"), "data.xlsx"))
    assert r.status_code == 400 and "expected a .csv, .npy or .npz file" in r.get_data(as_text=True)
    page = signed_in.post("/datasets/generic", data={"dataset_name": ""}, headers={"Accept": "text/html"})
    assert page.status_code == 400 and "Training data file" in page.get_data(as_text=True)
