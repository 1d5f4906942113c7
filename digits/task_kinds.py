"""Which worker module runs each kind of task. Wings register their kinds; job.json names only the kind."""

from __future__ import annotations

_KINDS: dict[str, str] = {}


def register_task_kind(kind: str, module: str) -> None:
    """Let tasks of `kind` run as `python -m module JOB_DIR --task NAME`."""
    _KINDS[kind] = module


def worker_module(kind: str) -> str:
    try:
        return _KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise KeyError(f"no worker for task kind {kind!r} (known: {known})") from None
