"""Report a training that DIGITS did not start to a DIGITS server, with the standard library alone.

    from digits.client import Run

    with Run("http://localhost:5000", token, "my script", epochs=10) as run:   # token None: --auth none server
        for epoch in range(10):
            ...
            run.log(epoch=epoch + 1, loss=loss, lr=lr)                   # train loss and learning rate
            run.log(epoch=epoch + 1, phase="val", loss=vl, accuracy=acc)   # or val_loss=..., val_accuracy=...

Points are buffered and sent in batches (when `batch` are waiting, and every `flush_s` from a background thread,
which also sends a heartbeat while the script is quiet). Leaving the `with` block finishes the run: Done, or Error
with the exception. Without `with`, a script that exits finishes it (Error when an exception ended it); a killed
one stops beating and the server marks it Error. A server that cannot be reached (down, restarting, answering 5xx)
never stops the training: points wait (up to `max_buffer`) and go with the next batch; a restarted server keeps the
run Running and takes them. A run that ended on the server (409: aborted there, or quiet too long) stops sending.
The REST calls are in docs/API.md ("External runs").
"""

from __future__ import annotations

import atexit
import getpass
import http.cookiejar
import json
import math
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

from digits.status import Status  # the server's status names (standard library only, like this module)

__all__ = ["Run", "RunError"]


class RunError(RuntimeError):
    """The server refused a call (the message is its answer; `status` its HTTP status)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class Run:
    """One run on a DIGITS server: created at once, Running until finish()."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        name: str = "script",
        *,
        user: str | None = None,
        notes: str = "",
        settings: dict[str, Any] | None = None,
        epochs: float | None = None,
        batch: int = 2000,
        flush_s: float = 1.0,
        max_buffer: int = 1_000_000,
        timeout_s: float = 60.0,
    ):
        self.base = url.rstrip("/")
        self.batch = batch
        self.flush_s = flush_s
        self.max_buffer = max_buffer
        self.timeout_s = timeout_s
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        if not token:  # a single-user (--auth none) server signs a name in
            self._call("/login", {"username": user or getpass.getuser()}, form=True)
        body: dict[str, Any] = {"name": name, "notes": notes, "settings": settings or {}}
        if epochs is not None:
            body["epochs"] = epochs
        info = self._call("/runs/json", body)
        self.id: str = info["id"]
        self.url = self.base + info["url"]
        self.heartbeat_s = max(0.05, float(info.get("heartbeat_s", 60.0)) / 3)
        self.status = info["status"]
        self.sent = 0  # metric values the server took
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # the buffer
        self._send_lock = threading.Lock()  # one request at a time, in order
        self._last_call = time.monotonic()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._background, daemon=True, name=f"digits-run-{self.id}")
        self._thread.start()
        atexit.register(self._at_exit)

    # ---- HTTP ----
    def _call(self, path: str, body: Any = None, *, form: bool = False, data: bytes | None = None) -> dict:
        headers = dict(self.headers)
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is None:
            data = json.dumps(body if body is not None else {}).encode()
            headers["Content-Type"] = "application/json"
        else:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = e.reason
            raise RunError(f"{path}: HTTP {e.code}: {message}", e.code) from None
        self._last_call = time.monotonic()
        return answer

    # ---- what a script calls ----
    def log(self, *, epoch: float | None = None, step: int | None = None, phase: str | None = None, **metrics):
        """Report metric values at an epoch (or a step): log(epoch=1.5, loss=0.3, lr=0.01)."""
        if epoch is None and step is None:
            raise ValueError("log() needs epoch= or step=")
        if not metrics:
            raise ValueError("log() needs at least one metric, like loss=0.5")
        point: dict[str, Any] = {}
        for key, value in (("epoch", epoch), ("step", step)):
            if value is not None:
                point[key] = _number(key, value)
        if phase is not None:
            point["phase"] = phase
        for key, value in metrics.items():
            point[key] = _number(key, value)
        with self._lock:
            self._buffer.append(point)
            full = len(self._buffer) >= self.batch
        if full:
            self.flush()

    def flush(self) -> None:
        """Send the waiting points now (kept for the next try when the server cannot be reached)."""
        with self._send_lock:
            with self._lock:
                points, self._buffer = self._buffer, []
            if not points or self._ended.is_set() and self.status != Status.RUNNING:
                return
            data = json.dumps(points).encode()  # one JSON list: one call to the C encoder for the batch
            try:
                self.sent += self._call(f"/runs/{self.id}/log", data=data)["values"]
            except RunError as e:
                if e.status < 500:
                    self._refused(e)
                    return
                self._keep(points, e)  # a server restarting (behind a proxy: 502, 503): as if unreachable
            except OSError as e:
                self._keep(points, e)

    def _keep(self, points: list[dict[str, Any]], why: Exception) -> None:
        """Points the server did not take, put back before the waiting ones (the oldest dropped past max_buffer)."""
        with self._lock:
            self._buffer[:0] = points
            drop = len(self._buffer) - self.max_buffer
            if drop > 0:
                del self._buffer[:drop]
        warnings.warn(f"DIGITS run {self.id}: points kept, not taken: {why}", stacklevel=3)

    def heartbeat(self) -> None:
        try:
            self._call(f"/runs/{self.id}/heartbeat")
        except RunError as e:
            self._refused(e)
        except OSError as e:
            warnings.warn(f"DIGITS run {self.id}: heartbeat not sent: {e}", stacklevel=2)

    def finish(self, error: str | None = None) -> None:
        """End the run: Done, or Error with `error`. Waiting points are sent first."""
        if self._ended.is_set():
            return
        self.flush()
        self._ended.set()
        self._thread.join(self.timeout_s)
        atexit.unregister(self._at_exit)
        if self.status != Status.RUNNING:
            return
        body = {"error": error} if error else {}
        try:
            self.status = self._call(f"/runs/{self.id}/finish", body)["status"]
        except RunError as e:
            self._refused(e)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.finish(None if kind is None else f"{kind.__name__}: {value}")

    # ---- in the background ----
    def _refused(self, e: RunError) -> None:
        if " 409: " in str(e):  # the run ended on the server (aborted, or quiet too long): stop sending
            self.status = "Ended"
            self._ended.set()
            warnings.warn(f"DIGITS run {self.id} ended on the server, points not sent: {e}", stacklevel=2)
            return
        raise e

    def _background(self) -> None:
        while not self._ended.wait(min(self.flush_s, self.heartbeat_s)):
            try:
                with self._lock:
                    waiting = bool(self._buffer)
                if waiting:
                    self.flush()
                elif time.monotonic() - self._last_call >= self.heartbeat_s:
                    self.heartbeat()
            except RunError as e:  # a batch the server refused: said, and the run goes on
                warnings.warn(f"DIGITS run {self.id}: {e}", stacklevel=2)

    def _at_exit(self) -> None:
        exc = getattr(sys, "last_value", None)
        self.finish(None if exc is None else f"{type(exc).__name__}: {exc}")


def _number(key: str, value: Any) -> float | int | None:
    kind = type(value)
    if kind is int or kind is float and math.isfinite(value):  # the common case, first: log() runs per point
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            raise TypeError(f"{key} must be a number, got {value!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN or inf (a diverged loss): kept as a gap, left out of the charts
    return value
