"""DIGITS' `.json` spellings of our /json twins (classification.json to create, <id>.json to show), answered in
JSON like the twins, and DIGITS' seed 3405691582 on the dataset form. classify_one.json and classify_many.json:
tests/model/test_digits_network.py."""

from pathlib import Path

import pytest

from tests.support.forms import dataset_form, model_form
from tests.support.imagegen import make_shapes
from tests.support.waiting import LONG_S

DIGITS_SEED = "3405691582"  # DIGITS' own tests' seed, more than 2^31 - 1
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.mark.slow
def test_dataset_and_model_by_digits_json_spellings(signed_in, workspace, recorder, tmp_path):
    src = tmp_path / "src"
    make_shapes(str(src), per_class=10)
    # A browser's Accept header: the .json spelling still answers JSON, as DIGITS' did.
    r = signed_in.post(
        "/datasets/images/classification.json", data=dataset_form(src, random_seed=DIGITS_SEED), headers=BROWSER
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    dataset_id = r.get_json()["id"]
    assert recorder.wait_status(dataset_id, timeout=LONG_S) == "Done"
    assert workspace.store.get(dataset_id).form["random_seed"] == DIGITS_SEED
    shown = signed_in.get(f"/datasets/{dataset_id}.json", headers=BROWSER)
    assert shown.status_code == 200 and shown.is_json
    assert shown.get_json() == signed_in.get(f"/datasets/{dataset_id}/json").get_json()

    r = signed_in.post(
        "/models/images/classification.json", data=model_form(dataset_id, train_epochs="1"), headers=BROWSER
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    model_id = r.get_json()["id"]
    assert recorder.wait_status(model_id, timeout=LONG_S) == "Done"
    shown = signed_in.get(f"/models/{model_id}.json", headers=BROWSER)
    assert shown.status_code == 200 and shown.is_json
    assert shown.get_json() == signed_in.get(f"/models/{model_id}/json").get_json()
    assert shown.get_json()["id"] == model_id and shown.get_json()["snapshots"] == [1]


def test_index_json_is_the_home_twin(signed_in):
    r = signed_in.get("/index.json", headers=BROWSER)
    assert r.status_code == 200 and r.is_json
    assert r.get_json() == signed_in.get("/index/json").get_json()


def test_every_spelling_in_the_api_doc_is_a_route_of_the_same_view(app):
    doc = (Path(__file__).parents[1] / "docs" / "API.md").read_text(encoding="utf-8")
    section = doc.split("## DIGITS' .json spellings", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) == 8
    adapter = app.url_map.bind("localhost")
    for digits_cell, ours_cell in rows:
        method, path = digits_cell.strip(" `").split(" ", 1)
        twin = ours_cell.strip(" `")
        if twin.startswith("..."):
            twin = path.rsplit("/", 1)[0] + twin[3:]
        path, twin = (p.replace("<id>", "20261129-101500-ab12") for p in (path, twin))
        mine, theirs = adapter.match(path, method=method), adapter.match(twin, method=method)
        assert app.view_functions[mine[0]] is app.view_functions[theirs[0]], (path, twin)
        assert mine[1] == theirs[1]


def test_digits_json_spellings_refuse_in_json(signed_in, tmp_path):
    for path in ("/models/nosuchjob.json", "/datasets/nosuchjob.json"):
        r = signed_in.get(path, headers=BROWSER)
        assert r.status_code == 404 and r.is_json, path
        assert "nosuchjob" in r.get_json()["error"]["message"]
    r = signed_in.post("/models/images/classification.json", data={"model_name": "m"}, headers=BROWSER)
    assert r.status_code == 400 and r.is_json
    assert r.get_json()["errors"]["dataset"] == ["This field is required."]
    r = signed_in.post(
        "/datasets/images/classification.json",
        data=dataset_form(tmp_path, random_seed=str(2**32)),
        headers=BROWSER,
    )
    assert r.status_code == 400 and r.is_json
    assert "4294967295" in r.get_json()["errors"]["random_seed"][0]
