"""Benchmark: .caffemodel read and write for a VGG-16-sized network (138,357,544 parameters, a 553 MB file).

VGG-16's deploy network (Input 1x3x224x224, 13 convolutions, 3 InnerProducts) is compiled by our Caffe compiler
(weights from its fillers, no download), then, best of --repeat runs:
  write_s             save_caffemodel: the compiled network's weights to a .caffemodel (what export does)
  read_s              read_caffemodel: the file parsed into NumPy arrays (torch-free; what the web side can use)
  load_s              load_caffemodel: read, shapes checked by layer name, and copied into the compiled network
  real_caffe_load_s   real Caffe (pycaffe, where `make install` built it) building the deploy network with our
                      file as its weights; checked to hold the same values; null with the reason otherwise
Prints one line:
  {"name": "caffemodel", "params", "file_mb", "write_s", "read_s", "load_s", "real_caffe_load_s", ...}

    .venv/bin/python bench/caffemodel.py [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from digits.engine import caffe_real  # noqa: E402
from digits.engine.caffe.caffemodel import load_caffemodel, save_caffemodel  # noqa: E402
from digits.engine.caffe.net import build_net  # noqa: E402
from digits.formats.caffemodel import read_caffemodel  # noqa: E402

VGG16_PARAMS = 138_357_544
BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]


def vgg16_deploy() -> str:
    """VGG-16's deploy prototxt (the model zoo's VGG_ILSVRC_16_layers_deploy, with an Input layer)."""
    lines = [
        'name: "VGG_ILSVRC_16_layers"',
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 224 dim: 224 } } }',
    ]
    bottom = "data"
    for block, (channels, convs) in enumerate(BLOCKS, start=1):
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            lines.append(
                f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
                f"convolution_param {{ num_output: {channels} pad: 1 kernel_size: 3 }} }}"
            )
            lines.append(f'layer {{ name: "relu{block}_{i}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
            bottom = name
        lines.append(
            f'layer {{ name: "pool{block}" type: "Pooling" bottom: "{bottom}" top: "pool{block}" '
            "pooling_param { pool: MAX kernel_size: 2 stride: 2 } }"
        )
        bottom = f"pool{block}"
    for name, outputs in (("fc6", 4096), ("fc7", 4096), ("fc8", 1000)):
        lines.append(
            f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" '
            f"inner_product_param {{ num_output: {outputs} }} }}"
        )
        if name != "fc8":
            lines.append(f'layer {{ name: "relu{name[2:]}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
        bottom = name
    lines.append('layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }')
    return "\n".join(lines) + "\n"


# In a child process: Caffe aborts the whole process (glog CHECK) when it cannot read a file.
REAL_CAFFE_LOAD = """
import json, sys, time
import numpy as np
from digits.engine import caffe_real
from digits.formats.caffemodel import read_caffemodel
caffe = caffe_real.import_caffe()
prototxt, path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(repeat):
    start = time.perf_counter()
    net = caffe.Net(prototxt, caffe.TEST, weights=path)
    times.append(time.perf_counter() - start)
fc6 = next(layer for layer in read_caffemodel(path).layers if layer.name == "fc6")
same = all(np.array_equal(net.params["fc6"][i].data, blob.data) for i, blob in enumerate(fc6.blobs))
print(json.dumps({"load_s": round(min(times), 3), "same": bool(same)}))
"""


def real_caffe_load(prototxt: str, path: str, repeat: int) -> tuple[float | None, str | None]:
    """(best seconds for real Caffe to build the deploy network with our file as weights, None) or (None, why)."""
    child = subprocess.run(
        [sys.executable, "-c", REAL_CAFFE_LOAD, prototxt, path, str(repeat)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if child.returncode != 0:
        lines = [line for line in child.stderr.splitlines() if "too big" in line or "Check failed" in line]
        return None, "real Caffe could not load the file: " + " / ".join(lines or child.stderr.splitlines()[-2:])
    result = json.loads(child.stdout.splitlines()[-1])
    if not result["same"]:
        raise SystemExit("real Caffe loaded other values than the file holds")
    return result["load_s"], None


def best(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return round(min(times), 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--keep", help="write the files here and keep them (default: a temporary folder)")
    args = p.parse_args(argv)
    folder = args.keep or tempfile.mkdtemp(prefix="bench-caffemodel-")
    os.makedirs(folder, exist_ok=True)
    try:
        text = vgg16_deploy()
        prototxt = os.path.join(folder, "vgg16_deploy.prototxt")
        with open(prototxt, "w") as fh:
            fh.write(text)
        print("compiling VGG-16 (fillers for 138M parameters)...", file=sys.stderr)
        torch.manual_seed(0)
        net = build_net(text, input_shape=None, num_classes=0, stage="deploy")
        params = sum(t.numel() for t in net.parameters())
        if params != VGG16_PARAMS:
            raise SystemExit(f"the compiled VGG-16 has {params} parameters, not {VGG16_PARAMS}")
        path = os.path.join(folder, "vgg16.caffemodel")
        write_s = best(args.repeat, lambda: save_caffemodel(net, path))
        print(f"write {write_s} s", file=sys.stderr)
        read_s = best(args.repeat, lambda: read_caffemodel(path))
        print(f"read {read_s} s", file=sys.stderr)
        target = build_net(text, input_shape=None, num_classes=0, stage="deploy")
        load_s = best(args.repeat, lambda: load_caffemodel(target, path))
        if not torch.equal(target.layer("fc6").weight, net.layer("fc6").weight):
            raise SystemExit("the loaded weights differ from the written ones")
        figures = {
            "name": "caffemodel",
            "params": params,
            "file_mb": round(os.path.getsize(path) / 1e6, 1),
            "write_s": write_s,
            "read_s": read_s,
            "load_s": load_s,
            "real_caffe_load_s": None,
        }
        ok, why = caffe_real.available()
        if ok:
            seconds, why = real_caffe_load(prototxt, path, args.repeat)
            figures["real_caffe_load_s"] = seconds
        if why:
            figures["real_caffe"] = why
        print(json.dumps(figures))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
