"""The inference workers' request/response lines, shared by the pool (web side) and the worker (torch side).

One JSON object per line. The pool writes requests on the worker's stdin:
    {"id": 7, "op": "classify_one" | "classify_many" | "top_n" | "hardest" | "ping", "model": {...}, ...}
The worker writes on its stdout:
    {"type": "ready", "pid", "device"}                 once, when torch is imported and it can take requests
    {"type": "progress", "id", "done", "total"}        while a long request runs (also keeps it from timing out)
    {"type": "reply", "id", "ok": true, "result": {...}}
    {"type": "reply", "id", "ok": false, "error": {"type", "message"}}
Error types: bad_input (400), not_found (404), failed (the model could not run; 500).
A line that does not decode is the worker's own output gone astray: logged by the pool, never evaluated.
"""

from __future__ import annotations

import json
import math
from typing import Any

READY = "ready"
PROGRESS = "progress"
REPLY = "reply"
ERROR_TYPES = ("bad_input", "not_found", "failed")


def _finite(value: Any) -> Any:
    """NaN and infinities (a diverged model's scores) as None, so every line is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode(message: dict[str, Any]) -> str:
    """One line (without the newline)."""
    try:
        return json.dumps(message, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(message), allow_nan=False, separators=(",", ":"))


def decode(line: str | bytes) -> dict[str, Any] | None:
    """The message a line carries, or None when it is not one."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type", message.get("op")), str):
        return None
    return message


def reply(request_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"type": REPLY, "id": request_id, "ok": True, "result": result}


def failure(request_id: Any, kind: str, message: str) -> dict[str, Any]:
    return {"type": REPLY, "id": request_id, "ok": False, "error": {"type": kind, "message": message}}
