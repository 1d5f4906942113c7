"""A test-only worker that tries what a hostile member's code would try, and writes what it could do to
probe.json in its own folder (the one place it may write)."""

import json
import os
import socket
import sys

from digits.worker_runtime import WorkerContext, run_worker


def attempt(action) -> str:
    try:
        result = action()
    except OSError as e:
        return f"denied: {e.strerror or e}"
    return f"ALLOWED: {str(result)[:80]}"


def read(path: str):
    with open(path, "rb") as fh:
        return fh.read(64)


def main(ctx: WorkerContext) -> None:
    a = ctx.args
    jobs = os.path.dirname(ctx.job_dir)
    with open("/proc/self/status") as fh:
        status = dict(line.split(":", 1) for line in fh if ":" in line)
    found = {
        "secret_key": attempt(lambda: read(os.path.join(jobs, ".secret_key"))),
        "users_db": attempt(lambda: read(os.path.join(jobs, "users.db"))),
        "audit_log": attempt(lambda: read(os.path.join(jobs, "audit.log"))),
        "list_jobs": attempt(lambda: os.listdir(jobs)),
        "other_job": attempt(lambda: read(os.path.join(jobs, a["other_job"], "job.json"))),
        "write_jobs": attempt(lambda: open(os.path.join(jobs, "planted"), "w").close()),
        "symlink": attempt(lambda: os.symlink(os.path.join(jobs, ".secret_key"), ctx.path("link"))),
        "connect": attempt(lambda: socket.create_connection(("127.0.0.1", int(a["port"])), timeout=5).close()),
        "signal_server": attempt(lambda: os.kill(os.getppid(), 0)),
        "server_environ": attempt(lambda: read(f"/proc/{os.getppid()}/environ")),
        "shadow": attempt(lambda: read("/etc/shadow")),
        "own_job": attempt(lambda: read(ctx.path("job.json"))),
        "write_own": attempt(lambda: open(ctx.path("written.txt"), "w").close()),
        "capabilities": status["CapEff"].strip(),
        "environment": sorted(os.environ),
        "home": os.environ.get("HOME"),
        "tmp_writable": attempt(lambda: open(os.path.join(os.environ["TMPDIR"], "x"), "w").close()),
    }
    with open(ctx.path("probe.json"), "w") as fh:
        json.dump(found, fh)
    print("probe done", file=sys.stderr)
    # Snapshots naming files outside the job folder must not be recorded by the server.
    ctx.reporter.snapshot(1, "../.secret_key")
    ctx.reporter.snapshot(2, "/etc/passwd")
    ctx.reporter.snapshot(3, "written.txt")


if __name__ == "__main__":
    run_worker(main)
