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


def test_inference_answers_round_trip_and_stay_strict_json():
    for message in (
        protocol.Ready(12, "cpu"),
        protocol.Ready(12, None),
        protocol.RequestProgress(3, 5, 10),
        protocol.Reply(3, True, {"top": [["cat", 99.5]]}),
        protocol.Reply(4, False, error={"type": "bad_input", "message": "not an image"}),
    ):
        assert protocol.decode_answer(protocol.encode(message)) == message
    line = protocol.encode(protocol.Reply(5, True, {"scores": [float("nan"), float("inf"), 1.0]}))
    assert "NaN" not in line and "Infinity" not in line
    assert protocol.decode_answer(line).result == {"scores": [None, None, 1.0]}
    # A task message is not an answer, and the other way round; "ok" must be a real boolean.
    assert protocol.decode_answer(protocol.encode(protocol.Progress(0.5))) is None
    assert protocol.decode(protocol.encode(protocol.Ready(1))) is None
    assert protocol.decode_answer('{"type": "reply", "id": 1, "ok": 1}') is None
    assert protocol.decode_answer('{"type": "reply", "id": true, "ok": true}') is None


def test_inference_requests_carry_their_fields():
    line = protocol.encode_request(7, "classify_one", {"model": {"key": "k"}, "image": {"data": "..."}})
    assert protocol.decode_request(line) == (7, "classify_one", {"model": {"key": "k"}, "image": {"data": "..."}})
    assert protocol.decode_request('{"type": "request", "id": "7", "op": "ping"}') is None
    assert protocol.decode_request('{"type": "reply", "id": 7, "ok": true}') is None
    assert protocol.decode_request("not json") is None
