"""A custom PyTorch network over generic data is a member's code: on a real team server it needs the 'code'
permission (403 naming it, before any job exists) while a Caffe prototxt over the same data is open to all; the
member who holds the permission trains it, confined, to Done."""

from __future__ import annotations

import requests

from digits.accounts import AccountStore
from tests.model.test_generic_models import CAFFE_MLP
from tests.support.generic_data import blobs, write_csv
from tests.support.live import team_server
from tests.support.waiting import LONG_S, SHORT_S

NETWORK = """
from torch import nn


def build_model(*, num_features, num_outputs):
    return nn.Sequential(nn.Linear(num_features, 8), nn.ReLU(), nn.Linear(8, num_outputs))
"""
SOLVER = {"solver_type": "ADAM", "learning_rate": "0.01", "lr_policy": "fixed", "train_epochs": "1"}


def test_a_custom_pytorch_network_over_generic_data_needs_the_code_permission(tmp_path):
    server = team_server(tmp_path / "jobs", "alice", "bob", code=["bob"]).start()
    try:

        def post(user: str, path: str, data: dict, files=None) -> requests.Response:
            return requests.post(server.url + path, data=data, files=files, headers=server.auth(user), timeout=SHORT_S)

        x, y = blobs(120, features=4)
        data = write_csv(tmp_path / "blobs.csv", x, y, target="side")
        with open(data, "rb") as fh:
            r = post("alice", "/datasets/generic/json", {"dataset_name": "blobs"}, {"train_file": ("blobs.csv", fh)})
        assert r.status_code == 200, r.text
        dataset = r.json()["id"]
        assert server.wait_status(dataset, timeout=LONG_S)["status"] == "Done"
        custom = {**SOLVER, "dataset": dataset, "method": "custom", "framework": "torch", "custom_network": NETWORK}

        # Without the permission: refused, naming it, and no job is made.
        before = requests.get(server.url + "/index/json", headers=server.auth("alice"), timeout=SHORT_S).json()
        r = post("alice", "/models/generic/json", {**custom, "model_name": "alice-torch"})
        assert r.status_code == 403 and "'code' permission" in r.json()["error"]["message"], r.text
        after = requests.get(server.url + "/index/json", headers=server.auth("alice"), timeout=SHORT_S).json()
        assert len(after["models"]) == len(before["models"])
        # Its form page says so beside the network definition.
        page = requests.get(server.url + "/models/generic/new", headers=server.auth("alice"), timeout=SHORT_S)
        assert page.status_code == 200 and 'id="code-refusal"' in page.text
        # A Caffe prototxt over the same data is data, not code.
        caffe = {**custom, "framework": "caffe", "custom_network": CAFFE_MLP, "model_name": "alice-caffe"}
        r = post("alice", "/models/generic/json", caffe)
        assert r.status_code == 200, r.text
        alice_caffe = r.json()["id"]

        # With it: bob's network trains to Done.
        r = post("bob", "/models/generic/json", {**custom, "model_name": "bob-torch"})
        assert r.status_code == 200, r.text
        bob_model = r.json()["id"]
        assert server.wait_status(bob_model, timeout=LONG_S)["status"] == "Done"
        assert server.wait_status(alice_caffe, timeout=LONG_S)["status"] == "Done"

        # The permission taken away: refused again.
        AccountStore(str(tmp_path / "jobs")).revoke("bob", "code")
        r = post("bob", "/models/generic/json", {**custom, "model_name": "bob-again"})
        assert r.status_code == 403, r.text
    finally:
        server.stop()
