"""`python -m digits.confined MODULE ARGS...`: confine this process (digits/sandbox.py), then run MODULE.

The policy in the environment is applied before MODULE imports anything, while the process has a single
thread: Landlock domains and capabilities belong to threads, and a thread started earlier (a BLAS pool, say)
would keep the access the others gave up. Threads started later inherit the confinement.
"""

from __future__ import annotations

import os
import runpy
import sys

from digits import protocol, sandbox


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m digits.confined MODULE [ARGS...]")
    module = sys.argv.pop(1)
    try:
        how = sandbox.apply_from_env()
    except (OSError, ValueError) as e:
        # The task protocol's error line, so the job says why; nothing of the task has run.
        print(protocol.encode(protocol.Error(f"the worker could not be confined, so it did not start: {e}")))
        sys.exit(1)
    if how:
        print(f"worker {os.getpid()}: {how}", file=sys.stderr, flush=True)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
