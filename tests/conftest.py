"""Fixtures: an in-process app on a temporary jobs directory, and the real server started as a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from digits.config import settings_from
from digits.webapp import create_app
from tests.support import fakejobs  # noqa: F401 - registers the fake task kind

ROOT = Path(__file__).resolve().parents[1]
# Workers are started with `python -m tests.workers...`, so they need the checkout on their path.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
FINAL = ("Done", "Error", "Aborted")


class EventRecorder:
    """Collects bus events so a test can wait for one instead of sleeping."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []
        self._cond = threading.Condition()

    def __call__(self, event: str, payload: dict) -> None:
        with self._cond:
            self.events.append((event, payload))
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 30.0) -> tuple[str, dict]:
        def found():
            return next(((e, p) for e, p in self.events if predicate(e, p)), None)

        with self._cond:
            assert self._cond.wait_for(lambda: found() is not None, timeout), f"no such event in {self.events}"
            return found()

    def wait_status(self, job_id: str, statuses=FINAL, timeout: float = 30.0) -> str:
        event = self.wait_for(
            lambda e, p: e == "job_status" and p["job_id"] == job_id and p["status"] in statuses, timeout
        )
        return event[1]["status"]


@pytest.fixture
def settings(tmp_path):
    return settings_from(
        # No warm inference workers unless a test asks: each is a process with torch loaded.
        {
            "jobs_dir": str(tmp_path / "jobs"),
            "gpus": [],
            "async_mode": "threading",
            "abort_grace_s": 3.0,
            "inference_workers": 0,
        }
    )


@pytest.fixture
def app(settings):
    app = create_app(settings)
    yield app
    app.extensions["digits"].close()


@pytest.fixture
def workspace(app):
    return app.extensions["digits"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def recorder(workspace):
    rec = EventRecorder()
    workspace.bus.subscribe(rec)
    return rec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real devserver (gevent + Socket.IO) with the test harness routes, as a child process."""

    def __init__(self, jobs_dir: Path, args: list[str] | None = None, port: int | None = None):
        self.jobs_dir = jobs_dir
        self.port = port or free_port()
        self.args = args or []
        self.proc: subprocess.Popen | None = None
        self.log_path = jobs_dir.parent / f"server-{self.port}.log"
        self.ready_headers: dict[str, str] = {}
        self.env: dict[str, str] = {}  # e.g. {"DIGITS_INFERENCE_WORKERS": "2"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tests.support.serve",
            "-p",
            str(self.port),
            "--jobs-dir",
            str(self.jobs_dir),
            "--gpus",
            "none",
            *self.args,
        ]

    def start(self, timeout: float = 30.0) -> LiveServer:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            stdout=open(self.log_path, "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"DIGITS_INFERENCE_WORKERS": "0", **os.environ, **self.env},
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                if requests.get(self.url + "/index/json", timeout=1, headers=self.ready_headers).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer in {timeout}s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def folder_dataset(self, http: requests.Session, folder, **fields) -> str:
        """A dataset of `folder`'s class folders made through the JSON twin (gray 28x28 unless `fields` say
        otherwise), by a signed-in session; its id once it is Done."""
        form = {
            "method": "folder",
            "folder_train": str(folder),
            "resize_channels": "1",
            "resize_width": "28",
            "resize_height": "28",
            "dataset_name": "shapes",
            **fields,
        }
        r = http.post(
            self.url + "/datasets/images/classification/json",
            data=form,
            headers={"Accept": "application/json"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        assert self.wait_status(job_id, timeout=300)["status"] == "Done"
        return job_id

    def create_job(self, **body) -> str:
        r = requests.post(self.url + "/test/jobs", json=body, timeout=10)
        r.raise_for_status()
        return r.json()["id"]

    def wait_status(self, job_id: str, statuses=FINAL, timeout: float = 30.0) -> dict:
        return self._wait(job_id, lambda js: js["status"] in statuses, timeout)

    def wait_progress(self, job_id: str, timeout: float = 30.0) -> dict:
        return self._wait(job_id, lambda js: js["progress"] > 0, timeout)

    def _wait(self, job_id: str, predicate, timeout: float) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            js = requests.get(f"{self.url}/jobs/{job_id}/status", timeout=5).json()
            if predicate(js):
                return js
            time.sleep(0.05)
        raise AssertionError(f"job {job_id}: {js} after {timeout}s")


@pytest.fixture
def live_server(tmp_path):
    server = LiveServer(tmp_path / "jobs").start()
    yield server
    server.stop()
