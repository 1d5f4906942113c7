"""The server is killed (kill -9) while a model trains: the worker stops at once with an abort snapshot, and the
restarted server offers the run for resuming from it."""

from __future__ import annotations

import os
import signal
import time

import psutil
import requests

from tests.conftest import LiveServer
from tests.support.imagegen import make_shapes


def test_a_killed_server_leaves_an_abort_snapshot_and_a_resumable_model(tmp_path):
    make_shapes(str(tmp_path / "images"), per_class=150, size=(24, 40))
    server = LiveServer(tmp_path / "jobs").start()
    try:
        web = requests.Session()
        web.post(server.url + "/login", data={"username": "me"}, timeout=10)
        dataset = server.folder_dataset(web, tmp_path / "images")
        form = {
            "dataset": dataset,
            "method": "standard",
            "standard_networks": "lenet",
            "framework": "torch",
            "train_epochs": "500",
            "model_name": "long",
        }
        model = web.post(server.url + "/models/images/classification/json", data=form, timeout=30).json()["id"]
        server.wait_progress(model, timeout=120)
        workers = [
            p
            for p in psutil.Process(server.proc.pid).children(recursive=True)
            if "digits.engine.train_worker" in p.cmdline()
        ]
        assert len(workers) == 1
        killed = time.time()
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(30)
        workers[0].wait(60)  # it stops by itself: PDEATHSIG, then its abort path
        folder = tmp_path / "jobs" / model
        snapshots = sorted(folder.glob("snapshot_epoch_*.pt"), key=lambda p: float(p.stem.split("_")[-1]))
        assert snapshots, os.listdir(folder)
        assert snapshots[-1].stat().st_mtime >= killed  # written by the abort, after the server died
    finally:
        server.stop()

    again = LiveServer(tmp_path / "jobs").start()
    try:
        js = requests.get(f"{again.url}/models/{model}/json", timeout=10).json()
        assert js["status"] == "Aborted"
        web = requests.Session()
        web.post(again.url + "/login", data={"username": "me"}, timeout=10)
        r = web.post(f"{again.url}/models/{model}/resume", timeout=10)
        assert r.status_code == 200, r.text
        log = tmp_path / "jobs" / model / "train.log"
        deadline = time.time() + 120
        while "resuming from snapshot_epoch_" not in log.read_text() and time.time() < deadline:
            time.sleep(0.2)
        assert f"resuming from {snapshots[-1].name}" in log.read_text(), log.read_text()[-2000:]
    finally:
        again.stop()
