"""Real Caffe's blob shapes for whole networks, run as a subprocess of tests/model/caffe/test_public_nets.py.

A Caffe CHECK failure aborts the process that hit it, so the test never builds a `caffe.Net` itself: it writes
jobs (JSON, one list on stdin) and reads one JSON line per finished job from stdout; a job that kills this
process has no line, and the test starts a fresh process for the jobs after it.

Each job names a prototxt, the phase and stage to build, the batch size, the inputs to feed in place of the
file's database layers ({top: per-image dims}) and, for DIGITS' own files, the class count DIGITS would write
into an InnerProduct left without num_output. The file itself is never changed: a rewritten copy is built.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

# Layers that read a database or a file list: replaced by net-level inputs of the job's shapes.
DATABASE_TYPES = {"Data", "ImageData", "HDF5Data", "WindowData"}
V1_DATABASE_TYPES = {"DATA", "IMAGE_DATA", "HDF5_DATA", "WINDOW_DATA"}


def rewrite(net, job: dict, pb) -> None:
    """Feed the job's inputs instead of database layers; every declared input gets the job's batch size."""
    batch = job["batch"]
    keep = [layer for layer in net.layer if layer.type not in DATABASE_TYPES]
    del net.layer[:]
    net.layer.extend(keep)
    v1_enum = pb.V1LayerParameter.LayerType
    keep_v1 = [layer for layer in net.layers if v1_enum.Name(layer.type) not in V1_DATABASE_TYPES]
    del net.layers[:]
    net.layers.extend(keep_v1)
    for i in range(0, len(net.input_dim), 4):
        net.input_dim[i] = batch
    for shape in net.input_shape:
        shape.dim[0] = batch
    for layer in net.layer:
        if layer.type == "Input":
            for shape in layer.input_param.shape:
                shape.dim[0] = batch
        if layer.type == "MemoryData":
            layer.memory_data_param.batch_size = batch
        if (
            layer.type == "InnerProduct"
            and job.get("num_output")
            and not layer.inner_product_param.HasField("num_output")
        ):
            layer.inner_product_param.num_output = job["num_output"]
    for top, dims in job["feeds"].items():
        net.input.append(top)
        net.input_shape.add().dim.extend([batch, *dims])


def run(job: dict, caffe, pb, text_format) -> dict:
    net = pb.NetParameter()
    with open(job["path"]) as f:
        text_format.Merge(f.read(), net)
    rewrite(net, job, pb)
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(text_format.MessageToString(net))
        path = f.name
    try:
        phase = caffe.TRAIN if job["phase"] == "TRAIN" else caffe.TEST
        built = caffe.Net(path, phase, stages=[job["stage"]])
    finally:
        os.unlink(path)
    blobs = {name: list(blob.data.shape) for name, blob in built.blobs.items() if "_split_" not in name}
    return {"id": job["id"], "blobs": blobs}


def main() -> None:
    from google.protobuf import text_format

    from digits.engine import caffe_real

    caffe = caffe_real.import_caffe()
    from caffe.proto import caffe_pb2

    for job in json.load(sys.stdin):
        print(json.dumps({"id": job["id"], "started": True}), flush=True)
        try:
            result = run(job, caffe, caffe_pb2, text_format)
        except Exception as error:  # noqa: BLE001 - a parse or a Python-side error is reported, not fatal
            result = {"id": job["id"], "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
