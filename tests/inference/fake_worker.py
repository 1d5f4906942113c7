"""A torch-free stand-in for digits.engine.inference.worker that speaks its protocol and misbehaves on request.

ops: echo (answers its fields and pid), crash (exits at once), sleep {seconds}, progress {steps}, fail {kind}.
"""

import os
import sys
import time

from digits.inference import wire


def main() -> None:
    out = sys.stdout

    def send(message):
        out.write(wire.encode(message) + "\n")
        out.flush()

    send({"type": wire.READY, "pid": os.getpid(), "device": "cpu"})
    for line in sys.stdin:
        request = wire.decode(line)
        rid = request["id"]
        op = request["op"]
        if op == "crash":
            os._exit(3)
        if op == "sleep":
            time.sleep(float(request.get("seconds", 1)))
        if op == "progress":
            for step in range(int(request.get("steps", 3))):
                send({"type": wire.PROGRESS, "id": rid, "done": step + 1, "total": int(request.get("steps", 3))})
        if op == "fail":
            send(wire.failure(rid, request.get("kind", "failed"), "it failed as asked"))
            continue
        model = request.get("model") or {}
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        send(wire.reply(rid, {"pid": os.getpid(), "key": model.get("key"), "env": env}))


if __name__ == "__main__":
    main()
