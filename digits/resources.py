"""Resource pools the scheduler hands out: CPU task slots and GPUs (found through NVML, no torch)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class GpuInfo:
    index: int
    name: str
    memory_total: int


def discover_gpus() -> list[GpuInfo]:
    """GPUs NVML can see; an empty list on a machine without an NVIDIA driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        log.info("no NVIDIA GPUs (%s); training runs on the CPU", e)
        return []
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append(GpuInfo(i, name.decode() if isinstance(name, bytes) else name, int(memory)))
        return gpus
    finally:
        pynvml.nvmlShutdown()


class ResourcePools:
    """Named pools: 'cpu' holds interchangeable slots, 'gpu' holds GPU indices handed out lowest first."""

    def __init__(self, cpu_slots: int, gpus: list[int]):
        self.cpu_total = cpu_slots
        self.cpu_free = cpu_slots
        self.gpus = sorted(gpus)
        self.gpus_free = sorted(gpus)

    def check(self, want: dict[str, int]) -> str | None:
        """Why a request can never be met on this server, or None when it can."""
        unknown = sorted(set(want) - {"cpu", "gpu", "gpu_ids"})
        if unknown:
            return f"unknown resource {', '.join(unknown)}"
        missing = [g for g in want.get("gpu_ids", []) if g not in self.gpus]
        if missing:
            return f"needs GPU {missing[0]}, the server has {self.gpus or 'none'}"
        if want.get("cpu", 0) > self.cpu_total:
            return f"needs {want['cpu']} CPU slots, the server has {self.cpu_total}"
        if want.get("gpu", 0) > len(self.gpus):
            return f"needs {want['gpu']} GPUs, the server has {len(self.gpus)}"
        return None

    def reserve(self, want: dict[str, int]) -> dict[str, list[int] | int] | None:
        """Take what a task needs, or nothing (None) when it is not free now."""
        cpu, gpu, ids = want.get("cpu", 0), want.get("gpu", 0), list(want.get("gpu_ids", []))
        if cpu > self.cpu_free or gpu > len(self.gpus_free) or any(g not in self.gpus_free for g in ids):
            return None
        self.cpu_free -= cpu
        taken = ids or self.gpus_free[:gpu]
        self.gpus_free = [g for g in self.gpus_free if g not in taken]
        return {"cpu": cpu, "gpu": taken}

    def release(self, grant: dict) -> None:
        self.cpu_free = min(self.cpu_total, self.cpu_free + int(grant.get("cpu", 0)))
        self.gpus_free = sorted(set(self.gpus_free) | set(grant.get("gpu", [])))

    def pool_of(self, want: dict) -> str:
        return "gpu" if want.get("gpu") or want.get("gpu_ids") else "cpu"
