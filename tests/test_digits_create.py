"""DIGITS 6 clients, unchanged: a form posted to New Dataset with no Accept header (DIGITS' own tests, curl) is
answered like a browser's post, 302 to the new job's page, while JSON stays for those who ask for it; sign-in and
sign-out redirect too; clone=<id> copies a dataset's settings, the posted fields over them."""

from __future__ import annotations

import pytest

from tests.support import HTML, JSON
from tests.support.accounts import add_accounts, password_of
from tests.support.apps import sign_in, with_settings
from tests.support.fakejobs import run_fake_job
from tests.support.forms import dataset_form
from tests.support.imagegen import make_shapes
from tests.support.waiting import LONG_S

CREATE = "/datasets/images/classification"
NO_SUCH_JOB = "20000101-000000-dead"


@pytest.fixture
def shapes(tmp_path) -> str:
    make_shapes(str(tmp_path / "src"), per_class=4)
    return str(tmp_path / "src")


def job_id_of(response) -> str:
    """The new job's id as DIGITS' tests read it: the last part of the redirect's Location."""
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"].rstrip("/").split("/")[-1]


def test_a_form_posted_without_accept_redirects_to_the_new_dataset(signed_in, workspace, recorder, shapes):
    r = signed_in.post(CREATE, data=dataset_form(shapes))  # no Accept header at all, as DIGITS' tests post
    job_id = job_id_of(r)
    assert r.headers["Location"].endswith(f"/datasets/{job_id}")
    job = workspace.store.get(job_id)
    assert job is not None and job.category == "dataset" and job.owner == "ann"
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done"
    page = signed_in.get(r.headers["Location"])
    assert page.status_code == 200 and job_id in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "path, headers, answer",
    [
        (CREATE, {"Accept": "*/*"}, "redirect"),  # curl's default
        (CREATE, HTML, "redirect"),  # a browser
        (CREATE, JSON, "json"),  # a script that asks for JSON keeps it
        (CREATE + "/json", {}, "json"),  # the JSON twin whatever the client says
        (CREATE + "/json", HTML, "json"),
    ],
)
def test_who_gets_a_redirect_and_who_gets_json(signed_in, workspace, shapes, path, headers, answer):
    r = signed_in.post(path, data=dataset_form(shapes), headers=headers)
    if answer == "redirect":
        job_id = job_id_of(r)
    else:
        assert r.status_code == 200 and r.is_json, r.get_data(as_text=True)
        job_id = r.get_json()["id"]
    assert workspace.store.get(job_id) is not None


def test_a_refused_form_without_accept_is_a_400_form_page_and_creates_nothing(signed_in, workspace):
    r = signed_in.post(CREATE, data=dataset_form("/no/such/folder"))
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "The dataset was not created" in html and "does not exist" in html
    r = signed_in.post(CREATE, data=dataset_form("/no/such/folder"), headers=JSON)
    assert r.status_code == 400 and "folder_train" in r.get_json()["errors"]
    assert workspace.store.all() == []


@with_settings({}, {"auth": "password"})
def test_a_form_posted_by_a_stranger_without_accept_is_401_not_a_sign_in_page(client, workspace, shapes):
    r = client.post(CREATE, data=dataset_form(shapes))
    assert r.status_code == 401
    assert workspace.store.all() == []


def test_sign_in_and_out_without_accept_redirect_as_in_digits(make_app):
    app = make_app(auth="password")
    add_accounts(app.extensions["digits"].accounts, "alice")
    client = app.test_client()
    r = client.post("/login", data={"username": "alice", "password": password_of("alice")})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "signed_in" not in client.get("/index/json").get_json()  # the session cookie signs the client in
    r = client.post("/logout")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert client.get("/index/json").get_json()["signed_in"] is False
    # A wrong password, posted the same way, is the sign-in page again with the reason.
    r = client.post("/login", data={"username": "alice", "password": "not her password"})
    assert r.status_code == 400 and "Wrong username or password" in r.get_data(as_text=True)
    # Scripts that ask for JSON keep it.
    r = client.post("/login", data={"username": "alice", "password": password_of("alice")}, headers=JSON)
    assert r.status_code == 200 and r.get_json() == {"username": "alice"}


# The settings of DIGITS' own clone test, in our field names.
FIRST = {
    "encoding": "png",
    "folder_pct_test": "0",
    "folder_pct_val": "25",
    "folder_train_max_per_class": "3",
    "folder_train_min_per_class": "1",
    "resize_mode": "half_crop",
    "resize_width": "20",
}


def test_clone_copies_a_datasets_settings_and_the_posted_fields_win(signed_in, workspace, recorder, shapes):
    first = signed_in.post(CREATE + "/json", data=dataset_form(shapes, **FIRST)).get_json()["id"]
    assert recorder.wait_status(first, timeout=LONG_S) == "Done"
    # Only clone and a new name: every other setting comes from the first dataset.
    second = job_id_of(signed_in.post(CREATE, data={"clone": first, "dataset_name": "shapes again"}))
    one, two = workspace.store.get(first), workspace.store.get(second)
    assert two.form == {**one.form, "dataset_name": "shapes again"} and "clone" not in two.form
    assert two.extra["image"] == one.extra["image"] and two.extra["image"]["resize_mode"] == "half_crop"
    assert recorder.wait_status(second, timeout=LONG_S) == "Done"
    a, b = (signed_in.get(f"/datasets/{j}/json").get_json() for j in (first, second))
    assert a["ParseFolderTasks"] == b["ParseFolderTasks"]  # the same images in the same splits: 3 per class
    assert {t["image_width"] for t in b["CreateDbTasks"]} == {20}
    # clone in the query string of the JSON twin, as DIGITS also reads it; a posted field overrides the clone's.
    r = signed_in.post(f"{CREATE}/json?clone={first}", data={"resize_width": "12", "folder_pct_val": "50"})
    third = workspace.store.get(r.get_json()["id"])
    assert third.form == {**one.form, "resize_width": "12", "folder_pct_val": "50"}
    assert third.extra["image"]["width"] == 12


def test_a_clone_keeps_the_field_checks(signed_in, workspace, recorder, shapes):
    first = signed_in.post(CREATE + "/json", data=dataset_form(shapes)).get_json()["id"]
    r = signed_in.post(CREATE + "/json", data={"clone": first, "resize_width": "0"})
    assert r.status_code == 400 and list(r.get_json()["errors"]) == ["resize_width"]
    # The form page of a refused clone shows the cloned fields, to fix in place.
    r = signed_in.post(CREATE, data={"clone": first, "resize_width": "0"})
    assert r.status_code == 400 and f'value="{shapes}"' in r.get_data(as_text=True)
    assert [j.id for j in workspace.store.all()] == [first]


@pytest.mark.parametrize("path", [CREATE, CREATE + "/json"])
def test_cloning_a_dataset_that_does_not_exist_is_404_naming_clone(signed_in, workspace, path):
    model = run_fake_job(workspace, category="model", owner="ann")
    for missing in (NO_SUCH_JOB, model.id, "../etc"):
        r = signed_in.post(path, data={"clone": missing, "dataset_name": "x"}, headers=JSON)
        assert r.status_code == 404 and r.get_json()["error"]["message"].startswith("clone: no dataset")
    r = signed_in.post(path, data={"clone": NO_SUCH_JOB})
    assert r.status_code == 404 and "clone: no dataset" in r.get_data(as_text=True)
    assert [j.id for j in workspace.store.all()] == [model.id]


def test_a_member_clones_what_they_may_open_and_the_clone_is_theirs(make_app, shapes):
    app = make_app(auth="password", data_roots=[shapes])  # a team server reads images under its data roots only
    add_accounts(app.extensions["digits"].accounts, "alice", "bob")
    alice, bob = sign_in(app, "alice"), sign_in(app, "bob")
    first = alice.post(CREATE + "/json", data=dataset_form(shapes)).get_json()["id"]
    assert bob.get(f"/datasets/{first}/json").status_code == 200  # members see each other's jobs
    second = job_id_of(bob.post(CREATE, data={"clone": first}))
    cloned = app.extensions["digits"].store.get(second)
    assert cloned.owner == "bob" and cloned.form == app.extensions["digits"].store.get(first).form
    anon = app.test_client()
    assert anon.post(CREATE, data={"clone": first}).status_code == 401
