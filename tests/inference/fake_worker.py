"""A torch-free stand-in for digits.engine.inference.worker that speaks its protocol and misbehaves on request.

ops: echo (answers its fields and pid), crash (exits at once), sleep {seconds}, progress {steps}, fail {kind}.
"""

import os
import sys
import time

from digits import protocol


def main() -> None:
    out = sys.stdout

    def send(message):
        out.write(protocol.encode(message) + "\n")
        out.flush()

    send(protocol.Ready(os.getpid(), "cpu"))
    for line in sys.stdin:
        rid, op, request = protocol.decode_request(line)
        if op == "crash":
            os._exit(3)
        if op == "sleep":
            time.sleep(float(request.get("seconds", 1)))
        if op == "progress":
            steps = int(request.get("steps", 3))
            for step in range(steps):
                send(protocol.RequestProgress(rid, step + 1, steps))
        if op == "fail":
            send(
                protocol.Reply(
                    rid, False, error={"type": request.get("kind", "failed"), "message": "it failed as asked"}
                )
            )
            continue
        model = request.get("model") or {}
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        send(protocol.Reply(rid, True, {"pid": os.getpid(), "key": model.get("key"), "env": env}))


if __name__ == "__main__":
    main()
