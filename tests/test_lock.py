import os
import signal
import subprocess
import sys

import pytest

from digits.lock import JobsDirBusy, JobsDirLock


def test_second_holder_is_refused_with_pid_and_port(tmp_path):
    first = JobsDirLock(str(tmp_path))
    first.acquire("127.0.0.1", 5000)
    with pytest.raises(JobsDirBusy, match=rf"pid {os.getpid()}, port 5000"):
        JobsDirLock(str(tmp_path)).acquire("127.0.0.1", 5001)
    first.release()
    again = JobsDirLock(str(tmp_path))
    again.acquire("127.0.0.1", 5001)
    again.release()


def test_lock_of_a_killed_holder_does_not_block(tmp_path):
    code = (
        "import sys, time; from digits.lock import JobsDirLock; "
        "JobsDirLock(sys.argv[1]).acquire('127.0.0.1', 5555); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(JobsDirBusy, match="port 5555"):
        JobsDirLock(str(tmp_path)).acquire("127.0.0.1", 5000)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    lock = JobsDirLock(str(tmp_path))
    lock.acquire("127.0.0.1", 5000)  # the stale lock file is still there, and does not matter
    lock.release()
