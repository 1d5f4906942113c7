"""The server is killed (kill -9) while a model trains: the worker stops at once with an abort snapshot, and the
restarted server offers the run for resuming from it."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import requests

from tests.support.imagegen import make_shapes
from tests.support.live import LiveServer
from tests.support.waiting import LONG_S, SHORT_S, wait_until


@pytest.mark.slow
def test_a_killed_server_leaves_an_abort_snapshot_and_a_resumable_model(tmp_path):
    make_shapes(str(tmp_path / "images"), per_class=150, size=(24, 40))
    server = LiveServer(tmp_path / "jobs").start()
    try:
        web = server.sign_in("me")
        dataset = server.folder_dataset(web, tmp_path / "images")
        model = server.create_model(web, dataset, train_epochs="500", model_name="long", random_seed=None)
        server.wait_progress(model)
        workers = [
            p
            for p in psutil.Process(server.proc.pid).children(recursive=True)
            if "digits.engine.train_worker" in p.cmdline()
        ]
        assert len(workers) == 1
        killed = time.time()
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(SHORT_S)
        workers[0].wait(LONG_S)  # it stops by itself: PDEATHSIG, then its abort path
        folder = tmp_path / "jobs" / model
        snapshots = sorted(folder.glob("snapshot_epoch_*.pt"), key=lambda p: float(p.stem.split("_")[-1]))
        assert snapshots, os.listdir(folder)
        assert snapshots[-1].stat().st_mtime >= killed  # written by the abort, after the server died
    finally:
        server.stop()

    again = LiveServer(tmp_path / "jobs").start()
    try:
        js = requests.get(f"{again.url}/models/{model}/json", timeout=SHORT_S).json()
        assert js["status"] == "Aborted"
        web = again.sign_in("me")
        r = web.post(f"{again.url}/models/{model}/resume", timeout=SHORT_S)
        assert r.status_code == 200, r.text
        log = tmp_path / "jobs" / model / "train.log"
        wait_until(lambda: "resuming from snapshot_epoch_" in log.read_text(), LONG_S, "the resumed run's start")
        assert f"resuming from {snapshots[-1].name}" in log.read_text(), log.read_text()[-2000:]
    finally:
        again.stop()
