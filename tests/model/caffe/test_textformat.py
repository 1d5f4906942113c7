"""digits.model.caffe.textformat: protobuf text format parsing, writing, and error positions."""

from __future__ import annotations

import math

import pytest

from digits.model.caffe.textformat import Identifier, Message, TextFormatError, format_message, parse


def roundtrip(msg: Message) -> Message:
    again = parse(format_message(msg))
    assert again == msg
    return again


def test_scalars_of_every_kind():
    msg = parse(
        """
        i: 42 neg: -7 hex: 0x1F f: 1.5 sci: 1e-3 sci2: -2.5E+2 dot: .5 suffix: 2.0f
        t: true f2: false s: "quoted" s2: 'single' e: MAX
        pinf: inf ninf: -inf nan: nan
        """
    )
    assert msg["i"] == [42] and msg["neg"] == [-7] and msg["hex"] == [31]
    assert msg["f"] == [1.5] and msg["sci"] == [0.001] and msg["sci2"] == [-250.0]
    assert msg["dot"] == [0.5] and msg["suffix"] == [2.0]
    assert msg["t"] == [True] and msg["f2"] == [False]
    assert msg["s"] == ["quoted"] and msg["s2"] == ["single"]
    assert msg["e"] == ["MAX"] and isinstance(msg["e"][0], Identifier)
    assert not isinstance(msg["s"][0], Identifier)
    assert msg["pinf"] == [math.inf] and msg["ninf"] == [-math.inf] and math.isnan(msg["nan"][0])
    assert isinstance(msg["i"][0], int) and isinstance(msg["f"][0], float)
    again = parse(format_message(msg))
    assert math.isnan(again.pop("nan")[0])
    msg.pop("nan")
    assert again == msg


def test_message_forms_and_separators():
    msg = parse("a { x: 1 } b: { x: 2 }; c < x: 3 >, d: < x: 4 > e {}")
    assert [m["x"] for m in (msg["a"][0], msg["b"][0], msg["c"][0], msg["d"][0])] == [[1], [2], [3], [4]]
    assert msg["e"] == [Message()]
    roundtrip(msg)


def test_repeated_fields_and_list_syntax():
    msg = parse('dim: 1 dim: 3 list: [1, 2, 3] empty: [] names: ["a", "b"] subs: [{x: 1}, {x: 2}]')
    assert msg["dim"] == [1, 3]
    assert msg["list"] == [1, 2, 3]
    assert "empty" not in msg
    assert msg["names"] == ["a", "b"]
    assert [s["x"] for s in msg["subs"]] == [[1], [2]]
    roundtrip(msg)


def test_fields_keep_source_order_and_positions():
    msg = parse('name: "n"\nlayer {\n  type: "ReLU"\n  bottom: "a"\n}\nlayer { type: "X" }\n')
    assert list(msg) == ["name", "layer"]
    first, second = msg["layer"]
    assert (first.line, first.column) == (2, 1)
    assert first.where("bottom") == (4, 3)
    assert msg.where("layer", 1) == (6, 1)
    assert parse("a: [1,\n 2]").where("a", 1) == (2, 2)
    assert second.line == 6


def test_comments_and_string_escapes():
    msg = parse('# leading comment\ns: "tab\\there \\"q\\" \\\\ \\n \\x41\\101" # trailing\nt: "a" "b" \'c\'')
    assert msg["s"] == ['tab\there "q" \\ \n AA']
    assert msg["t"] == ["abc"]
    roundtrip(msg)


def test_string_with_hash_is_not_a_comment():
    assert parse('s: "a # b"')["s"] == ["a # b"]


def test_copy_message_is_deep_and_keeps_positions():
    msg = parse("a {\n  b: 1\n}")
    copy = msg.copy_message()
    copy["a"][0]["b"][0] = 2
    assert msg["a"][0]["b"] == [1]
    assert copy["a"][0].where("b") == (2, 3)


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("layer {\n  name: 'x'\n", "expected '}' but found end of file", 3, 1),
        ('a: 1\nb: "never closed\n', "unterminated string", 2, 4),
        ("a: 1\n  b 2", "expected ':' or '{' after field 'b' but found '2'", 2, 5),
        ("a: [1 2]", "expected ',' or ']' but found '2'", 1, 7),
        ("a: 12abc", "invalid number '12abc'", 1, 4),
        ("a: -x", "expected a number after '-' but found 'x'", 1, 5),
        ("a: }", "expected a value but found '}'", 1, 4),
        ("a { b: 1 }}", "expected a field name but found '}'", 1, 11),
        ("a < b: 1 }", "expected a field name or '>' but found '}'", 1, 10),
        ("a: 1 @", "unexpected character '@'", 1, 6),
        ('a: "bad \\q"', "invalid escape '\\q' in string", 1, 9),
    ],
)
def test_errors_carry_line_and_column(text, message, line, column):
    with pytest.raises(TextFormatError) as info:
        parse(text)
    err = info.value
    assert (err.message, err.line, err.column) == (message, line, column)
    assert str(err) == f"line {line}, column {column}: {message}"


def test_error_deep_in_a_file_points_at_its_line():
    text = "\n".join(f"layer {{ name: 'l{i}' }}" for i in range(11)) + "\nlayer {\n  name: 'x'\n  oops 3\n}"
    with pytest.raises(TextFormatError) as info:
        parse(text)
    assert (info.value.line, info.value.column) == (14, 8)


def test_format_message_writes_nested_indented_text():
    msg = Message()
    inner = Message()
    inner.add("pool", Identifier("MAX"))
    inner.add("scale", 0.5)
    msg.add("name", 'a "b"')
    msg.add("pooling_param", inner)
    msg.add("flag", True)
    assert format_message(msg) == 'name: "a \\"b\\""\npooling_param {\n  pool: MAX\n  scale: 0.5\n}\nflag: true\n'
