"""golden.jsonl: a JSON-lines file torn by a crash is repaired by the next append, never extended."""

from __future__ import annotations

import json

import pytest

from golden.jsonl import append_jsonl, read_jsonl


@pytest.mark.parametrize("torn, kept", [
    ('{"n": 1', [0, 2]),         # half a record: dropped, the next record starts on its own line
    ('{"n": 1}', [0, 1, 2]),     # a whole record whose newline was not written yet: ended and kept
    ("", [0, 2]),                 # nothing torn
])
def test_append_repairs_a_partial_last_line(tmp_path, capsys, torn, kept):
    path = tmp_path / "sub" / "r.jsonl"
    append_jsonl(path, [{"n": 0}])
    with open(path, "a") as f:
        f.write(torn)
    append_jsonl(path, [{"n": 2}])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["n"] for line in lines] == kept  # every line valid JSON
    assert read_jsonl(path) == [{"n": n} for n in kept]
    assert ("dropped a partial last line" in capsys.readouterr().err) == (torn == '{"n": 1')


def test_a_file_that_is_only_a_partial_line_and_a_missing_file(tmp_path):
    assert read_jsonl(tmp_path / "none.jsonl") == []
    path = tmp_path / "r.jsonl"
    path.write_text('{"n"')
    append_jsonl(path, [{"n": 1}, {"n": 2}])
    assert path.read_text() == '{"n": 1}\n{"n": 2}\n'


def test_read_skips_a_torn_line_with_a_warning(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text('{"n": 0}\n{"n": 1\n')
    assert read_jsonl(path) == [{"n": 0}]
    assert f"{path}:2 is not valid JSON" in capsys.readouterr().err


def test_record_keys_ignore_the_order_of_the_description_and_never_change():
    """Keys are stored in results files (bench.sweep, bench.accuracy): the formula is pinned."""
    from golden.jsonl import record_key

    assert record_key({"a": 1, "b": [2, 3]}) == record_key({"b": [2, 3], "a": 1}) == "fd28b17488e0d3ec"
