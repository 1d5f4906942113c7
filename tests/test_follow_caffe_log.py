"""python -m digits.tools.follow_caffe_log: a Caffe log (glog's text) read line by line, and followed as it grows
into an external run of the real server, which ends Done on 'Optimization Done.' or Error when Caffe is gone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from digits.tools.follow_caffe_log import LogState, read_line
from tests.support import ROOT
from tests.support.live import LiveServer
from tests.support.waiting import SHORT_S, wait_until

SAMPLE = ROOT / "tests" / "data" / "caffe_logs" / "lenet_train.log"


def test_every_metric_line_of_a_caffe_log_is_a_point():
    state = LogState()
    points = [p for line in SAMPLE.read_text().splitlines() for p in read_line(line, state)]
    assert points == [
        ("val", "accuracy", 0.0856, 0),
        ("val", "loss", 2.34146, 0),
        ("train", "loss", 2.36162, 0),
        ("train", "learning_rate", 0.01, 0),
        ("train", "loss", 0.21478, 100),
        ("train", "learning_rate", 0.00992565, 100),
        ("train", "loss", 0.16612, 200),
        ("train", "learning_rate", 0.00985258, 200),
        ("val", "accuracy", 0.9724, 200),
        ("val", "loss", 0.0872, 200),
    ]
    assert state.done


@pytest.fixture
def server(tmp_path):
    server = LiveServer(tmp_path / "jobs").start()
    yield server
    server.stop()


def follower(tmp_path, server, log, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digits.tools.follow_caffe_log",
            "lenet elsewhere",
            str(log),
            "--url",
            server.url,
            "--user",
            "ann",
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def run_id_of(proc) -> str:
    line = proc.stdout.readline()
    assert line.startswith("following "), line
    return line.rstrip().rsplit("/", 1)[1]


def metrics(server, run_id) -> dict:
    return requests.get(f"{server.url}/runs/{run_id}/json", timeout=SHORT_S).json()["metrics"]


def test_a_growing_log_is_followed_through_rotation_to_done(tmp_path, server):
    lines = SAMPLE.read_text().splitlines(keepends=True)
    log = tmp_path / "caffe.log"
    log.write_text("".join(lines[:12]))  # up to iteration 0's learning rate
    proc = follower(tmp_path, server, log, "--iters-per-epoch", "100")
    try:
        run_id = run_id_of(proc)
        wait_until(lambda: "learning_rate" in metrics(server, run_id).get("train", {}), SHORT_S, "iteration 0's lr")
        with open(log, "a") as fh:
            fh.write(lines[12][:40])  # half a line: read once it is whole, in the file it ends in
        os.rename(log, tmp_path / "caffe.log.1")  # rotated: the rest goes to a new file of the same name
        log.write_text(lines[12][40:] + "".join(lines[13:]))
        assert proc.wait(SHORT_S) == 0
        assert "Done" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=SHORT_S)
    assert server.wait_status(run_id)["status"] == "Done"
    got = metrics(server, run_id)
    assert got["train"]["loss"] == [[0.0, 2.36162], [1.0, 0.21478], [2.0, 0.16612]]
    assert got["train"]["learning_rate"] == [[0.0, 0.01], [1.0, 0.00992565], [2.0, 0.00985258]]
    assert got["val"]["accuracy"] == [[0.0, 0.0856], [2.0, 0.9724]]


def test_a_quiet_log_whose_caffe_is_gone_ends_the_run_in_error(tmp_path, server):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    log = tmp_path / "caffe.log"
    log.write_text("".join(SAMPLE.read_text().splitlines(keepends=True)[:12]))
    proc = follower(tmp_path, server, log, "--pid", str(gone.pid), "--idle-s", "1")
    try:
        run_id = run_id_of(proc)
        assert proc.wait(SHORT_S) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=SHORT_S)
    info = server.wait_status(run_id)
    assert info["status"] == "Error" and f"Caffe (pid {gone.pid}) has ended" in info["error"], info
    assert metrics(server, run_id)["train"]["loss"] == [[0.0, 2.36162]]
