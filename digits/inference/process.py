"""One inference worker child, seen from the web process (torch-free): its pipes, the thread that reads its lines,
and the messages it sent, in a queue the pool takes replies from."""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from digits import protocol
from digits.sandbox import Confiner

log = logging.getLogger("digits.inference.pool")


class WorkerProcess:
    """One worker child: its pipes, a thread that reads its lines, and the messages it sent in a queue."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        stderr: IO | None,
        on_exit: Callable[[WorkerProcess], None],
        tmp: str | None = None,
    ):
        self.started = time.monotonic()
        self.tmp = tmp  # its private temporary folder, removed when it exits
        self.job: str | None = None  # the model job a confined worker serves, once it has one
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr if stderr is not None else subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C in the server's terminal is the server's to handle
        )
        self.pid = self.proc.pid
        self.ready = threading.Event()
        self.exited = threading.Event()
        self.device: str | None = None
        self.retired = False  # given up on (killed for silence): no request may use it while it dies
        self.messages: queue.Queue[protocol.RequestProgress | protocol.Reply | None] = queue.Queue()
        self._on_exit = on_exit
        self._write_lock = threading.Lock()
        threading.Thread(target=self._read, name=f"inference-reader-{self.pid}", daemon=True).start()

    def _read(self) -> None:
        try:
            for raw in self.proc.stdout:
                message = protocol.decode_answer(raw)
                if message is None:
                    log.warning("inference worker %d: not a protocol line: %.200r", self.pid, raw)
                elif isinstance(message, protocol.Ready):
                    self.device = message.device
                    self.ready.set()
                else:
                    self.messages.put(message)
        except (OSError, ValueError):
            pass
        finally:
            code = self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    pipe.close()
                except OSError:  # stdin: a flush into a worker that is gone
                    pass
            Confiner.remove_tmp(self.tmp)
            self.exited.set()
            self.messages.put(None)
            log.info("inference worker %d exited with %s", self.pid, code)
            self._on_exit(self)

    @property
    def alive(self) -> bool:
        return not self.retired and not self.exited.is_set() and self.proc.poll() is None

    def send(self, request_id: int, op: str, fields: dict[str, Any]) -> None:
        data = (protocol.encode_request(request_id, op, fields) + "\n").encode("utf-8")
        with self._write_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def kill(self) -> None:
        self.retired = True
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    def ask_to_exit(self) -> None:
        """Close its stdin: the worker's signal to finish the request at hand and exit."""
        self.retired = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def stop(self, grace_s: float = 3.0) -> None:
        """Ask it to exit, then kill it if it has not left after grace_s (at once if it never got ready: it
        holds nothing, and it would read its closed stdin only once torch is imported)."""
        if not self.ready.is_set():
            self.kill()
        self.ask_to_exit()
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(5)
