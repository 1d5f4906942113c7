"""Running a member's Python is a permission, and what runs is confined: a real team server, real training and
inference workers, a hostile PyTorch network (item 1 and 2 of W2-A)."""

from __future__ import annotations

import io

import pytest
import requests
from PIL import Image

from digits import sandbox
from digits.accounts import AccountStore
from digits.model.standard import get_network
from tests.support.accounts import add_accounts
from tests.support.apps import sign_in, with_settings
from tests.support.browser import sign_in as sign_in_page
from tests.support.forms import dataset_form, model_form
from tests.support.imagegen import make_shapes
from tests.support.live import team_server
from tests.support.waiting import LONG_S, SHORT_S

# A member's network that looks for the server's secrets while it is built, and, in an inference worker,
# patches Pillow so that every image the process decodes afterwards fails (a spy would copy them instead).
HOSTILE = """
import os
import sys

from torch import nn

JOBS = {jobs!r}
OTHER = {other!r}  # another member's model


def probe():
    found = []
    for name in (".secret_key", "users.db", "audit.log", os.path.join(OTHER, "job.json")):
        try:
            with open(os.path.join(JOBS, name), "rb") as fh:
                found.append(name + " READ " + fh.read(8).hex())
        except OSError as e:
            found.append(name + ": " + str(e.strerror))
    try:
        found.append("jobs folder READ " + ",".join(os.listdir(JOBS)))
    except OSError as e:
        found.append("jobs folder: " + str(e.strerror))
    return found


def build_model(*, num_classes, channels, height, width):
    found = probe()
    print("PROBE", found, file=sys.stderr)
    if any(" READ " in f for f in found):
        raise RuntimeError("LEAK " + repr(found))
    if "digits.engine.inference.model" in sys.modules:  # an inference worker
        import PIL.Image

        def spy(*args, **kwargs):
            raise RuntimeError("Pillow patched by another member's network")

        PIL.Image.open = spy
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, num_classes))
"""


class Team:
    """A real team server reading the images under its data root: alice, bob (who may run code), root (an admin)."""

    def __init__(self, tmp_path):
        self.jobs = tmp_path / "jobs"
        self.images = tmp_path / "images"
        make_shapes(str(self.images), per_class=12, size=(24, 40))
        # One inference slot: without a worker per model, both models would be served by one process.
        self.server = team_server(
            self.jobs,
            "alice",
            "bob",
            "root",
            admins=["root"],
            code=["bob"],
            args=["--data-root", str(self.images)],
            env={"DIGITS_INFERENCE_WORKERS": "1"},
        )

    def post(self, user: str, path: str, data: dict, files=None) -> requests.Response:
        return requests.post(
            self.server.url + path, data=data, files=files, headers=self.server.auth(user), timeout=SHORT_S
        )

    def wait(self, job_id: str) -> dict:
        return self.server.wait_status(job_id, timeout=LONG_S)

    def loaded(self) -> dict:
        """Which inference worker (pid) holds which model (tests/support/harness.py)."""
        return requests.get(self.server.url + "/test/inference", headers=self.server.headers, timeout=SHORT_S).json()

    def model(self, user: str, dataset: str, **fields) -> requests.Response:
        form = model_form(
            dataset, **{"model_name": f"{user}-model", "train_epochs": "1", "random_seed": None, **fields}
        )
        return self.post(user, "/models/images/classification/json", form)


@pytest.fixture
def team(tmp_path):
    t = Team(tmp_path)
    t.server.start()
    yield t
    t.server.stop()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (28, 28), 128).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.landlock_abi(), reason="this kernel has no Landlock")
def test_code_needs_the_permission_and_runs_confined_in_workers_of_its_own(team):
    r = team.post("alice", "/datasets/images/classification/json", dataset_form(team.images))
    assert r.status_code == 200, r.text
    dataset = r.json()["id"]
    assert team.wait(dataset)["status"] == "Done"
    # Without the permission: refused with 403 naming it, before any job exists.
    r = team.model("alice", dataset, method="custom", custom_network=HOSTILE.format(jobs=str(team.jobs), other=""))
    assert r.status_code == 403 and "'code' permission" in r.json()["error"]["message"]
    # A standard network, and a standard network's text unchanged in the editor, are not a member's code.
    lenet = get_network("lenet").text("torch")
    r = team.model("alice", dataset, method="custom", custom_network=lenet, model_name="alice-lenet")
    assert r.status_code == 200, r.text
    alice_model = r.json()["id"]
    hostile = HOSTILE.format(jobs=str(team.jobs), other=alice_model)

    # With it: the network runs, confined; it finds none of the server's secrets, so training ends Done.
    r = team.model("bob", dataset, method="custom", custom_network=hostile)
    assert r.status_code == 200, r.text
    bob_model = r.json()["id"]
    assert team.wait(bob_model)["status"] == "Done"
    log = (team.jobs / bob_model / "train.log").read_text()
    assert "PROBE" in log and "Permission denied" in log and " READ " not in log
    assert team.wait(alice_model)["status"] == "Done"

    # Reusing bob's network is running his code: alice still needs the permission.
    r = team.model("alice", dataset, method="previous", previous_networks=bob_model)
    assert r.status_code == 403

    # Serving: bob's model gets a worker of its own. It builds his network there (no leak, or it would fail)
    # and its Pillow patch breaks that process only; alice's model, asked next, is served by another process.
    classify = "/models/images/classification/classify_one/json"
    r = team.post("alice", classify, {"job_id": bob_model}, files={"image_file": ("x.png", png())})
    assert r.status_code == 500 and "Pillow patched" in r.json()["error"]["message"], r.text
    bob_pid = team.loaded()
    r = team.post("bob", classify, {"job_id": alice_model}, files={"image_file": ("x.png", png())})
    assert r.status_code == 200, r.text
    alice_pid = team.loaded()
    assert set(bob_pid["loaded"].values()).isdisjoint(alice_pid["loaded"].values())

    # Permission taken away: bob can no longer resume code; an admin may run it.
    AccountStore(str(team.jobs)).revoke("bob", "code")
    r = team.model("bob", dataset, method="custom", custom_network=hostile)
    assert r.status_code == 403
    r = team.model("root", dataset, method="custom", custom_network=hostile, train_epochs="1")
    assert r.status_code == 200, r.text


@with_settings({"auth": "password"})
def test_the_model_form_turns_python_off_for_members_without_the_permission(app):
    add_accounts(app.extensions["digits"].accounts, "alice", "bob", code=["bob"])
    page = sign_in(app, "alice").get("/models/images/classification/new").get_data(as_text=True)
    assert 'data-code-allowed="0"' in page and "python -m digits.users grant NAME code" in page
    page = sign_in(app, "bob").get("/models/images/classification/new").get_data(as_text=True)
    assert 'data-code-allowed="1"' in page and 'id="code-refusal"' not in page


@pytest.mark.browser
def test_in_a_browser_python_is_off_for_a_member_without_the_permission(tmp_path, browser):
    server = team_server(tmp_path / "jobs", "alice", "bob", code=["bob"]).start()
    try:
        for user, allowed in (("alice", False), ("bob", True)):
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            sign_in_page(page, server.url, user)
            page.goto(server.url + "/models/images/classification/new")
            # Caffe (the default): a custom prototxt is data, open to everyone.
            assert page.is_enabled("#method-custom")
            page.check("#framework-torch")
            assert errors == [], errors
            assert page.get_attribute("#model-form", "data-code-allowed") == ("1" if allowed else "0")
            assert page.is_enabled("#method-custom") is allowed
            assert page.is_enabled("[data-customize=lenet]") is allowed
            note = page.locator("#code-refusal")
            if allowed:
                assert note.count() == 0
                page.click("label[for=method-custom]")
                assert page.is_visible("[data-method=custom]")
            else:
                assert note.is_visible() and "'code' permission" in note.inner_text()
                page.check("#framework-caffe")  # back to Caffe: the custom tab opens again
                assert not note.is_visible()
                page.click("label[for=method-custom]")
                assert page.is_visible("[data-method=custom]")
                # Choosing PyTorch now leaves the custom tab for the standard networks.
                page.check("#framework-torch")
                assert page.is_checked("#method-standard") and not page.is_visible("[data-method=custom]")
            assert errors == []
    finally:
        server.stop()


def test_pytorch_uploads_run_code_and_need_the_permission(team):
    # A pretrained PyTorch model brings code: a network.py beside a state dict, or a TorchScript archive's own
    # compiled code. Refused without the permission before any file is kept; a Caffe upload is data.
    fields = {"framework": "torch", "image_type": "1", "width": "28", "height": "28", "job_name": "uploaded"}
    labels = ("labels.txt", b"a\nb\n")
    uploads = {
        "torchscript": {"weights_file": ("model.ts", b"not read yet"), "labels_file": labels},
        "state_dict": {
            "model_def_file": ("network.py", b"def build_model(**kw): ...\n"),
            "weights_file": ("weights.pt", b"not read yet"),
            "labels_file": labels,
        },
    }
    for kind, files in uploads.items():
        r = team.post("alice", "/pretrained_models/new/json", fields, files)
        assert r.status_code == 403 and "'code' permission" in r.json()["error"]["message"], (kind, r.text)
        r = team.post("bob", "/pretrained_models/new/json", fields, files)
        assert r.status_code == 200, (kind, r.text)  # the import task then says what the file is not
    caffe = {
        "model_def_file": ("deploy.prototxt", get_network("lenet").text("caffe").encode()),
        "weights_file": ("lenet.caffemodel", b"not read yet"),
        "labels_file": labels,
    }
    r = team.post("alice", "/pretrained_models/new/json", {**fields, "framework": "caffe"}, caffe)
    assert r.status_code == 200, r.text
