"""digits.client against the real server: scripts run as real subprocesses report their training, crash, or go
quiet, and the server shows each as the run's status and points."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from tests.support import ROOT
from tests.support.live import LiveServer
from tests.support.waiting import SHORT_S, wait_until

SCRIPT = """
import sys
from digits.client import Run

run = Run(sys.argv[1], None, "subprocess run", user="ann", epochs=3, settings={{"hidden": 16}}, batch=4)
print(run.id, flush=True)
{body}
"""


@pytest.fixture
def server(tmp_path):
    server = LiveServer(tmp_path / "jobs", env={"DIGITS_RUN_HEARTBEAT_S": "2"}).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def scripts():
    """The scripts a test started: killed if still running, their pipes closed."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=SHORT_S)


def start(tmp_path, server, scripts, body: str) -> tuple[subprocess.Popen, str]:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT.format(body=textwrap.dedent(body)))
    proc = subprocess.Popen(
        [sys.executable, str(path), server.url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    scripts.append(proc)
    return proc, proc.stdout.readline().strip()


def run_json(server, run_id) -> dict:
    return requests.get(f"{server.url}/runs/{run_id}/json", timeout=SHORT_S).json()


def test_a_script_reports_its_training_and_ends_done(tmp_path, server, scripts):
    proc, run_id = start(
        tmp_path,
        server,
        scripts,
        """
        with run:
            for epoch in range(1, 4):
                for i in range(10):
                    run.log(epoch=epoch - 1 + (i + 1) / 10, loss=1.0 / (epoch * 10 + i), lr=0.1 / epoch)
                run.log(epoch=epoch, val_loss=1.0 / epoch, val_accuracy=0.3 * epoch)
        """,
    )
    assert proc.wait(SHORT_S) == 0
    info = server.wait_status(run_id)
    assert info["status"] == "Done", info
    data = run_json(server, run_id)
    assert len(data["metrics"]["train"]["loss"]) == 30 and len(data["metrics"]["train"]["learning_rate"]) == 30
    assert data["metrics"]["val"]["accuracy"] == [[1.0, 0.3], [2.0, 0.6], [3.0, 0.8999999999999999]]
    assert data["settings"] == {"hidden": 16} and data["progress"] == 1.0
    model = requests.get(f"{server.url}/models/{run_id}/json", timeout=SHORT_S).json()
    assert model["metrics"]["val"]["loss"] == data["metrics"]["val"]["loss"]
    assert f'href="/runs/{run_id}"' in requests.get(server.url + "/", timeout=SHORT_S).text


def test_an_exception_in_the_with_block_ends_the_run_in_error(tmp_path, server, scripts):
    proc, run_id = start(
        tmp_path,
        server,
        scripts,
        """
        with run:
            run.log(step=1, loss=2.5)
            raise ValueError("the loss diverged")
        """,
    )
    assert proc.wait(SHORT_S) == 1
    info = server.wait_status(run_id)
    assert info["status"] == "Error" and info["error"] == "ValueError: the loss diverged", info
    assert run_json(server, run_id)["metrics"]["train"]["loss"] == [[1.0, 2.5]]


def test_a_script_that_crashes_without_with_ends_the_run_in_error(tmp_path, server, scripts):
    proc, run_id = start(tmp_path, server, scripts, "run.log(epoch=0.5, loss=1.0)\n1 / 0\n")
    assert proc.wait(SHORT_S) == 1
    info = server.wait_status(run_id)
    assert info["status"] == "Error" and info["error"].startswith("ZeroDivisionError"), info


def test_a_killed_script_stops_beating_and_the_server_marks_it_error(tmp_path, server, scripts):
    proc, run_id = start(
        tmp_path,
        server,
        scripts,
        """
        import time
        run.log(epoch=0.1, loss=1.0)
        run.flush()
        print("sent", flush=True)
        time.sleep(600)
        """,
    )
    assert proc.stdout.readline().strip() == "sent"
    # While it lives, its heartbeats keep it Running past the server's 2 s.
    started = server.status(run_id)["history"][-1]["time"]
    wait_until(lambda: time.time() > started + 5, SHORT_S, "5 s of the run")
    assert server.status(run_id)["status"] == "Running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(SHORT_S)
    info = server.wait_status(run_id)
    assert info["status"] == "Error" and info["error"].startswith("no heartbeat since"), info


def test_a_server_restart_leaves_the_run_running_and_the_client_sends_what_waited(tmp_path, server, scripts):
    proc, run_id = start(
        tmp_path,
        server,
        scripts,
        """
        import warnings
        run.log(epoch=1, loss=1.0)
        run.flush()
        print("sent", flush=True)
        sys.stdin.readline()  # the server is down now
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.log(epoch=2, loss=0.5)
            run.flush()
        print(len(run._buffer), caught[0].message, flush=True)
        sys.stdin.readline()  # and up again
        run.log(epoch=3, loss=0.25)
        run.finish()
        """,
    )
    assert proc.stdout.readline().strip() == "sent"
    server.stop()
    proc.stdin.write("down\n")
    proc.stdin.flush()
    kept = proc.stdout.readline()
    assert kept.startswith("1 DIGITS run ") and "points kept, not taken" in kept, kept
    server.start()
    assert server.status(run_id)["status"] == "Running"
    proc.stdin.write("up\n")
    proc.stdin.flush()
    assert proc.wait(SHORT_S) == 0, proc.stderr.read()
    info = server.wait_status(run_id)
    assert info["status"] == "Done", info
    assert run_json(server, run_id)["metrics"]["train"]["loss"] == [[1.0, 1.0], [2.0, 0.5], [3.0, 0.25]]


def test_a_script_that_died_while_the_server_was_down_ends_in_error_after_the_restart(tmp_path, server, scripts):
    proc, run_id = start(
        tmp_path,
        server,
        scripts,
        "run.log(epoch=1, loss=1.0)\nrun.flush()\nprint('sent', flush=True)\nimport time\ntime.sleep(600)\n",
    )
    assert proc.stdout.readline().strip() == "sent"
    server.stop()
    proc.kill()
    proc.wait(SHORT_S)
    server.start()  # no call comes: the check the server starts with ends the run
    info = server.wait_status(run_id)
    assert info["status"] == "Error" and info["error"].startswith("no heartbeat since"), info
