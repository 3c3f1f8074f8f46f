"""file.write under repeated attempts (SPEC §10): an overwrite replaces the file whole through a rename, and an
append is applied once per task run key, even when the first attempt died in the middle of its write."""
from __future__ import annotations

import os

from connectors.files.actions import FileWrite


def write(make_context, key: str, **inputs) -> dict:
    context = make_context()
    context.idempotency_key = key
    return FileWrite().execute(inputs, context)


def test_a_repeated_append_attempt_adds_its_line_once(make_context, tmp_path):
    assert write(make_context, "k1", path="a.log", content="one\n", mode="append")["bytes"] == 4
    assert write(make_context, "k1", path="a.log", content="one\n", mode="append")["bytes"] == 0
    write(make_context, "k2", path="a.log", content="two\n", mode="append")
    assert (tmp_path / "files" / "a.log").read_text() == "one\ntwo\n"


def test_an_append_cut_short_by_a_dead_worker_is_completed_not_doubled(make_context, tmp_path):
    write(make_context, "k1", path="a.log", content="first\n", mode="append")
    target = tmp_path / "files" / "a.log"
    with open(target, "r+b") as handle:  # the first attempt wrote half of its line, then its worker died
        handle.truncate(3)
    write(make_context, "k1", path="a.log", content="first\n", mode="append")
    assert target.read_text() == "first\n"


def test_an_overwrite_replaces_the_file_whole_and_leaves_no_temporary_file(make_context, tmp_path):
    write(make_context, "k1", path="out/report.json", content={"a": 1})
    write(make_context, "k1", path="out/report.json", content={"a": 2})
    folder = tmp_path / "files" / "out"
    assert (folder / "report.json").read_text() == '{\n  "a": 2\n}\n'
    assert os.listdir(folder) == ["report.json"]
