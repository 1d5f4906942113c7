"""The real server: gevent, Socket.IO, the jobs-directory lock, restarts. Started as a process, as users do."""

import json
import os
import signal
import subprocess
import sys
import threading

import requests

from tests.support import ROOT
from tests.support.commands import run_module
from tests.support.live import LiveServer, free_port, join_room
from tests.support.waiting import FINAL, SHORT_S


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=SHORT_S)


def test_second_instance_runs_beside_and_third_on_same_dir_is_refused(live_server, tmp_path):
    other = LiveServer(tmp_path / "other-jobs").start()
    try:
        assert get(other.url + "/index/json").json()["datasets"] == []
        port = free_port()
        third = run_module("digits", "-p", port, "--jobs-dir", live_server.jobs_dir)
        assert third.returncode != 0
        assert f"pid {live_server.proc.pid}, port {live_server.port}" in third.stderr
        assert get(live_server.url + "/index/json").status_code == 200
    finally:
        other.stop()


def test_socketio_client_in_a_job_room_gets_status_and_progress(live_server, tmp_path):
    gate = tmp_path / "gate"
    job_id = live_server.create_job(name="live", tasks=[{"gate": str(gate), "steps": 4, "delay": 0.02}])
    received: list[tuple[str, dict]] = []
    finished = threading.Event()

    def recorded(event):
        def handler(data):
            received.append((event, data))
            if event == "job_status" and data["status"] in FINAL:
                finished.set()

        return handler

    live_server.wait_status(job_id, statuses=("Running",))  # held at its gate
    on = {event: recorded(event) for event in ("job_status", "task_progress", "metric")}
    client = join_room(live_server.url, job_id, on, websocket=True)
    try:
        gate.touch()
        assert finished.wait(SHORT_S)
    finally:
        client.disconnect()
    statuses = [d["status"] for e, d in received if e == "job_status"]
    assert statuses == ["Done"]  # it was already Running when we joined
    progress = [d["progress"] for e, d in received if e == "task_progress"]
    assert progress == [0.25, 0.5, 0.75, 1.0]
    losses = [d["value"] for e, d in received if e == "metric" and d["name"] == "loss"]
    assert losses == [1.0, 0.5, 1 / 3, 0.25]
    assert all(d["job_id"] == job_id for _, d in received)


def test_console_room_hears_about_new_jobs(live_server):
    added = threading.Event()
    client = join_room(live_server.url, "home", {"job_added": lambda data: added.set()})
    try:
        job_id = live_server.create_job(name="seen")
        assert added.wait(SHORT_S)
        live_server.wait_status(job_id)
    finally:
        client.disconnect()


def test_the_web_process_never_imports_torch(live_server, tmp_path):
    job_id = live_server.create_job(tasks=[{"steps": 2}])
    live_server.wait_status(job_id)
    for path in ("/", "/index/json", f"/jobs/{job_id}", f"/jobs/{job_id}/json", f"/jobs/{job_id}/status"):
        assert get(live_server.url + path).status_code == 200
    assert get(live_server.url + "/test/modules").json()["torch"] is False


def test_kill_9_then_restart_marks_running_jobs_and_keeps_history(tmp_path):
    jobs_dir = tmp_path / "jobs"
    server = LiveServer(jobs_dir).start()
    done_id = server.create_job(name="finished")
    server.wait_status(done_id)
    running_id = server.create_job(name="interrupted", tasks=[{"gate": str(tmp_path / "never"), "steps": 1}])
    server.wait_status(running_id, statuses=("Running",))
    before = get(f"{server.url}/jobs/{done_id}/json").json()["history"]
    server.stop(signal.SIGKILL)

    corrupt = jobs_dir / "20200101-000000-beef"
    corrupt.mkdir()
    (corrupt / "job.json").write_text("{ not json")

    again = LiveServer(jobs_dir).start()  # the dead server's lock does not block
    try:
        assert get(f"{again.url}/jobs/{done_id}/json").json()["history"] == before
        js = get(f"{again.url}/jobs/{running_id}/status").json()
        assert js["status"] == "Aborted"
        assert "server stopped while this job was running" in js["history"][-1]["message"]
        ids = [d["id"] for d in get(again.url + "/index/json").json()["datasets"]]
        assert sorted(ids) == sorted([done_id, running_id])
        assert (corrupt / "job.json").read_text() == "{ not json"
        assert "skipping job 20200101-000000-beef" in again.log()
    finally:
        again.stop()


def test_stopping_the_server_aborts_running_tasks_cleanly(tmp_path):
    server = LiveServer(tmp_path / "jobs").start()
    job_id = server.create_job(tasks=[{"steps": 10000, "delay": 0.05}])
    server.wait_progress(job_id)  # the worker is up and working
    assert server.stop(signal.SIGTERM) == 0
    data = json.loads((tmp_path / "jobs" / job_id / "job.json").read_text())
    assert data["status"] == "Aborted" and data["tasks"][0]["snapshots"]


def test_entry_points(tmp_path):
    for cmd in ([sys.executable, "-m", "digits", "--help"], [sys.executable, str(ROOT / "digits-devserver"), "--help"]):
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=SHORT_S)
        assert out.returncode == 0 and "--jobs-dir" in out.stdout and "--url-prefix" in out.stdout
    bad = run_module("digits", "--gpus", "zero", env=dict(os.environ, DIGITS_JOBS_DIR=str(tmp_path)))
    assert bad.returncode == 2 and "gpus" in bad.stderr and "Traceback" not in bad.stderr
