"""Warm inference workers, seen from the web process (torch-free).

The pool starts its workers ahead (`python -m digits.engine.inference.worker`, one per slot) and keeps them: a slot
holds at most one loaded model, so the slots are an LRU map (model key) -> worker, as large as the setting
`inference_workers`. A request takes its slot's lock (gevent-friendly: threading and subprocess are patched),
writes one request line and waits for the reply. A request never starts a process: a worker that exits is
replaced from a background thread, and the request that was on it answers ServiceUnavailable ("try again").
Every wait is bounded: for a free slot, for a starting worker, and for the next line of a reply (progress
lines keep a long request alive; silence past the limit kills the worker and answers 503).

Confined pools (the server's: `for_workspace`) give every worker one model job for life: its first request
carries the job's policy (digits/sandbox.py), which the worker applies before it loads the network, and it
never serves another job (a member's network code could otherwise see other models' requests). A slot that
must take another job swaps its worker for a started spare, which is replaced in the background.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from digits import protocol
from digits.events import InferenceProgress
from digits.inference.errors import InferenceError, ServiceUnavailable
from digits.inference.process import WorkerProcess
from digits.inference.spec import worker_policy
from digits.sandbox import ConfinementError, Confiner

log = logging.getLogger(__name__)

WORKER_MODULE = "digits.engine.inference.worker"
PROGRESS_EVENT = InferenceProgress.name
LOG_FILE = "inference.log"
# A worker that dies sooner than this after starting counts as a failed start: the next one waits longer.
HEALTHY_AFTER_S = 5.0
FAILED_STARTS = 3  # after this many failed starts in a row, requests stop waiting for the next try
MAX_RESPAWN_DELAY_S = 30.0


def default_threads(size: int) -> int:
    """Torch threads per worker: the machine's cores shared out, so busy workers do not oversubscribe them."""
    return max(1, (os.cpu_count() or 1) // max(1, size))


@dataclass(eq=False)
class Slot:
    """A place for one warm worker and the model it holds; the lock is held for the length of a request."""

    index: int
    env: dict[str, str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    worker: WorkerProcess | None = None
    key: str | None = None
    last_used: float = 0.0
    quick_deaths: int = 0

    @property
    def job(self) -> str | None:
        return self.worker.job if self.worker is not None else None


class InferencePool:
    """N warm inference workers, each holding one (model job, epoch), least recently used first to go."""

    def __init__(
        self,
        size: int = 2,
        gpus: list[int] | tuple[int, ...] = (),
        *,
        log_path: str | None = None,
        bus=None,
        module: str = WORKER_MODULE,
        start_timeout_s: float = 120.0,
        reply_timeout_s: float = 120.0,
        busy_timeout_s: float = 120.0,
        threads: int | None = None,
        confiner: Confiner | None = None,
        policy: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ):
        if size < 1:
            raise ValueError("an inference pool needs at least one worker")
        self.argv = [sys.executable, "-u", "-m", module]
        # Confined: each worker gets a private environment and tmp folder, and policy(model spec) at binding.
        self.confiner = confiner if policy is not None else None
        self.policy = policy
        self._spares: list[WorkerProcess] = []
        self._spare_count = 1 if self.confiner is not None else 0
        self._spare_gpus = itertools.cycle(list(gpus) or [None])
        self._threads = threads or default_threads(size)
        self.log_path = log_path
        self.bus = bus
        self.start_timeout_s = start_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.busy_timeout_s = busy_timeout_s
        threads = threads or default_threads(size)
        self.slots = [Slot(i, self._slot_env(i, list(gpus), threads)) for i in range(size)]
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._log_fh: IO | None = None
        self._closed = False
        self._started = False

    @classmethod
    def for_workspace(cls, workspace, **kwargs) -> InferencePool:
        """A pool sized by the workspace's settings (inference_workers), on its GPUs, logging to the jobs folder."""
        settings = workspace.settings
        return cls(
            max(1, int(getattr(settings, "inference_workers", 2))),
            list(workspace.gpus or []),
            log_path=os.path.join(settings.jobs_path, LOG_FILE),
            bus=workspace.bus,
            confiner=workspace.confiner,
            policy=lambda spec: worker_policy(workspace, spec),
            **kwargs,
        )

    @staticmethod
    def _slot_env(index: int, gpus: list[int], threads: int) -> dict[str, str]:
        # Round-robin over the server's GPUs; with none, hide every GPU so the worker runs on the CPU.
        return {
            "PYTHONUNBUFFERED": "1",
            "CUDA_VISIBLE_DEVICES": str(gpus[index % len(gpus)]) if gpus else "",
            "DIGITS_INFERENCE_THREADS": str(threads),
        }

    # ---- lifetime ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every worker (they import torch in the background; requests wait for the one they need)."""
        if self._started:
            return
        self._started = True
        if self.log_path:
            self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - the workers' stderr, for the pool's life
        for slot in self.slots:
            self._spawn(slot)
        for _ in range(self._spare_count):
            self._spawn_spare()

    def close(self) -> None:
        """Stop every worker; the pool answers no more requests."""
        self._closed = True
        with self._lock:
            workers = [slot.worker for slot in self.slots if slot.worker is not None] + self._spares
            self._spares = []
        for slot in self.slots:
            slot.worker, slot.key = None, None
        for worker in workers:  # all at once, then wait for each
            worker.ask_to_exit()
        for worker in workers:
            worker.stop()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def pids(self) -> list[int]:
        """The process ids of the live workers, by slot."""
        return [s.worker.pid for s in self.slots if s.worker is not None and s.worker.alive]

    def loaded(self) -> dict[str, int]:
        """model key -> pid of the worker holding it."""
        return {s.key: s.worker.pid for s in self.slots if s.key and s.worker is not None and s.worker.alive}

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Whether every worker is ready within timeout (for tests and benchmarks; requests wait per slot)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.start_timeout_s)
        for slot in self.slots:
            worker = slot.worker
            if worker is None or not worker.ready.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def _new_worker(self, slot_env: dict[str, str], on_exit: Callable[[WorkerProcess], None]) -> WorkerProcess:
        if self.confiner is None:
            return WorkerProcess(self.argv, dict(os.environ, **slot_env), self._log_fh, on_exit)
        # One BLAS thread until the worker is confined: a process is confined while it has a single thread.
        tmp = self.confiner.private_tmp("digits-inference-")
        env = self.confiner.environment({**slot_env, "OPENBLAS_NUM_THREADS": "1"}, tmp)
        try:
            return WorkerProcess(self.argv, env, self._log_fh, on_exit, tmp=tmp)
        except BaseException:
            Confiner.remove_tmp(tmp)
            raise

    def _spawn_spare(self) -> None:
        if self._closed:
            return
        gpu = next(self._spare_gpus)
        env = self._slot_env(0, [gpu] if gpu is not None else [], self._threads)
        try:
            worker = self._new_worker(env, self._spare_exited)
        except OSError as e:
            log.error("cannot start a spare inference worker: %s", e)
            return
        with self._lock:
            self._spares.append(worker)

    def _spare_exited(self, worker: WorkerProcess) -> None:
        """A spare died before it was used (a slot's worker it became ends through _exited instead)."""
        with self._lock:
            if worker not in self._spares:
                return
            self._spares.remove(worker)
        if not self._closed:
            timer = threading.Timer(MAX_RESPAWN_DELAY_S / 10, self._spawn_spare)
            timer.daemon = True
            timer.start()

    def _take_spare(self, deadline: float) -> WorkerProcess:
        """A started spare (waiting for one to get ready); a new spare starts in the background."""
        while True:
            with self._lock:
                ready = [w for w in self._spares if w.ready.is_set() and w.alive]
                if ready:
                    self._spares.remove(ready[0])
                    break
                starting = bool(self._spares)
            if not starting:
                self._spawn_spare()
            if self._closed:
                raise ServiceUnavailable("the inference workers are stopping")
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(f"no inference worker was free within {self.start_timeout_s:g} s; try again")
            time.sleep(0.05)
        threading.Thread(target=self._spawn_spare, daemon=True).start()
        return ready[0]

    def _swap(self, slot: Slot, old: WorkerProcess) -> WorkerProcess:
        """Give the slot a spare in place of a worker that serves another job; the old one exits."""
        worker = self._take_spare(time.monotonic() + self.start_timeout_s)
        slot.worker, slot.key = worker, None
        worker._on_exit = lambda w, s=slot: self._exited(s, w)
        old.ask_to_exit()
        log.info("inference worker %d replaces %d (which serves job %s)", worker.pid, old.pid, old.job)
        return worker

    def _spawn(self, slot: Slot) -> None:
        if self._closed:
            return
        try:
            slot.worker = self._new_worker(slot.env, lambda w, s=slot: self._exited(s, w))
        except OSError as e:
            log.error("cannot start inference worker %d: %s", slot.index, e)
            slot.quick_deaths += 1
            self._respawn_later(slot)
            return
        log.info("inference worker %d started (pid %d)", slot.index, slot.worker.pid)

    def _exited(self, slot: Slot, worker: WorkerProcess) -> None:
        """A worker ended (crash, kill, OOM): forget its model and replace it in the background."""
        if self._closed or slot.worker is not worker:
            return
        slot.key = None
        quick = time.monotonic() - worker.started < HEALTHY_AFTER_S and not worker.ready.is_set()
        slot.quick_deaths = slot.quick_deaths + 1 if quick else 0
        self._respawn_later(slot)

    def _respawn_later(self, slot: Slot) -> None:
        # Back off when workers die at start (a broken install), so the server does not spin.
        delay = min(MAX_RESPAWN_DELAY_S, 0.5 * 2 ** (slot.quick_deaths - 1)) if slot.quick_deaths else 0.0
        timer = threading.Timer(delay, self._spawn, args=(slot,))
        timer.daemon = True
        timer.start()

    # ---- requests ----------------------------------------------------------------------------------------
    def _choose(self, key: str | None, job: str | None = None) -> Slot:
        """The slot holding `key`; else an empty one; else the least recently used (idle ones first)."""
        with self._lock:
            if self._closed or not self._started:
                raise ServiceUnavailable("the inference workers are not running")
            if key is not None:
                for slot in self.slots:
                    if slot.key == key:
                        slot.last_used = time.monotonic()
                        return slot
                # Another epoch of a model whose job a confined worker already serves: that worker.
                for slot in self.slots:
                    if job is not None and slot.job == job:
                        slot.key = key
                        slot.last_used = time.monotonic()
                        return slot
            empty = [s for s in self.slots if s.key is None]
            idle = [s for s in self.slots if not s.lock.locked()]
            if key is None:
                candidates = idle or self.slots
            else:
                candidates = [s for s in empty if not s.lock.locked()] or empty or idle or self.slots
            slot = min(candidates, key=lambda s: (s.worker is None or not s.worker.ready.is_set(), s.last_used))
            if key is not None:
                slot.key = key  # reserved now, so the next request for this model queues here
            slot.last_used = time.monotonic()
            return slot

    def _ready_worker(self, slot: Slot) -> WorkerProcess:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            worker = slot.worker
            if worker is not None and worker.ready.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
                if worker.alive:
                    return worker
            if slot.quick_deaths >= FAILED_STARTS and (worker is None or not worker.alive):
                raise ServiceUnavailable(
                    f"the inference workers cannot start (see {LOG_FILE} in the jobs folder); try again later"
                )
            if worker is None or worker.ready.is_set():
                time.sleep(0.02)  # a dead worker whose replacement is on its way
            if self._closed:
                raise ServiceUnavailable("the inference workers are stopping")
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(
                    f"the inference worker is still starting after {self.start_timeout_s:g} s; try again"
                )

    def request(
        self, op: str, model: dict[str, Any] | None = None, *, job_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Send one request to the worker for `model` (a spec from digits.inference.spec) and return its result.

        Raises InferenceError: the worker's own errors (bad_input, not_found, failed) and ServiceUnavailable.
        While a long request runs, its progress is published on the bus as `inference_progress`
        {job_id, done, total}.
        """
        key = model["key"] if model else None
        job = model.get("job_id") if model else None
        slot = self._choose(key, job)
        if not slot.lock.acquire(timeout=self.busy_timeout_s):
            raise ServiceUnavailable(f"the inference workers stayed busy for {self.busy_timeout_s:g} s; try again")
        try:
            worker = self._ready_worker(slot)
            if self.policy is not None and job is not None:
                if worker.job is not None and worker.job != job:
                    worker = self._swap(slot, worker)
                    worker = self._ready_worker(slot)
                if worker.job is None:
                    try:
                        model = {**model, "sandbox": self.policy(model)}
                    except ConfinementError as e:
                        raise InferenceError("failed", f"the model cannot be served: {e}") from None
                    worker.job = job
            slot.key = key if key is not None else slot.key
            slot.last_used = time.monotonic()
            try:
                return self._call(worker, op, {"model": model, **fields}, job_id)
            except ServiceUnavailable:
                if key is not None and slot.key == key:
                    slot.key = None
                raise
        finally:
            slot.last_used = time.monotonic()
            slot.lock.release()

    def _call(self, worker: WorkerProcess, op: str, fields: dict[str, Any], job_id: str | None) -> dict[str, Any]:
        request_id = next(self._ids)
        while not worker.messages.empty():  # leftovers of a request that gave up waiting
            worker.messages.get_nowait()
        try:
            worker.send(request_id, op, fields)
        except (OSError, ValueError):
            raise ServiceUnavailable("the model's worker stopped; try again") from None
        deadline = time.monotonic() + self.reply_timeout_s
        while True:
            try:
                reply = worker.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                log.error("inference worker %d: no answer in %g s; killing it", worker.pid, self.reply_timeout_s)
                worker.kill()
                raise ServiceUnavailable(
                    f"the model's worker did not answer within {self.reply_timeout_s:g} s; try again"
                ) from None
            if reply is None:
                raise ServiceUnavailable("the model's worker stopped; try again")
            if reply.id != request_id:
                continue
            if isinstance(reply, protocol.RequestProgress):
                deadline = time.monotonic() + self.reply_timeout_s
                if self.bus is not None and job_id:
                    self.bus.publish(InferenceProgress(job_id, reply.done, reply.total))
                continue
            if reply.ok:
                return reply.result or {}
            error = reply.error or {}
            raise InferenceError(str(error.get("type", "failed")), str(error.get("message", "the model failed")))
