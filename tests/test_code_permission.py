"""Running a member's Python is a permission, and what runs is confined: a real team server, real training and
inference workers, a hostile PyTorch network (item 1 and 2 of W2-A)."""

from __future__ import annotations

import io
import os
import time

import pytest
import requests
from PIL import Image

from digits import sandbox
from digits.accounts import AccountStore
from digits.model.standard import get_network
from tests.conftest import LiveServer
from tests.support.imagegen import make_shapes
from tests.test_e2e import ARGS, CHROMIUM

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
    def __init__(self, tmp_path):
        self.jobs = tmp_path / "jobs"
        self.jobs.mkdir()
        self.images = tmp_path / "images"
        make_shapes(str(self.images), per_class=12, size=(24, 40))
        accounts = AccountStore(str(self.jobs))
        accounts.add("alice", "alice-secret-pw")
        accounts.add("bob", "bob-secret-pw")
        accounts.add("root", "root-secret-pw", admin=True)
        accounts.grant("bob", "code")
        self.tokens = {name: accounts.new_token(name) for name in ("alice", "bob", "root")}
        self.server = LiveServer(self.jobs, args=["--auth", "password", "--data-root", str(self.images)])
        self.server.ready_headers = self.auth("alice")
        # One inference slot: without a worker per model, both models would be served by one process.
        self.server.env = {"DIGITS_INFERENCE_WORKERS": "1"}

    def auth(self, user: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def post(self, user: str, path: str, data: dict, files=None) -> requests.Response:
        return requests.post(self.server.url + path, data=data, files=files, headers=self.auth(user), timeout=60)

    def wait(self, job_id: str, timeout: float = 300) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            js = requests.get(f"{self.server.url}/jobs/{job_id}/json", headers=self.auth("alice"), timeout=10).json()
            if js["status"] in ("Done", "Error", "Aborted"):
                return js
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not end: {js}")

    def model(self, user: str, dataset: str, **fields) -> requests.Response:
        form = {"dataset": dataset, "model_name": f"{user}-model", "train_epochs": "1", "framework": "torch"}
        return self.post(user, "/models/images/classification/json", {**form, **fields})


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


@pytest.mark.skipif(not sandbox.landlock_abi(), reason="this kernel has no Landlock")
def test_code_needs_the_permission_and_runs_confined_in_workers_of_its_own(team):
    r = team.post(
        "alice",
        "/datasets/images/classification/json",
        {
            "method": "folder",
            "folder_train": str(team.images),
            "resize_channels": "1",
            "resize_width": "28",
            "resize_height": "28",
            "dataset_name": "shapes",
        },
    )
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
    bob_pid = requests.get(team.server.url + "/test/inference", headers=team.auth("alice"), timeout=10).json()
    r = team.post("bob", classify, {"job_id": alice_model}, files={"image_file": ("x.png", png())})
    assert r.status_code == 200, r.text
    alice_pid = requests.get(team.server.url + "/test/inference", headers=team.auth("alice"), timeout=10).json()
    assert set(bob_pid["loaded"].values()).isdisjoint(alice_pid["loaded"].values())

    # Permission taken away: bob can no longer resume code; an admin may run it.
    AccountStore(str(team.jobs)).revoke("bob", "code")
    r = team.model("bob", dataset, method="custom", custom_network=hostile)
    assert r.status_code == 403
    r = team.model("root", dataset, method="custom", custom_network=hostile, train_epochs="1")
    assert r.status_code == 200, r.text


def test_the_model_form_turns_python_off_for_members_without_the_permission(tmp_path):
    from digits.webapp import create_app
    from tests.test_team import client_for

    app = create_app(
        jobs_dir=str(tmp_path / "jobs"), gpus=[], async_mode="threading", inference_workers=0, auth="password"
    )
    accounts = app.extensions["digits"].accounts
    accounts.add("alice", "alice-secret-pw")
    accounts.add("bob", "bob-secret-pw")
    accounts.grant("bob", "code")
    try:
        page = client_for(app, "alice").get("/models/images/classification/new").get_data(as_text=True)
        assert 'data-code-allowed="0"' in page and "python -m digits.users grant NAME code" in page
        page = client_for(app, "bob").get("/models/images/classification/new").get_data(as_text=True)
        assert 'data-code-allowed="1"' in page and 'id="code-refusal"' not in page
    finally:
        app.extensions["digits"].close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)")
def test_in_a_browser_python_is_off_for_a_member_without_the_permission(tmp_path):
    from playwright.sync_api import sync_playwright

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    accounts = AccountStore(str(jobs))
    accounts.add("alice", "alice-secret-pw")
    accounts.add("bob", "bob-secret-pw")
    accounts.grant("bob", "code")
    server = LiveServer(jobs, args=["--auth", "password"]).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for user, allowed in (("alice", False), ("bob", True)):
                page = browser.new_context().new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.goto(server.url + "/login")
                page.fill("#username", user)
                page.fill("#password", f"{user}-secret-pw")
                page.keyboard.press("Enter")
                page.wait_for_url(server.url + "/")
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
                    assert page.is_visible("#custom_network")
                else:
                    assert note.is_visible() and "'code' permission" in note.inner_text()
                    page.check("#framework-caffe")  # back to Caffe: the custom tab opens again
                    assert not note.is_visible()
                    page.click("label[for=method-custom]")
                    assert page.is_visible("#custom_network")
                    # Choosing PyTorch now leaves the custom tab for the standard networks.
                    page.check("#framework-torch")
                    assert page.is_checked("#method-standard") and not page.is_visible("#custom_network")
                assert errors == []
            browser.close()
    finally:
        server.stop()
