"""New Model's snapshot picker for a previous model, as the server renders it: DIGITS' field `<id>-snapshot` as a
select of that model's epochs (latest chosen), kept with its choice and named by its label when refused."""

from __future__ import annotations

import re

import pytest

from tests.support.forms import model_form
from tests.support.waiting import LONG_S

pytestmark = pytest.mark.slow  # a real training worker

NEW = "/models/images/classification/new"


def options(html: str, name: str) -> list[tuple[str, bool]]:
    select = re.search(rf'<select[^>]*name="{re.escape(name)}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select named {name}"
    return [(v, bool(s)) for v, s in re.findall(r'<option value="([^"]*)"( selected)?', select[1])]


def test_the_picker_lists_the_epochs_keeps_a_choice_and_names_its_label(signed_in, workspace, recorder, dataset):
    r = signed_in.post("/models/images/classification/json", data=model_form(dataset.id, train_epochs="2"))
    prev = r.get_json()["id"]
    assert recorder.wait_status(prev, timeout=LONG_S) == "Done"
    field = f"{prev}-snapshot"

    html = signed_in.get(NEW).get_data(as_text=True)
    assert 'data-snapshots=\'["1", "2"]\'' in html  # what js/model-form.js builds the select from
    assert 'id="previous-snapshot-box" hidden' in html  # nothing chosen yet

    html = signed_in.get(f"{NEW}?method=previous&previous_networks={prev}").get_data(as_text=True)
    assert options(html, field) == [("2", True), ("1", False), ("0", False)]  # latest first and chosen
    assert f'<label class="form-label" for="{field}" id="previous-snapshot-label">Start from its snapshot' in html

    form = model_form(dataset.id, method="previous", previous_networks=prev, standard_networks=None)
    r = signed_in.post("/models/images/classification", data={**form, field: "1", "train_epochs": "0"})
    assert r.status_code == 400
    assert options(r.get_data(as_text=True), field)[1] == ("1", True)  # the choice comes back with the form

    r = signed_in.post("/models/images/classification", data={**form, field: "7"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert f'data-field="{field}">Start from its snapshot</a>' in html and "no snapshot at epoch 7" in html
    assert f'id="{field}-error"' in html and 'aria-invalid="true"' in html
