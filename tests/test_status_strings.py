"""Statuses are compared as the Status enum, never as text ("Done" == ... passes today and breaks silently
the day a status is renamed or a value stops being a str)."""

import ast
from pathlib import Path

from digits.status import Status

ROOT = Path(__file__).resolve().parents[1] / "digits"
NAMES = {s.value for s in Status}


def _literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for element in node.elts for v in _literals(element)]
    return []


def string_status_comparisons(source: str, filename: str = "<source>") -> list[str]:
    """Each comparison in `source` with a status name written as a string, as 'file:line: code'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            texts = {v for side in (node.left, *node.comparators) for v in _literals(side)}
            if texts & NAMES:
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scan_finds_what_it_looks_for():
    source = 'a = run.done_status == "Done"\nb = s in ("Aborted", "Error")\nc = s == Status.DONE\nd = x == "Dog"\n'
    assert string_status_comparisons(source) == [
        "<source>:1: run.done_status == 'Done'",
        "<source>:2: s in ('Aborted', 'Error')",
    ]


def test_no_module_of_the_server_compares_statuses_as_strings():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        found += string_status_comparisons(path.read_text(), str(path.relative_to(ROOT.parent)))
    assert found == []
