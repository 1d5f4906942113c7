"""Live hardware use of running tasks: CPU and memory of each worker's process tree, and its reserved GPUs.

A background thread (a greenlet under gevent), owned by the Workspace, samples every couple of seconds,
publishes a `hardware` event on the bus and appends it to jobs/<id>/hardware.jsonl; digits.views.hardware
serves that history to the model page. Each sample is a handful of /proc reads and NVML calls, so the event
loop is never held for long.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from digits.events import EventBus, HardwareSampled
from digits.job import Job, Task
from digits.store import HARDWARE_FILE, JobStore

log = logging.getLogger(__name__)

HARDWARE = HardwareSampled.name  # live.py forwards every event to the job's room
SAMPLE_INTERVAL_S = 2.0
# The history route thins longer files to about this many samples; the page decimates again per pixel.
MAX_HISTORY_SAMPLES = 4000
# A sample slower than this is logged: it would show as a stall in every open page.
SLOW_SAMPLE_S = 0.1

Running = Callable[[], list[tuple[Job, Task, int | None]]]


class ProcessTree:
    """CPU and resident memory of a worker and all its children, summed.

    psutil's cpu_percent compares with the previous call on the same Process object, so the objects are
    kept between samples; a process seen for the first time counts 0% until its next sample.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self._procs: dict[int, psutil.Process] = {}

    def sample(self) -> tuple[float, int] | None:
        """(cpu_percent, rss_bytes) over the tree, or None once the worker has gone."""
        try:
            root = self._procs.get(self.pid) or psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return None
        cpu, rss, alive = 0.0, 0, {}
        for proc in procs:
            known = self._procs.get(proc.pid)
            if known is None or known != proc:  # new, or its pid was reused by another process
                known = proc
            try:
                with known.oneshot():
                    cpu += known.cpu_percent(None)
                    rss += known.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            alive[known.pid] = known
        self._procs = alive
        return round(cpu, 1), rss


class GpuSampler:
    """Utilization, memory and temperature of GPUs through NVML; no driver means no GPU samples, quietly."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._tried = False

    def _init(self) -> Any:
        if not self._tried:
            self._tried = True
            try:
                import pynvml

                pynvml.nvmlInit()
                self._nvml = pynvml
            except Exception as e:  # noqa: BLE001 - ImportError, NVMLError, a missing libnvidia-ml: all mean "none"
                log.info("hardware monitor: no GPU readings (%s)", e)
        return self._nvml

    def sample(self, indices: list[int]) -> list[dict[str, Any]]:
        if not indices:
            return []
        nvml = self._init()
        if nvml is None:
            return []
        out = []
        for index in indices:
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except nvml.NVMLError:
                continue
            memory = self._read(lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h))
            utilization = self._read(lambda h=handle: nvml.nvmlDeviceGetUtilizationRates(h).gpu)
            temperature = self._read(lambda h=handle: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))
            out.append(
                {
                    "index": index,
                    "utilization": utilization,
                    "memory_used": int(memory.used) if memory is not None else None,
                    "memory_total": int(memory.total) if memory is not None else None,
                    "temperature": temperature,
                }
            )
        return out

    def _read(self, fn: Callable[[], Any]) -> Any:
        """One reading, or None where this GPU does not support it (NVML says so per call)."""
        try:
            return fn()
        except self._nvml.NVMLError:
            return None

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
            self._nvml = None


class HardwareMonitor:
    """Samples every running task on a background thread until stop()."""

    def __init__(
        self,
        store: JobStore,
        bus: EventBus,
        running: Running,
        interval_s: float = SAMPLE_INTERVAL_S,
        gpus: GpuSampler | None = None,
    ):
        self.store = store
        self.bus = bus
        self.running = running
        self.interval_s = interval_s
        self.gpus = gpus or GpuSampler()
        self._trees: dict[tuple[str, str], ProcessTree] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="hardware-monitor")
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (it is waiting between samples, so this is quick) and let go of NVML."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.gpus.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            started = time.perf_counter()
            try:
                self.sample_once()
            except Exception:  # noqa: BLE001 - a bad sample must not end monitoring for the server's lifetime
                log.exception("hardware monitor: sample failed")
            took = time.perf_counter() - started
            if took > SLOW_SAMPLE_S:
                log.warning("hardware monitor: a sample took %.0f ms", took * 1000)

    def sample_once(self) -> list[dict[str, Any]]:
        """Sample every running task now: publish each sample and append it to its job's history."""
        samples, seen = [], set()
        for job, task, pid in self.running():
            if pid is None:  # still starting
                continue
            key = (job.id, task.name)
            seen.add(key)
            tree = self._trees.get(key)
            if tree is None or tree.pid != pid:
                # The first cpu_percent reading of a process is meaningless: prime it, publish from the next.
                self._trees[key] = ProcessTree(pid)
                self._trees[key].sample()
                continue
            usage = tree.sample()
            if usage is None:
                continue
            gpus = self.gpus.sample(list(task.reserved.get("gpus") or []))
            event = HardwareSampled(job.id, task.name, round(time.time(), 3), usage[0], usage[1], gpus)
            sample = event.payload()
            self._append(job.id, sample)
            self.bus.publish(event)
            samples.append(sample)
        for key in set(self._trees) - seen:
            del self._trees[key]
        return samples

    def _append(self, job_id: str, sample: dict[str, Any]) -> None:
        if self.store.get(job_id) is None:  # deleted: its folder is being removed, do not write into it
            return
        try:
            with open(os.path.join(self.store.job_dir(job_id), HARDWARE_FILE), "a") as fh:
                fh.write(json.dumps(sample) + "\n")
        except OSError as e:  # the job was deleted between listing and writing
            log.debug("hardware monitor: cannot write history of %s: %s", job_id, e)


def read_history(job_dir: str, limit: int = MAX_HISTORY_SAMPLES, since: float | None = None) -> list[dict]:
    """hardware.jsonl in order, thinned by a stride to at most `limit` samples (the latest always kept)."""
    samples = []
    try:
        with open(os.path.join(job_dir, HARDWARE_FILE)) as fh:
            for line in fh:
                try:
                    sample = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if since is None or sample.get("time", 0) > since:
                    samples.append(sample)
    except OSError:
        return []
    if len(samples) > limit > 0:
        stride = -(-len(samples) // limit)
        samples = samples[::-stride][::-1]  # counted from the end, so the newest sample stays
    return samples
