"""The protocol of every worker: one JSON object per line with a "type", shared by the parent and the child.

Task workers (training, datasets) write on stdout: progress {fraction, epoch}, metric {phase, name, value,
epoch, iteration}, lr {value, epoch}, snapshot {epoch, path}, log {level, message}, error {message,
traceback}, done {status}.

Inference workers answer requests: the server writes request {id, op, ...} lines on the worker's stdin (op:
classify_one, classify_many, top_n, hardest, ping; the rest are the op's fields), and the worker writes
ready {pid, device} once, request_progress {id, done, total} while a long request runs, and reply {id, ok,
result} or reply {id, ok: false, error: {type, message}} (error types: ERROR_KINDS).

A line that does not decode to one of these is ordinary log text, never evaluated and never fatal.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from digits.status import Status

Number = (int, float)


@dataclass(frozen=True)
class Progress:
    fraction: float
    epoch: float | None = None
    type = "progress"


@dataclass(frozen=True)
class Metric:
    phase: str
    name: str
    value: float
    epoch: float | None = None
    iteration: int | None = None
    type = "metric"


@dataclass(frozen=True)
class LearningRate:
    value: float
    epoch: float | None = None
    type = "lr"


@dataclass(frozen=True)
class Snapshot:
    epoch: float
    path: str
    type = "snapshot"


@dataclass(frozen=True)
class Log:
    level: str
    message: str
    type = "log"


@dataclass(frozen=True)
class Error:
    message: str
    traceback: str | None = None
    type = "error"


@dataclass(frozen=True)
class Done:
    status: Status = Status.DONE  # the wire carries its text ("Done", "Aborted"); decode() makes it a Status
    type = "done"


@dataclass(frozen=True)
class Ready:
    """An inference worker can take requests."""

    pid: int
    device: str | None = None
    type = "ready"


@dataclass(frozen=True)
class RequestProgress:
    """How far a long inference request is (it also keeps the request from timing out)."""

    id: int
    done: int
    total: int
    type = "request_progress"


@dataclass(frozen=True)
class Reply:
    """The answer to an inference request: its result, or an error {type, message}."""

    id: int
    ok: bool
    result: dict | None = None
    error: dict | None = None
    type = "reply"


Message = Progress | Metric | LearningRate | Snapshot | Log | Error | Done
TYPES: dict[str, type] = {cls.type: cls for cls in (Progress, Metric, LearningRate, Snapshot, Log, Error, Done)}
Answer = Ready | RequestProgress | Reply
ANSWER_TYPES: dict[str, type] = {cls.type: cls for cls in (Ready, RequestProgress, Reply)}
DONE_STATUSES = (Status.DONE, Status.ABORTED)
REQUEST = "request"
ERROR_KINDS = ("bad_input", "not_found", "failed")

# What each field must hold: (accepted Python types, may be None)
_FIELD_RULES: dict[str, tuple[tuple[type, ...], bool]] = {
    "fraction": (Number, False),
    "epoch": (Number, True),
    "phase": ((str,), False),
    "name": ((str,), False),
    "value": (Number, False),
    "iteration": ((int,), True),
    "path": ((str,), False),
    "level": ((str,), False),
    "message": ((str,), False),
    "traceback": ((str,), True),
    "status": ((str,), False),
    "pid": ((int,), False),
    "device": ((str,), True),
    "id": ((int,), False),
    "done": ((int,), False),
    "total": ((int,), False),
    "ok": ((bool,), False),
    "result": ((dict,), True),
    "error": ((dict,), True),
}


def _finite(value: Any) -> Any:
    """NaN and infinities (a diverged model's scores) as None, so an inference answer is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _line(body: dict[str, Any], strict: bool) -> str:
    if not strict:
        return json.dumps(body, allow_nan=True, separators=(",", ":"))
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(body), allow_nan=False, separators=(",", ":"))


def encode(msg: Message | Answer) -> str:
    """One protocol line (without the newline). A task's metric may be NaN (a diverging loss is reported
    before the worker stops); an inference answer is strict JSON."""
    body: dict[str, Any] = {"type": msg.type}
    body.update(dataclasses.asdict(msg))
    return _line(body, strict=msg.type in ANSWER_TYPES)


def encode_request(request_id: int, op: str, fields: dict[str, Any]) -> str:
    """An inference request line: {"type": "request", "id", "op", ...the op's fields}."""
    return _line({**fields, "type": REQUEST, "id": request_id, "op": op}, strict=True)


def _valid(name: str, value: Any) -> bool:
    kinds, nullable = _FIELD_RULES[name]
    if value is None:
        return nullable
    if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
        return False
    return not (isinstance(value, float) and math.isinf(value) and name != "value")


def _object(line: str | bytes) -> dict[str, Any] | None:
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        body = json.loads(line)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def decode_request(line: str | bytes) -> tuple[int, str, dict[str, Any]] | None:
    """(id, op, the op's fields) of an inference request line, or None."""
    body = _object(line)
    if body is None or body.pop("type", None) != REQUEST:
        return None
    request_id, op = body.pop("id", None), body.pop("op", None)
    if not _valid("id", request_id) or not isinstance(op, str):
        return None
    return request_id, op, body


def decode_answer(line: str | bytes) -> Answer | None:
    """The inference worker's answer a line carries, or None (then it is the worker's stray output)."""
    return decode(line, ANSWER_TYPES)


def decode(line: str | bytes, types: dict[str, type] = TYPES) -> Message | None:
    """The message a line carries, or None when the line is not protocol (then it is log text)."""
    body = _object(line)
    if body is None:
        return None
    cls = types.get(body.pop("type", None))  # type: ignore[arg-type]
    if cls is None:
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if set(body) - set(fields):
        return None
    required = {n for n, f in fields.items() if f.default is dataclasses.MISSING}
    if required - set(body):
        return None
    if not all(_valid(name, value) for name, value in body.items()):
        return None
    if cls is Done:
        try:
            body["status"] = Status(body.get("status", Status.DONE))
        except ValueError:
            return None
        if body["status"] not in DONE_STATUSES:
            return None
    if cls is Progress and not 0.0 <= body["fraction"] <= 1.0:
        return None
    return cls(**body)


class Reporter:
    """What a worker calls to speak the protocol; every call writes and flushes one line.

    When nobody reads any more (the server died: EPIPE), the rest is dropped and `on_closed` runs, so the
    worker can still finish what it was doing (an aborted training run writes its snapshot)."""

    def __init__(self, stream: IO[str], on_closed: Callable[[], None] | None = None):
        self.stream = stream
        self.on_closed = on_closed
        self.closed = False

    def send(self, msg: Message) -> None:
        if self.closed:
            return
        try:
            self.stream.write(encode(msg) + "\n")
            self.stream.flush()
        except BrokenPipeError:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()

    def progress(self, fraction: float, epoch: float | None = None) -> None:
        self.send(Progress(min(1.0, max(0.0, float(fraction))), epoch))

    def metric(
        self, phase: str, name: str, value: float, epoch: float | None = None, iteration: int | None = None
    ) -> None:
        self.send(Metric(phase, name, float(value), epoch, iteration))

    def lr(self, value: float, epoch: float | None = None) -> None:
        self.send(LearningRate(float(value), epoch))

    def snapshot(self, epoch: float, path: str) -> None:
        self.send(Snapshot(epoch, path))

    def log(self, message: str, level: str = "info") -> None:
        self.send(Log(level, message))

    def error(self, message: str, traceback: str | None = None) -> None:
        self.send(Error(message, traceback))

    def done(self, status: Status = Status.DONE) -> None:
        self.send(Done(Status(status)))
