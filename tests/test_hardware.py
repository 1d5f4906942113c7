"""The hardware monitor: real worker process trees sampled, events published, history written and served."""

import json
import os
import subprocess
import sys
import textwrap
import time
import types

import pytest

from digits import hardware
from digits.hardware import GpuSampler, HardwareMonitor, ProcessTree, read_history
from digits.views import hardware as hardware_views
from tests.support.fakejobs import fake_job
from tests.support.waiting import SHORT_S, wait_until

# A parent that starts a child which holds 64 MiB and spins one core; the parent itself idles.
BUSY_TREE = textwrap.dedent(
    """
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c",
        "import sys\\nblock = bytearray(64 << 20)\\nfor i in range(0, len(block), 4096): block[i] = 1\\n"
        "print('ready', flush=True)\\nwhile True: pass"], stdout=sys.stdout)
    child.wait()
    """
)


@pytest.fixture
def busy_tree():
    proc = subprocess.Popen([sys.executable, "-c", BUSY_TREE], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        yield proc
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(SHORT_S)
        proc.stdout.close()


def test_a_process_tree_sums_cpu_and_memory_over_its_children(busy_tree):
    tree = ProcessTree(busy_tree.pid)
    assert tree.sample()[0] == 0.0  # psutil's first reading only primes the counters

    def with_cpu():
        sample = tree.sample()
        return sample if sample[0] > 0 else None

    # The parent only waits: CPU time seen over the tree is the child's, however little of a core a busy
    # machine gives it (how much is a figure for a benchmark, not a test).
    cpu, rss = wait_until(with_cpu, what="the spinning child's CPU time counted")
    assert rss > 64 << 20, "the child's memory is counted"
    os.killpg(busy_tree.pid, 9)
    busy_tree.wait(SHORT_S)
    assert tree.sample() is None


@pytest.fixture
def monitor(app):
    monitor = hardware_views.init_app(app, interval_s=0.1)
    yield monitor
    monitor.stop()


def test_the_monitor_samples_a_running_worker_and_records(app, client, workspace, recorder, monitor, tmp_path):
    assert hardware_views.init_app(app) is monitor  # a second call (devserver hook + factory) changes nothing
    gate = tmp_path / "gate"
    job = fake_job(category="model", tasks=[{"gate": str(gate), "steps": 1}])
    added = time.time()
    workspace.add_job(job)

    def sample_of_job(event, payload):
        return event == hardware.HARDWARE and payload["job_id"] == job.id

    _, first = recorder.wait_for(sample_of_job)
    ((_, task, pid),) = [r for r in workspace.scheduler.running() if r[0].id == job.id]
    assert first["task"] == task.name == "step0"
    assert first["memory_bytes"] > 5 << 20  # a Python interpreter
    assert first["cpu_percent"] >= 0 and first["gpus"] == []  # no GPUs reserved on this server
    assert added - 0.001 <= first["time"] <= time.time() + 0.001  # the sample's time is kept to the millisecond

    lines = read_history(workspace.store.job_dir(job.id))
    assert lines and lines[0] == first
    served = client.get(f"/models/{job.id}/hardware/json").get_json()
    assert served["job_id"] == job.id and served["gpus"] == []
    assert served["samples"][0] == first
    later = client.get(f"/models/{job.id}/hardware/json?since={first['time']}").get_json()["samples"]
    assert all(s["time"] > first["time"] for s in later)

    gate.touch()
    assert recorder.wait_status(job.id) == "Done"
    count = len(read_history(workspace.store.job_dir(job.id)))
    assert monitor.sample_once() == []  # nothing runs: nothing sampled, nothing written
    assert len(read_history(workspace.store.job_dir(job.id))) == count
    assert monitor.alive


def test_closing_the_workspace_stops_the_monitor(app, workspace, monitor):
    assert monitor.alive
    workspace.close()
    assert not monitor.alive


def test_history_route_is_for_models_only(client, workspace):
    dataset = fake_job(category="dataset", tasks=[])
    workspace.store.add(dataset)
    hardware_views.init_app(client.application)
    assert client.get(f"/models/{dataset.id}/hardware/json").status_code == 404
    assert client.get("/models/20990101-000000-abcd/hardware/json").status_code == 404


def test_long_histories_are_thinned_keeping_the_latest(tmp_path):
    with open(tmp_path / hardware.HARDWARE_FILE, "w") as fh:
        for i in range(10_001):
            fh.write(json.dumps({"time": float(i), "cpu_percent": 1.0}) + "\n")
        fh.write('{"time": 99999, "cpu_per')  # cut short by a crash
    samples = read_history(str(tmp_path), limit=1000)
    assert 900 <= len(samples) <= 1000
    assert samples[-1]["time"] == 10_000.0
    assert [s["time"] for s in samples] == sorted(s["time"] for s in samples)
    assert read_history(str(tmp_path / "missing")) == []


class FakeNvml(types.ModuleType):
    """Just enough of pynvml: two GPUs, the second reports no temperature (as some boards do)."""

    class NVMLError(Exception):
        pass

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, fail_init=False):
        super().__init__("pynvml")
        self.fail_init = fail_init
        self.calls = []

    def nvmlInit(self):
        self.calls.append("init")
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self):
        self.calls.append("shutdown")

    def nvmlDeviceGetHandleByIndex(self, index):
        if index > 1:
            raise self.NVMLError("Invalid Argument")
        return index

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(used=(handle + 1) << 30, total=80 << 30, free=0)

    def nvmlDeviceGetUtilizationRates(self, handle):
        return types.SimpleNamespace(gpu=50 + handle, memory=10)

    def nvmlDeviceGetTemperature(self, handle, sensor):
        if handle == 1:
            raise self.NVMLError("Not Supported")
        return 64


def test_gpu_readings_through_nvml(monkeypatch):
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sampler = GpuSampler()
    assert sampler.sample([]) == [] and nvml.calls == []  # no reserved GPU: NVML is not even opened
    got = sampler.sample([0, 1, 7])
    assert got == [
        {"index": 0, "utilization": 50, "memory_used": 1 << 30, "memory_total": 80 << 30, "temperature": 64},
        {"index": 1, "utilization": 51, "memory_used": 2 << 30, "memory_total": 80 << 30, "temperature": None},
    ]
    sampler.close()
    assert nvml.calls == ["init", "shutdown"]


def test_no_driver_means_no_gpu_readings_and_no_retries(monkeypatch):
    nvml = FakeNvml(fail_init=True)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sampler = GpuSampler()
    assert sampler.sample([0]) == [] and sampler.sample([0]) == []
    sampler.close()
    assert nvml.calls == ["init"]


def test_reserved_gpus_are_sampled_for_their_task(workspace, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    job = fake_job(category="model", tasks=[{}])
    workspace.store.add(job)
    job.tasks[0].reserved = {"gpus": [1]}
    me = os.getpid()
    monitor = HardwareMonitor(workspace.store, workspace.bus, lambda: [(job, job.tasks[0], me)])
    assert monitor.sample_once() == []  # primes the process counters
    (sample,) = monitor.sample_once()
    assert [g["index"] for g in sample["gpus"]] == [1]
    monitor.stop()
