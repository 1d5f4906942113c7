"""What every worker process shares: its arguments, the protocol channel, abort by SIGTERM, error reporting.

A worker is started as `python -m <module> JOB_DIR --task NAME`. Anything a library prints to stdout
is sent to stderr (the task's log) so that stdout carries protocol lines only.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from digits.protocol import Reporter
from digits.status import Status

PR_SET_PDEATHSIG = 1


class TaskFailed(Exception):
    """An expected failure with a message a person can act on; reported without a traceback."""


@dataclass
class WorkerContext:
    job_dir: str
    task_name: str
    job: dict[str, Any]
    task: dict[str, Any]
    reporter: Reporter
    abort_event: threading.Event = field(default_factory=threading.Event)

    @property
    def args(self) -> dict[str, Any]:
        return self.task.get("args") or {}

    @property
    def abort_requested(self) -> bool:
        return self.abort_event.is_set()

    def path(self, *parts: str) -> str:
        return os.path.join(self.job_dir, *parts)


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the server goes away, so an orphaned worker stops (with a snapshot)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def start_worker(argv: list[str] | None = None) -> WorkerContext:
    parser = argparse.ArgumentParser()
    parser.add_argument("job_dir")
    parser.add_argument("--task", required=True)
    ns = parser.parse_args(argv)
    job_dir = os.path.abspath(ns.job_dir)

    protocol_stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    parent = os.getppid()
    _die_with_parent()
    reporter = Reporter(protocol_stream, on_closed=lambda: _output_to_null(protocol_stream))
    with open(os.path.join(job_dir, "job.json")) as fh:
        job = json.load(fh)
    task = next((t for t in job.get("tasks", []) if t.get("name") == ns.task), None)
    if task is None:
        raise SystemExit(f"job {job.get('id')} has no task {ns.task!r}")
    ctx = WorkerContext(job_dir, ns.task, job, task, reporter)

    def on_term(*_) -> None:
        if os.getppid() != parent:  # the server died (PDEATHSIG): nobody reads the pipes any more
            reporter.close()
        ctx.abort_event.set()

    signal.signal(signal.SIGTERM, on_term)
    return ctx


def _output_to_null(protocol_stream) -> None:
    """Send stdout, stderr and the protocol channel to /dev/null: their reader is gone, and a write to a
    broken pipe would raise in the middle of the abort snapshot."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2, protocol_stream.fileno()):
            os.dup2(null, fd)
    except (OSError, ValueError):
        pass
    finally:
        os.close(null)


def run_worker(main: Callable[[WorkerContext], str | None], argv: list[str] | None = None) -> None:
    """Run a worker's main; report `done` (its returned status) or `error`, and exit accordingly."""
    ctx = start_worker(argv)
    try:
        status = main(ctx) or (Status.ABORTED if ctx.abort_requested else Status.DONE)
    except TaskFailed as e:
        ctx.reporter.error(str(e))
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - everything a worker raises becomes a protocol error
        ctx.reporter.error(f"{type(e).__name__}: {e}", traceback.format_exc())
        traceback.print_exc()
        sys.exit(1)
    ctx.reporter.done(status)
    if ctx.reporter.closed:
        # The server died and this was the abort it asked for with its last breath (PDEATHSIG): the snapshot
        # is on disk; nobody waits for a tidy interpreter shutdown, and a new server may want the GPU.
        os._exit(0)
