"""One task's worker process: spawned, read line by line, stopped with SIGTERM and then SIGKILL."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from digits import protocol

LOG_TAIL_LINES = 20


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (killed by the system, often for running out of memory)" if name == "SIGKILL" else ""
        return f"worker was killed by {name}{hint}"
    return f"worker exited with code {returncode}"


class TaskProcess:
    """Runs `python -m module JOB_DIR --task NAME`; protocol lines go to on_message, everything else to the log."""

    def __init__(
        self,
        module: str,
        job_dir: str,
        task_name: str,
        log_path: str,
        env: dict[str, str],
        on_message: Callable[[protocol.Message], None],
        base_env: dict[str, str] | None = None,
        confined: bool = False,
    ):
        # A confined worker starts through digits.confined, which applies the policy in its environment first.
        launcher = ["-m", "digits.confined", module] if confined else ["-m", module]
        self.argv = [sys.executable, "-u", *launcher, job_dir, "--task", task_name]
        self.job_dir = job_dir
        self.log_path = log_path
        self.env = env
        # The environment the worker starts from (the server's own when None), before `env` is added.
        self.base_env = base_env
        self.on_message = on_message
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.proc: subprocess.Popen | None = None
        self._log_lock = threading.Lock()
        self._kill_timer: threading.Timer | None = None
        self.terminated_at: float | None = None

    def _log(self, line: str, keep: bool = True) -> None:
        """Append to the task's log; `keep` lines also go to the tail shown with an error."""
        line = line.rstrip("\n")
        with self._log_lock:
            self._log_fh.write(line + "\n")
            self._log_fh.flush()
            if keep and line.strip():
                self.tail.append(line)

    def _pump_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for raw in self.proc.stderr:
            self._log(raw.decode("utf-8", errors="replace"))

    def run(self) -> int:
        """Start the worker and block until it exits; returns its exit code."""
        env = dict(os.environ if self.base_env is None else self.base_env, PYTHONUNBUFFERED="1", **self.env)
        with open(self.log_path, "a", encoding="utf-8") as self._log_fh:
            self._log(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(self.argv[-4:])}", keep=False)
            self.proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                cwd=self.job_dir,
                env=env,
                start_new_session=True,
            )
            if self.terminated_at is not None:  # aborted while it was starting
                self._signal(signal.SIGTERM)
            err_thread = threading.Thread(target=self._pump_stderr, daemon=True)
            err_thread.start()
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", errors="replace")
                msg = protocol.decode(line)
                if msg is None:
                    self._log(line)
                    continue
                if isinstance(msg, protocol.Log):
                    self._log(f"[{msg.level}] {msg.message}")
                elif isinstance(msg, protocol.Error):
                    self._log(f"[error] {msg.message}")
                self.on_message(msg)
            rc = self.proc.wait()
            err_thread.join(5)
            for pipe in (self.proc.stdout, self.proc.stderr):
                pipe.close()
            if self._kill_timer:
                self._kill_timer.cancel()
            self._log(
                f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} end: {describe_exit(rc) if rc else 'exit 0'}", keep=False
            )
        return rc

    def _signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self, grace_s: float) -> None:
        """SIGTERM now (the worker finishes its step and snapshots); SIGKILL if it is still alive after grace_s."""
        if self.terminated_at is not None:
            return
        self.terminated_at = time.time()
        self._signal(signal.SIGTERM)
        self._kill_timer = threading.Timer(grace_s, self._signal, args=(signal.SIGKILL,))
        self._kill_timer.daemon = True
        self._kill_timer.start()
