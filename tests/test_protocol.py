import io
import math

import pytest

from digits import protocol
from digits.protocol import Done, Error, LearningRate, Log, Metric, Progress, Reporter, Snapshot


@pytest.mark.parametrize(
    "msg",
    [
        Progress(0.5, 2.0),
        Progress(1.0),
        Metric("train", "loss", 0.25, 1.5, 120),
        Metric("val", "accuracy", 0.99),
        LearningRate(0.001, 3.0),
        Snapshot(4, "snapshot_epoch_4.pt"),
        Log("warning", "disk almost full"),
        Error("out of memory", "Traceback ..."),
        Done("Done"),
        Done("Aborted"),
    ],
)
def test_round_trip(msg):
    assert protocol.decode(protocol.encode(msg)) == msg


def test_nan_loss_survives_the_trip():
    out = protocol.decode(protocol.encode(Metric("train", "loss", float("nan"))))
    assert isinstance(out, Metric) and math.isnan(out.value)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello",
        "{",
        "[1, 2]",
        "null",
        '"progress"',
        '{"type": "progress"}',
        '{"type": "nope", "fraction": 1}',
        '{"type": "progress", "fraction": 2}',
        '{"type": "progress", "fraction": "0.5"}',
        '{"type": "progress", "fraction": true}',
        '{"type": "metric", "phase": "train", "name": "x", "value": "1"}',
        '{"type": "progress", "fraction": 0.5, "extra": 1}',
        '{"type": "done", "status": "Exploded"}',
        '{"type": "metric", "phase": "train", "name": "x", "value": 1, "iteration": 1.5}',
        "{\"type\": \"__import__('os').system('true')\"}",
        b"\xff\xfe garbage",
    ],
)
def test_non_protocol_lines_are_not_messages(line):
    assert protocol.decode(line) is None


def test_reporter_writes_one_flushed_line_per_call():
    stream = io.StringIO()
    rep = Reporter(stream)
    rep.progress(1.7, epoch=1)  # clamped into [0, 1]
    rep.metric("val", "accuracy", 0.5, epoch=1, iteration=10)
    rep.done()
    lines = stream.getvalue().splitlines()
    assert [protocol.decode(x) for x in lines] == [Progress(1.0, 1), Metric("val", "accuracy", 0.5, 1, 10), Done()]
