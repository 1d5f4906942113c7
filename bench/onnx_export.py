"""Benchmark: what exporting a snapshot costs the training worker, per standard network and framework. ONNX is
written at each snapshot beside the TorchScript (digits/engine/export.py), so a download only streams files;
this says what that adds. Prints one JSON line per network {"name": "onnx_export", "network", "framework",
"input_shape", "torchscript_s", "onnx_s", "ts_mb", "onnx_mb", "onnx_over_ts"}: seconds for the TorchScript part of
the export without ONNX (trace, check, save; what it cost before ONNX) and for the ONNX file alone
(engine/onnx_export.write_onnx on the same network), best of --repeat runs, and the two files' sizes.

    .venv/bin/python bench/onnx_export.py [--networks lenet,alexnet,...] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from digits.engine.export import export_deployable, onnx_path_for  # noqa: E402
from digits.engine.networks import build_network  # noqa: E402
from digits.engine.onnx_export import write_onnx  # noqa: E402
from digits.model.standard import get_network, list_networks  # noqa: E402

SHAPES = {"lenet": (1, 28, 28), "alexnet": (3, 227, 227), "googlenet": (3, 224, 224)}


def best_of(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure(name: str, framework: str, repeat: int, folder: str) -> dict:
    shape = SHAPES.get(name, (3, 224, 224))
    built = build_network(get_network(name).text(framework), framework, input_shape=shape, num_classes=10)
    path = os.path.join(folder, f"deploy_epoch_{name}_{framework}.ts")
    ts_s = best_of(repeat, lambda: export_deployable(built, shape, path, onnx=False))
    onnx_path = onnx_path_for(path)
    net = built.module.eval()
    onnx_s = best_of(repeat, lambda: write_onnx(net, shape, onnx_path, {}))
    ts_mb, onnx_mb = os.path.getsize(path) / 1e6, os.path.getsize(onnx_path) / 1e6
    return {
        "name": "onnx_export",
        "network": name,
        "framework": framework,
        "input_shape": list(shape),
        "torchscript_s": round(ts_s, 3),
        "onnx_s": round(onnx_s, 3),
        "ts_mb": round(ts_mb, 2),
        "onnx_mb": round(onnx_mb, 2),
        "onnx_over_ts": round(onnx_s / ts_s, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", default=",".join(n.name for n in list_networks()))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name in args.networks.split(","):
            for framework in get_network(name).frameworks:
                print(json.dumps(measure(name, framework, args.repeat, folder)), flush=True)


if __name__ == "__main__":
    main()
