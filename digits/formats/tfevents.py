"""TensorBoard event files of scalars, written without TensorFlow or TensorBoard (torch-free).

An event file is a sequence of TFRecords, each framing one serialized `tensorboard.Event`:

    uint64 length, uint32 masked CRC-32C of those 8 bytes, the bytes, uint32 masked CRC-32C of the bytes

(little-endian). Its first event carries `file_version: "brain.Event:2"`; each later one a wall time, a step and
a `Summary` whose values are `simple_value` scalars under a tag, which TensorBoard's scalars dashboard plots
against the step. The messages are built with the protobuf runtime from event.proto's and summary.proto's field
numbers: Event wall_time=1 step=2 file_version=3 summary=5; Summary value=1; Summary.Value tag=1
simple_value=2. proto2 keeps a 0.0 value and step 0 on the wire, where proto3 would drop them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
FILE_VERSION = "brain.Event:2"


def _build_messages() -> dict[str, type]:
    fdp = descriptor_pb2.FileDescriptorProto(name="digits_tfevents.proto", package="digits_tb", syntax="proto2")
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED

    def message(name: str, fields: list[tuple]) -> None:
        msg = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name

    message("Value", [("tag", 1, F.TYPE_STRING, opt, None), ("simple_value", 2, F.TYPE_FLOAT, opt, None)])
    message("Summary", [("value", 1, F.TYPE_MESSAGE, rep, ".digits_tb.Value")])
    message(
        "Event",
        [
            ("wall_time", 1, F.TYPE_DOUBLE, opt, None),
            ("step", 2, F.TYPE_INT64, opt, None),
            ("file_version", 3, F.TYPE_STRING, opt, None),
            ("summary", 5, F.TYPE_MESSAGE, opt, ".digits_tb.Summary"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"digits_tb.{name}"))
        for name in ("Value", "Summary", "Event")
    }


_MESSAGES = _build_messages()
Event = _MESSAGES["Event"]


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecords carry."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: rotated right by 15 bits, plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord framing `data`."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data))


def file_version_event(wall_time: float) -> bytes:
    return Event(wall_time=wall_time, step=0, file_version=FILE_VERSION).SerializeToString()


def scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """An Event with one scalar: `value` (stored as a 32-bit float, as TensorBoard's simple_value is) of `tag`."""
    event = Event(wall_time=wall_time, step=step)
    event.summary.value.add(tag=tag, simple_value=value)
    return event.SerializeToString()


def event_file(points: Iterable[tuple[str, int, float, float]], created: float) -> bytes:
    """A whole event file: the version record, then one record per (tag, step, value, wall_time) point."""
    parts = [record(file_version_event(created))]
    parts += [record(scalar_event(tag, value, step, wall_time)) for tag, step, value, wall_time in points]
    return b"".join(parts)


def event_file_name(created: float, host: str = "digits") -> str:
    """TensorBoard's own naming, `events.out.tfevents.<seconds>.<host>` (any file with 'tfevents' in its name is
    read, and the name orders a run's files); the host is "digits", not the server's name."""
    return f"events.out.tfevents.{int(created)}.{host}"
