"""Kept results: classify many's page twin (sorting, filters, pages), thumbnails, exports checked against the JSON
twin, Grad-CAM of a chosen layer, `Prefer: return=minimal`, and how many runs are kept."""

import csv
import io
import os

import pytest

from digits.inference import results
from tests.support import HTML

PREFER = {"Accept": "application/json", "Prefer": "return=minimal"}


def val_truth(served) -> dict[str, str]:
    labels = ["circle", "square", "triangle"]
    return {line.rsplit(" ", 1)[0]: labels[int(line.rsplit(" ", 1)[1])] for line in served.val_list().splitlines()}


@pytest.mark.slow
def test_exports_and_pages_agree_with_the_json_twin(served):
    r = served.classify_many("torch", served.val_list())
    twin = r.get_json()
    assert r.status_code == 200 and twin["results_id"].startswith("many-")
    url = twin["results_url"]
    truth = val_truth(served)
    n = len(truth)

    exported = served.client.get(url + "/export.json").get_json()
    for key in ("classifications", "errors", "top1_accuracy", "top5_accuracy", "confusion_matrix", "epoch"):
        assert exported[key] == twin[key], key
    assert [i["path"] for i in exported["images"]] == [
        line.rsplit(" ", 1)[0] for line in served.val_list().splitlines()
    ]
    for image in exported["images"]:
        top = twin["classifications"][image["path"]]
        assert image["predictions"] == top and image["true_label"] == truth[image["path"]]
        assert image["correct"] == (truth[image["path"]] == top[0][0])

    download = served.client.get(url + "/export.csv")
    assert download.mimetype == "text/csv" and "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert len(rows) == n
    for row in rows:
        top = twin["classifications"][row["path"]]
        assert (row["predicted_class"], float(row["confidence"])) == (top[0][0], top[0][1])
        assert row["true_class"] == truth[row["path"]] and row["error"] == ""

    # The page's twin: wrong ones only, most confident first.
    page = served.client.get(url + "/json?outcome=wrong&sort=confidence&order=desc").get_json()
    wrong = [p for p, top in twin["classifications"].items() if truth[p] != top[0][0]]
    assert page["matched"] == page["mistakes"] == len(wrong) and page["total"] == n
    confidences = [row["confidence"] for row in page["rows"]]
    assert confidences == sorted(confidences, reverse=True)
    assert all(row["correct"] is False for row in page["rows"])
    # Pages of 25: the second holds the rest, in list order.
    second = served.client.get(url + "/json?per_page=25&page=2").get_json()
    assert second["pages"] == -(-n // 25) and [row["line"] for row in second["rows"]] == list(range(26, n + 1))
    # A filter on a class and a confidence range.
    some = served.client.get(url + "/json?truth=circle&min_confidence=10&max_confidence=100").get_json()
    assert some["rows"] and all(row["true_label"] == "circle" and row["confidence"] >= 10 for row in some["rows"])
    odd = served.client.get(url + "/json?min_confidence=lots").get_json()
    assert odd["matched"] == n and "Confidence from" in odd["problems"][0]

    thumb = served.client.get(page["rows"][0]["thumbnail_url"] if page["rows"] else second["rows"][0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/png" and thumb.data.startswith(b"\x89PNG")
    assert served.client.get(url + f"/thumbs/{n}").status_code == 404
    html = served.client.get(url + "?view=mistakes", headers=HTML).get_data(as_text=True)
    assert html.count("<figure") == len(wrong)


def post_list(served, text: str, framework: str = "caffe"):
    form = {"job_id": served.models[framework], "image_list": (io.BytesIO(text.encode()), "list.txt")}
    return served.client.post("/models/images/classification/classify_many", data=form, headers=PREFER)


@pytest.mark.slow
def test_prefer_minimal_answers_the_address_and_errors_as_json(served):
    r = post_list(served, served.val_list())
    assert r.status_code == 200 and r.headers["Preference-Applied"] == "return=minimal"
    assert set(r.get_json()) == {"results_url", "results_id"}
    assert served.client.get(r.get_json()["results_url"], headers=HTML).status_code == 200
    bad = post_list(served, "# only a comment\n")
    assert bad.status_code == 400 and "names no images" in bad.get_json()["error"]["message"]


@pytest.mark.slow
def test_gradcam_of_a_chosen_layer(served):
    with open(served.val_list().splitlines()[0].rsplit(" ", 1)[0], "rb") as fh:
        data = fh.read()
    form = {"job_id": served.models["caffe"], "show_visualizations": "on", "image_file": (io.BytesIO(data), "a.png")}
    r = served.client.post("/models/images/classification/classify_one", data=form, headers=PREFER)
    url = r.get_json()["results_url"] + "/gradcam/json"
    default = served.client.get(url).get_json()
    assert default["gradcam_layer"] == "conv2" and default["gradcam_layers"] == ["conv1", "conv2"]
    first = served.client.get(url + "?layer=conv1").get_json()
    assert first["gradcam_layer"] == "conv1" and first["gradcam"] != default["gradcam"]
    assert first["target"] == default["target"]
    bad = served.client.get(url + "?layer=ip1")
    assert bad.status_code == 400 and "not a convolution layer" in bad.get_json()["error"]["message"]
    # Without visualizations no image is kept, and Grad-CAM says so.
    form = {"job_id": served.models["caffe"], "image_file": (io.BytesIO(data), "a.png")}
    plain = served.client.post("/models/images/classification/classify_one", data=form, headers=PREFER).get_json()
    assert served.client.get(plain["results_url"] + "/gradcam/json").status_code == 404


@pytest.mark.slow
def test_unknown_runs_are_404(served):
    job_id = served.models["torch"]
    for path in ("classify_many/many-0000000000000000", "classify_many/one-0000000000000000", "classify_one/../x"):
        assert served.client.get(f"/models/{job_id}/{path}", headers=HTML).status_code == 404
    assert served.client.get(f"/models/{job_id}/classify_many/many-0000000000000000/export.csv").status_code == 404


def test_the_newest_runs_of_each_kind_are_kept(tmp_path):
    made = []
    for n in range(results.KEEP["many"] + 3):
        run_id, folder = results.new_run(str(tmp_path), "many")
        results.save(folder, {"n": n})
        os.utime(folder, ns=(n * 10**9, n * 10**9))  # ages in order, whatever the clock's resolution
        made.append(run_id)
    other, _ = results.new_run(str(tmp_path), "one")
    kept = sorted(os.listdir(tmp_path / "results"))
    assert len([k for k in kept if k.startswith("many-")]) == results.KEEP["many"]
    assert set(made[-results.KEEP["many"] :]) <= set(kept) and other in kept
    assert results.load(str(tmp_path), made[-1]) == {"n": len(made) - 1}
    with pytest.raises(results.RunMissing):
        results.load(str(tmp_path), made[0])
    with pytest.raises(results.RunMissing):
        results.run_dir(str(tmp_path), "../etc")


def test_csv_cells_a_spreadsheet_would_run_are_quoted():
    data = {
        "rows": [[1, "=HYPERLINK(1)", "-a", [["+b", 90.0], ["c", 10.0]], None]],
        "answer": {"errors": [{"line": 2, "path": "@x", "message": "not an image"}]},
    }
    rows = list(csv.reader(io.StringIO(results.export_csv(data))))
    assert rows[1][:6] == ["1", "'=HYPERLINK(1)", "'-a", "'+b", "90.0", "no"]
    assert rows[2][1] == "'@x" and rows[2][-1] == "not an image"
