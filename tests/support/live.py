"""The real server (gevent, Socket.IO, real workers) started as a process, as users start it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import requests
import socketio

from tests.support import JSON, ROOT
from tests.support.accounts import add_accounts, bearer, password_of
from tests.support.forms import dataset_form, model_form
from tests.support.waiting import FINAL, LONG_S, SHORT_S, wait_until

# The devserver with the test harness's routes (tests/support/harness.py); `-m digits` is the plain one.
HARNESS = ["-m", "tests.support.serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortTaken(RuntimeError):
    """Another process (a second copy of the suite, say) took the port between free_port and the server's bind."""


class LiveServer:
    """The real devserver as a child process, on its own port and jobs folder.

    `headers` go with the harness's own requests (the ready probe, create_job, wait_status): a team server's
    wants a token. `tokens` are its members' API tokens, by name (see team_server).
    """

    def __init__(self, jobs_dir, args=None, port: int | None = None, env=None, entry: list[str] | None = None):
        self.jobs_dir = Path(jobs_dir)
        self.fixed_port = port
        self.port = port or free_port()
        self.args = list(args or [])
        self.env: dict[str, str] = dict(env or {})  # e.g. {"DIGITS_INFERENCE_WORKERS": "2"}
        self.entry = entry or HARNESS
        self.headers: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self._log_fh = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.jobs_dir.parent / f"server-{self.port}.log"

    @property
    def team(self) -> bool:
        """Whether it runs with --auth password."""
        return any(a == "--auth" and b == "password" for a, b in zip(self.args, self.args[1:], strict=False))

    def command(self) -> list[str]:
        return [sys.executable, *self.entry, "-p", str(self.port), "--jobs-dir", str(self.jobs_dir)] + [
            "--gpus",
            "none",
            *self.args,
        ]

    def start(self, timeout: float = SHORT_S) -> LiveServer:
        """Start it and wait until it answers on its port; a port taken meanwhile is traded for another."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            try:
                self._start_once(timeout)
                return self
            except PortTaken:
                if self.fixed_port:
                    raise
                self.port = free_port()
        raise RuntimeError(f"no free port found for the server: {self.log()[-2000:]}")

    def _start_once(self, timeout: float) -> None:
        self._log_fh = open(self.log_path, "a")  # noqa: SIM115 - the server's output, closed by stop()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"DIGITS_INFERENCE_WORKERS": "0", **os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_log()
                log = self.log()
                if "cannot listen on" in log and "in use" in log:
                    raise PortTaken(log[-500:])
                raise RuntimeError(f"server exited {self.proc.returncode}: {log[-2000:]}")
            # Ours must be the process listening: another suite's server may answer on a port we both drew.
            if self._listening() and self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer in {timeout:g} s: {self.log()[-2000:]}")

    def _listening(self) -> bool:
        try:
            connections = psutil.Process(self.proc.pid).net_connections("tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in connections)

    def _answers(self) -> bool:
        try:
            return requests.get(self.url + "/index/json", timeout=10, headers=self.headers).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def _close_log(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = SHORT_S) -> int | None:
        """Signal it (SIGTERM: a clean stop, its running tasks aborted) and wait; SIGKILL after timeout."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._close_log()
        return self.proc.returncode if self.proc else None

    # ---- as a client -------------------------------------------------------------------------------------------
    def auth(self, name: str) -> dict[str, str]:
        """Headers of `name`'s scripts: their API token."""
        return bearer(self.tokens[name])

    def sign_in(self, name: str = "ann", password: str | None = None) -> requests.Session:
        """A session signed in as `name` through POST /login, as a script does (password_of on a team server)."""
        http = requests.Session()
        form = {"username": name}
        if self.team or password is not None:
            form["password"] = password if password is not None else password_of(name)
        r = http.post(self.url + "/login", data=form, headers=JSON, timeout=SHORT_S)
        assert r.status_code == 200, r.text
        return http

    def folder_dataset(self, http: requests.Session | None, folder, **fields) -> str:
        """A dataset of `folder`'s class folders made through the JSON twin (gray 28x28 unless `fields` say
        otherwise), by a signed-in session (or the harness's headers); its id once it is Done."""
        post = http.post if http is not None else requests.post
        r = post(
            self.url + "/datasets/images/classification/json",
            data=dataset_form(folder, **fields),
            headers={**self.headers, **JSON} if http is None else JSON,
            timeout=SHORT_S,
        )
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        done = self.wait_status(job_id, timeout=LONG_S)
        assert done["status"] == "Done", done
        return job_id

    def create_model(self, http: requests.Session, dataset_id: str, **fields) -> str:
        """A model job made through the JSON twin (LeNet in PyTorch unless `fields` say otherwise); its id."""
        r = http.post(
            self.url + "/models/images/classification/json",
            data=model_form(dataset_id, **fields),
            headers=JSON,
            timeout=SHORT_S,
        )
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def create_job(self, **body) -> str:
        """A fake job through the harness (tests/support/harness.py): its id."""
        r = requests.post(self.url + "/test/jobs", json=body, headers=self.headers, timeout=SHORT_S)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def status(self, job_id: str) -> dict:
        return requests.get(f"{self.url}/jobs/{job_id}/status", headers=self.headers, timeout=SHORT_S).json()

    def wait_status(self, job_id: str, statuses=FINAL, timeout: float = SHORT_S) -> dict:
        """The job's status JSON once its status is one of `statuses`."""
        return self._wait(job_id, lambda js: js["status"] in statuses, f"one of {statuses}", timeout)

    def wait_progress(self, job_id: str, timeout: float = LONG_S) -> dict:
        """The job's status JSON once a task has made progress (its worker is up and working)."""
        return self._wait(job_id, lambda js: js["progress"] > 0, "progress", timeout)

    def _wait(self, job_id: str, predicate, what: str, timeout: float) -> dict:
        seen = {}

        def reached():
            seen["last"] = self.status(job_id)
            return seen["last"] if predicate(seen["last"]) else None

        try:
            return wait_until(reached, timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"job {job_id} reached no {what} in {timeout:g} s: {seen.get('last')}") from None


def join_room(url: str, room: str, on: dict[str, Callable[[dict], None]], websocket: bool = False) -> socketio.Client:
    """A Socket.IO client of the /jobs namespace, in `room` (a job id, or "home" for the console) once this returns,
    calling on[event](data) for each event (registered before it joins). Disconnect it when done."""
    client = socketio.Client()
    joined = threading.Event()
    client.on("joined", lambda data: joined.set(), namespace="/jobs")
    for event, handler in on.items():
        client.on(event, handler, namespace="/jobs")
    # Polling then an upgrade, as a browser does, unless `websocket`.
    client.connect(url, namespaces=["/jobs"], transports=["websocket"] if websocket else None, wait_timeout=SHORT_S)
    client.emit("join", {"room": room}, namespace="/jobs")
    if not joined.wait(SHORT_S):
        client.disconnect()
        raise AssertionError(f"the server did not confirm joining room {room} within {SHORT_S:g} s")
    return client


def team_server(jobs_dir, *names: str, admins=(), code=(), args=(), env=None) -> LiveServer:
    """A --auth password server, not started yet, whose members are `names` (see add_accounts); the harness's
    requests carry the first member's token."""
    server = LiveServer(jobs_dir, args=["--auth", "password", *args], env=env)
    server.tokens = add_accounts(jobs_dir, *names, admins=admins, code=code)
    server.headers = server.auth(names[0])
    return server
