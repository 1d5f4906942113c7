"""Which worker module runs each kind of task, and what it may read. Wings register their kinds; job.json
names only the kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# access(workspace, job, task) -> keyword arguments of digits.sandbox.Confiner.policy beyond the task's own
# job folder: read_jobs, read_files, data. It decides from the server's own records, never from what a
# worker could have written (job.json is in the worker's folder).
Access = Callable[[Any, Any, Any], dict[str, Any]]


@dataclass(frozen=True)
class TaskKind:
    module: str
    access: Access | None = None
    outside: bool = False  # its worker is not the server's child (a script reporting over REST): a restart spares it


_KINDS: dict[str, TaskKind] = {}


def register_task_kind(kind: str, module: str, access: Access | None = None) -> None:
    """Let tasks of `kind` run as `python -m module JOB_DIR --task NAME`, reading what `access` grants."""
    _KINDS[kind] = TaskKind(module, access)


def register_outside_task_kind(kind: str) -> None:
    """Tasks of `kind` are worked by a process the server did not start: never scheduled, and still running
    after a server restart."""
    _KINDS[kind] = TaskKind("", outside=True)


def runs_outside(kind: str) -> bool:
    return kind in _KINDS and _KINDS[kind].outside


def task_kind(kind: str) -> TaskKind:
    try:
        return _KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise KeyError(f"no worker for task kind {kind!r} (known: {known})") from None


def worker_module(kind: str) -> str:
    return task_kind(kind).module
