"""A test-only worker that speaks the task protocol and misbehaves on request (see the args it reads)."""

import os
import signal
import sys
import time

from digits.worker_runtime import TaskFailed, WorkerContext, run_worker


def main(ctx: WorkerContext) -> str | None:
    a = ctx.args
    if a.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"fake worker {ctx.task_name} starting in {os.getcwd()}", file=sys.stderr)
    gate = a.get("gate")
    while gate and not os.path.exists(gate):  # hold until the test opens the gate
        if ctx.abort_requested:
            return "Aborted"
        time.sleep(0.02)
    if a.get("garbage"):
        ctx.reporter.stream.write("this is not protocol {\n")
        ctx.reporter.stream.write('{"type": "metric", "value": "eval(1)"}\n')
        ctx.reporter.stream.flush()
    steps = int(a.get("steps", 3))
    for i in range(steps):
        if ctx.abort_requested:
            ctx.reporter.snapshot(i, f"snapshot_epoch_{i}.pt")
            return "Aborted"
        time.sleep(float(a.get("delay", 0.01)))
        ctx.reporter.progress((i + 1) / steps, epoch=i + 1)
        ctx.reporter.metric("train", "loss", 1.0 / (i + 1), epoch=i + 1, iteration=i)
        ctx.reporter.lr(0.01, epoch=i + 1)
        if a.get("crash_at") == i:
            for n in range(30):
                print(f"stderr line {n}", file=sys.stderr, flush=True)
            crash = a.get("crash", "exit")
            if crash == "exit":
                os._exit(3)
            if crash == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if crash == "failed":
                raise TaskFailed("the fake task failed on purpose")
            raise RuntimeError("boom")
    ctx.reporter.snapshot(steps, f"snapshot_epoch_{steps}.pt")
    return None


if __name__ == "__main__":
    run_worker(main)
