"""Follow a Caffe training log (glog's text, as `caffe train` writes it to stderr) into a DIGITS external run.

    python -m digits.tools.follow_caffe_log "LeNet on the cluster" train.log --url http://digits:5000 \\
        --token "$DIGITS_TOKEN" --iters-per-epoch 938 --pid 4242

RUN is the new run's name. Lines are read as they are appended (a log replaced by rotation or cut short by
truncation is read again from its start): "Iteration N, loss = X" and "Train net output #k: name = X" are train
points, "Iteration N, lr = X" the learning rate, "Test net output #k: name = X" val points of the last "Testing
net" iteration. Points are charted by iteration, or by epoch with --iters-per-epoch. "Optimization Done." finishes
the run Done. The run ends in Error when the log stops growing for --idle-s while the Caffe process (--pid) is
gone (or, without --pid, when it stops growing for --idle-s), and when following is stopped (Ctrl-C) before
Caffe said it was done: the run then says so, instead of waiting for the server's heartbeat check.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from digits.client import Run, RunError

NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|-?inf)"
ITERATION_LOSS = re.compile(r"Iteration (\d+)(?: \([^)]*\))?, loss = " + NUMBER)
ITERATION_LR = re.compile(r"Iteration (\d+), lr = " + NUMBER)
TESTING = re.compile(r"Iteration (\d+), Testing net \(#\d+\)")
OUTPUT = re.compile(r"(Train|Test) net output #\d+: (\S+) = " + NUMBER)
DONE = "Optimization Done."
POLL_S = 0.2


@dataclass
class LogState:
    """What the lines read so far say: the iteration train and test outputs belong to."""

    iteration: int = 0
    test_iteration: int = 0
    done: bool = False
    points: list[tuple[str, str, float, int]] = field(default_factory=list)


def read_line(line: str, state: LogState) -> list[tuple[str, str, float, int]]:
    """The points one line of the log holds: (phase, name, value, iteration)."""
    if DONE in line:
        state.done = True
        return []
    m = ITERATION_LOSS.search(line)
    if m:
        state.iteration = int(m.group(1))
        return [("train", "loss", float(m.group(2)), state.iteration)]
    m = ITERATION_LR.search(line)
    if m:
        state.iteration = int(m.group(1))
        return [("train", "learning_rate", float(m.group(2)), state.iteration)]
    m = TESTING.search(line)
    if m:
        state.test_iteration = int(m.group(1))
        return []
    m = OUTPUT.search(line)
    if m:
        net, name, value = m.groups()
        if net == "Train":  # the loss is the "Iteration N, loss" line's already
            return [] if name == "loss" else [("train", name, float(value), state.iteration)]
        return [("val", name, float(value), state.test_iteration)]
    return []


def lines(path: str, stop: callable) -> Iterator[str | None]:
    """The log's lines as they are appended; None while it does not grow. Reopened from the start when the file
    at `path` is replaced (rotation) or shrinks (truncation)."""
    fh = None
    try:
        while not stop():
            if fh is None:
                try:
                    fh = open(path, "rb")  # noqa: SIM115 - kept open while following
                except FileNotFoundError:
                    yield None
                    continue
            line = fh.readline()
            if line.endswith(b"\n"):
                yield line.decode("utf-8", errors="replace")
                continue
            if line:  # half a line: read it again once it is whole
                fh.seek(-len(line), os.SEEK_CUR)
            try:
                st = os.stat(path)
                replaced = st.st_ino != os.fstat(fh.fileno()).st_ino or st.st_size < fh.tell()
            except FileNotFoundError:
                replaced = False  # rotated away, the new one not made yet: keep the old
            if replaced:
                fh.close()
                fh = None
                continue
            yield None
    finally:
        if fh is not None:
            fh.close()


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def follow(path: str, run: Run, iters_per_epoch: float | None, idle_s: float, pid: int | None) -> str | None:
    """Send the log's points to `run` until Caffe is done (None) or gone (the reason, for the run's error)."""
    state = LogState()
    last_growth = time.monotonic()
    for line in lines(path, lambda: state.done):
        if line is None:
            quiet = time.monotonic() - last_growth
            if quiet > idle_s and not alive(pid):
                who = f"Caffe (pid {pid}) has ended" if pid is not None else "nothing was added"
                return f"the log stopped growing {quiet:.0f} s ago and {who} before '{DONE}'"
            run.flush()
            time.sleep(POLL_S)
            continue
        last_growth = time.monotonic()
        for phase, name, value, iteration in read_line(line, state):
            where = {"step": iteration}
            if iters_per_epoch:
                where["epoch"] = iteration / iters_per_epoch
            run.log(phase=phase, **where, **{name: value})
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m digits.tools.follow_caffe_log", description=__doc__.split("\n")[0])
    p.add_argument("run", help="the new run's name")
    p.add_argument("logfile", help="the Caffe log to follow (glog's output of caffe train)")
    p.add_argument("--url", default=os.environ.get("DIGITS_URL", "http://localhost:5000"), help="the DIGITS server")
    p.add_argument("--token", default=os.environ.get("DIGITS_TOKEN"), help="an API token (or DIGITS_TOKEN)")
    p.add_argument("--user", help="the name to sign in as on a --auth none server (default: yours)")
    p.add_argument("--iters-per-epoch", type=float, help="chart by epoch: iterations in one epoch")
    p.add_argument("--pid", type=int, help="Caffe's process: a quiet log ends the run once it has gone")
    p.add_argument("--idle-s", type=float, default=60.0, help="how long a quiet log may wait (default 60)")
    args = p.parse_args(argv)
    if args.iters_per_epoch is not None and args.iters_per_epoch <= 0:
        p.error("--iters-per-epoch must be above 0")
    try:
        run = Run(args.url, args.token, args.run, user=args.user, notes=f"followed from {args.logfile}")
    except (RunError, OSError) as e:
        print(f"follow_caffe_log: cannot start the run: {e}", file=sys.stderr)
        return 2
    print(f"following {args.logfile} into {run.url}", flush=True)
    try:
        problem = follow(args.logfile, run, args.iters_per_epoch, args.idle_s, args.pid)
    except KeyboardInterrupt:
        problem = f"following was stopped (Ctrl-C) before the log said '{DONE}'"
    run.finish(problem)
    print(f"run {run.id}: {run.status}{': ' + problem if problem else ''}", flush=True)
    return 0 if problem is None else 1


if __name__ == "__main__":
    sys.exit(main())
