"""The task protocol: one JSON object per line on a worker's stdout, shared by the parent and the child.

Types: progress {fraction, epoch}, metric {phase, name, value, epoch, iteration}, lr {value, epoch},
snapshot {epoch, path}, log {level, message}, error {message, traceback}, done {status}.
A line that does not decode to one of these is ordinary log text, never evaluated and never fatal.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

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
    status: str = "Done"
    type = "done"


Message = Progress | Metric | LearningRate | Snapshot | Log | Error | Done
TYPES: dict[str, type] = {cls.type: cls for cls in (Progress, Metric, LearningRate, Snapshot, Log, Error, Done)}
DONE_STATUSES = ("Done", "Aborted")

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
}


def encode(msg: Message) -> str:
    """One protocol line (without the newline)."""
    body: dict[str, Any] = {"type": msg.type}
    body.update(dataclasses.asdict(msg))
    return json.dumps(body, allow_nan=True, separators=(",", ":"))


def _valid(name: str, value: Any) -> bool:
    kinds, nullable = _FIELD_RULES[name]
    if value is None:
        return nullable
    if isinstance(value, bool) or not isinstance(value, kinds):
        return False
    return not (isinstance(value, float) and math.isinf(value) and name != "value")


def decode(line: str | bytes) -> Message | None:
    """The message a line carries, or None when the line is not protocol (then it is log text)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        body = json.loads(line)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    cls = TYPES.get(body.pop("type", None))  # type: ignore[arg-type]
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
    if cls is Done and body.get("status", "Done") not in DONE_STATUSES:
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

    def done(self, status: str = "Done") -> None:
        self.send(Done(status))
