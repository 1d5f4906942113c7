"""The warm worker pool, with a torch-free fake worker: reuse, LRU, crashes, timeouts, progress, GPUs."""

import os
import signal
import subprocess
import sys
import threading

import pytest

from digits.events import EventBus
from digits.inference.errors import InferenceError, ServiceUnavailable
from digits.inference.pool import PROGRESS_EVENT, InferencePool
from digits.inference.views import API_ERRORS
from digits.views.errors import HTTP_STATUS
from tests.support.waiting import LONG_S, SHORT_S, EventRecorder, wait_until

FAKE = "tests.inference.fake_worker"


def model(key):
    return {"key": key}


@pytest.fixture
def make_pool(tmp_path):
    pools = []

    def make(size=2, **kw):
        pool = InferencePool(size, kw.pop("gpus", []), module=FAKE, log_path=str(tmp_path / "inference.log"), **kw)
        pool.start()
        assert pool.wait_ready(SHORT_S)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def test_a_model_stays_on_its_worker_and_requests_start_no_process(make_pool):
    pool = make_pool(2)
    started = pool.pids()
    assert len(started) == 2
    first = pool.request("echo", model("a"))
    again = pool.request("echo", model("a"))
    other = pool.request("echo", model("b"))
    assert first["pid"] == again["pid"] != other["pid"]
    assert pool.pids() == started
    assert pool.loaded() == {"a": first["pid"], "b": other["pid"]}


def test_least_recently_used_model_gives_way(make_pool):
    pool = make_pool(2)
    a = pool.request("echo", model("a"))["pid"]
    b = pool.request("echo", model("b"))["pid"]
    pool.request("echo", model("a"))  # b is now the least recently used
    c = pool.request("echo", model("c"))["pid"]
    assert c == b
    assert pool.loaded() == {"a": a, "c": c}


def test_a_crash_answers_503_and_the_worker_is_replaced_in_the_background(make_pool):
    pool = make_pool(1)
    (old,) = pool.pids()
    with pytest.raises(ServiceUnavailable, match="stopped; try again") as info:
        pool.request("crash", model("a"))
    assert info.value.kind == "unavailable"  # answered 503 (digits.views.errors.HTTP_STATUS)
    reply = pool.request("echo", model("a"))  # waits for the replacement, which the crash started
    assert reply["pid"] != old and pool.pids() == [reply["pid"]]


def test_an_idle_worker_killed_is_replaced_before_anyone_asks(make_pool):
    pool = make_pool(1)
    (old,) = pool.pids()
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: old not in pool.pids(), what="the pool noticing on its own")
    assert pool.request("echo", model("a"))["pid"] != old


def test_silence_past_the_limit_kills_the_worker_and_answers_503(make_pool):
    pool = make_pool(1, reply_timeout_s=0.5)
    (old,) = pool.pids()
    with pytest.raises(ServiceUnavailable, match="did not answer within 0.5 s"):
        pool.request("sleep", model("a"), seconds=30)
    assert pool.request("echo", model("a"))["pid"] != old


def test_a_busy_worker_makes_the_next_request_wait_then_give_up(make_pool):
    pool = make_pool(1, busy_timeout_s=0.3)
    slow = threading.Thread(target=pool.request, args=("sleep", model("a")), kwargs={"seconds": 5})
    slow.start()
    try:
        wait_until(lambda: pool.slots[0].lock.locked(), what="the slow request taking the worker")
        with pytest.raises(ServiceUnavailable, match="busy"):
            pool.request("echo", model("a"))
    finally:
        slow.join()
    assert pool.request("echo", model("a"))["key"] == "a"


def test_progress_lines_are_published_for_the_job(make_pool):
    bus = EventBus()
    recorder = EventRecorder()
    bus.subscribe(recorder)
    pool = make_pool(1)
    pool.bus = bus
    pool.request("progress", model("a"), steps=3, job_id="20260101-000000-abcd")
    events = [p for e, p in recorder.events if e == PROGRESS_EVENT]
    assert events == [{"job_id": "20260101-000000-abcd", "done": n, "total": 3} for n in (1, 2, 3)]


@pytest.mark.parametrize("kind, status", [("bad_input", 400), ("not_found", 404), ("failed", 500)])
def test_worker_errors_are_raised_with_their_kind_and_the_worker_lives_on(make_pool, kind, status):
    pool = make_pool(1)
    (pid,) = pool.pids()
    with pytest.raises(InferenceError, match="it failed as asked") as info:
        pool.request("fail", model("a"), kind=kind)
    assert info.value.kind == kind and HTTP_STATUS[API_ERRORS[kind].kind] == status  # what the views answer
    assert pool.pids() == [pid]


def test_workers_take_the_servers_gpus_round_robin_or_none(make_pool):
    pool = make_pool(3, gpus=[0, 1])
    seen = {pool.request("echo", model(k))["env"] for k in "abc"}
    assert seen == {"0", "1"}
    cpu = make_pool(1)
    assert cpu.request("echo", model("a"))["env"] == ""


def test_a_closed_pool_refuses_politely(make_pool):
    pool = make_pool(1)
    pool.close()
    with pytest.raises(ServiceUnavailable):
        pool.request("echo", model("a"))
    assert pool.pids() == []


def test_workers_that_cannot_start_make_requests_fail_fast(tmp_path):
    pool = InferencePool(1, module="tests.inference.no_such_module", start_timeout_s=LONG_S)
    pool.start()
    try:
        # "cannot start", not "still starting after 600 s": the failed starts are seen, the deadline never met.
        with pytest.raises(ServiceUnavailable, match="cannot start"):
            pool.request("echo", model("a"))
    finally:
        pool.close()


def test_the_web_side_never_imports_torch():
    code = (
        "import sys, digits.webapp, digits.inference, digits.inference.views, digits.inference.pool;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_closing_a_starting_pool_does_not_wait_for_torch(tmp_path):
    pool = InferencePool(2, log_path=str(tmp_path / "inference.log"))  # real workers, still importing torch
    pool.start()
    workers = [slot.worker for slot in pool.slots]
    starting = [w for w in workers if not w.ready.is_set()]
    pool.close()
    assert pool.pids() == [] and not any(w.alive for w in workers)
    # Killed where they stood: a worker let finish its import of torch would have exited on its own, with 0.
    assert starting and all(w.proc.returncode == -signal.SIGKILL for w in starting)
