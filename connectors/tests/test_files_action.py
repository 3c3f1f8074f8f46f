"""file.write and file.read on a real temporary files root."""
from __future__ import annotations

import json
import os

import jsonschema
import pytest

from connectors.base import ActionError
from connectors.files.actions import FileRead, FileWrite
from connectors.registry import ActionRegistry


@pytest.fixture
def root(tmp_path):
    return tmp_path / "files"


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("top secret")
    return folder


@pytest.fixture
def write(make_context, root):
    def write(inputs):
        jsonschema.validate(inputs, FileWrite.input_schema, cls=jsonschema.Draft202012Validator)
        return FileWrite().execute(inputs, make_context(files_root=root))

    return write


@pytest.fixture
def read(make_context, root):
    def read(path):
        return FileRead().execute({"path": path}, make_context(files_root=root))

    return read


def test_both_are_registered():
    registry = ActionRegistry(use_entry_points=False)
    assert registry.get_class("file.write") is FileWrite
    assert registry.get_class("file.read") is FileRead


def test_writes_text_creating_the_root_and_parent_directories(write, read, root, log_lines):
    assert not root.exists()

    output = write({"path": "reports/2024/today.txt", "content": "héllo\n"})

    assert output == {"path": "reports/2024/today.txt", "bytes": len("héllo\n".encode())}
    assert (root / "reports/2024/today.txt").read_text() == "héllo\n"
    assert read("reports/2024/today.txt") == {"path": "reports/2024/today.txt", "content": "héllo\n", "json": None}
    assert log_lines[0] == "wrote 7 bytes to reports/2024/today.txt"


def test_the_output_path_is_normalised(write):
    assert write({"path": "a/./b//c.txt", "content": "x"})["path"] == "a/b/c.txt"
    assert write({"path": "a/sub/../d.txt", "content": "x"})["path"] == "a/d.txt"


def test_non_string_content_is_written_as_indented_json(write, read, root):
    value = {"name": "Ada", "tags": ["x", "ü"], "n": 1.5, "ok": True, "none": None}

    output = write({"path": "data.json", "content": value})

    text = (root / "data.json").read_text(encoding="utf-8")
    assert text == json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    assert output["bytes"] == len(text.encode())
    assert read("data.json")["json"] == value


@pytest.mark.parametrize("value", [[1, 2, 3], 42, None, False])
def test_any_json_value_round_trips(write, read, value):
    write({"path": "v.json", "content": value})
    assert read("v.json")["json"] == value


def test_a_string_holding_json_is_written_as_is_and_parsed_on_read(write, read):
    write({"path": "raw.json", "content": '{"a":1}'})
    assert read("raw.json") == {"path": "raw.json", "content": '{"a":1}', "json": {"a": 1}}


def test_overwrite_replaces_a_longer_file(write, root):
    write({"path": "f.txt", "content": "a long first version"})
    write({"path": "f.txt", "content": "short", "mode": "overwrite"})
    assert (root / "f.txt").read_text() == "short"


def test_append_adds_to_the_end(write, read, log_lines):
    write({"path": "log.txt", "content": "one\n", "mode": "append"})
    output = write({"path": "log.txt", "content": "two\n", "mode": "append"})

    assert output["bytes"] == 4
    assert read("log.txt")["content"] == "one\ntwo\n"
    assert log_lines[1] == "appended 4 bytes to log.txt"


def test_not_a_number_is_not_json(write, read):
    write({"path": "nan.txt", "content": "NaN"})
    assert read("nan.txt")["json"] is None


# --- confinement -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, message",
    [
        ("../../etc/x", "path '../../etc/x' escapes the files root"),
        ("..", "path '..' escapes the files root"),
        ("a/../../x", "path 'a/../../x' escapes the files root"),
        ("/etc/passwd", "path '/etc/passwd' is absolute"),
        ("//etc/passwd", "is absolute"),
        ("a\x00b", "contains a NUL byte"),
        (".", "names the files root itself"),
        ("a/..", "names the files root itself"),
    ],
)
def test_refuses_paths_outside_the_root(make_context, root, tmp_path, path, message):
    for action, inputs in ((FileWrite(), {"path": path, "content": "pwned"}), (FileRead(), {"path": path})):
        with pytest.raises(ActionError) as caught:
            action.execute(inputs, make_context(files_root=root))
        assert message in str(caught.value)
        assert caught.value.retryable is False
    assert not (tmp_path / "x").exists()


def test_refuses_a_symlink_to_a_file_outside(write, read, root, outside):
    root.mkdir()
    (root / "link.txt").symlink_to(outside / "secret.txt")

    with pytest.raises(ActionError, match="escapes the files root"):
        read("link.txt")
    with pytest.raises(ActionError, match="escapes the files root"):
        write({"path": "link.txt", "content": "overwritten"})
    assert (outside / "secret.txt").read_text() == "top secret"


def test_refuses_a_symlinked_directory_that_leads_outside(write, read, root, outside):
    root.mkdir()
    (root / "out").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ActionError, match="escapes the files root"):
        read("out/secret.txt")
    with pytest.raises(ActionError, match="escapes the files root"):
        write({"path": "out/new/planted.txt", "content": "x"})
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_refuses_a_dangling_symlink_that_would_create_a_file_outside(write, root, outside):
    root.mkdir()
    (root / "trap.txt").symlink_to(outside / "created.txt")

    with pytest.raises(ActionError, match="escapes the files root"):
        write({"path": "trap.txt", "content": "x"})
    assert not (outside / "created.txt").exists()


def test_refuses_a_symlink_swapped_in_after_the_check(make_context, root, outside):
    """The race the O_NOFOLLOW open closes: the checked path is a file, the opened one a symlink."""
    from connectors.files import actions

    root.mkdir()
    (root / "f.txt").write_text("mine")
    real, shown = actions.confine("f.txt", actions._root(make_context(files_root=root)))
    os.remove(real)
    os.symlink(outside / "secret.txt", real)

    with pytest.raises(ActionError, match="escapes the files root"):
        actions._open_confined(real, root.resolve(), shown, os.O_RDONLY)


def test_refuses_a_parent_directory_swapped_for_a_symlink_after_the_check(make_context, root, outside):
    from connectors.files import actions

    (root / "d").mkdir(parents=True)
    (root / "d" / "secret.txt").write_text("mine")
    real, shown = actions.confine("d/secret.txt", actions._root(make_context(files_root=root)))
    os.rename(root / "d", root / "d-old")
    os.symlink(outside, root / "d")

    with pytest.raises(ActionError, match="escapes the files root"):
        actions._open_confined(real, root.resolve(), shown, os.O_RDONLY)


def test_follows_symlinks_that_stay_inside_the_root(write, read, root):
    write({"path": "real/data.txt", "content": "inside"})
    (root / "alias").symlink_to(root / "real", target_is_directory=True)

    assert read("alias/data.txt")["content"] == "inside"


def test_the_root_itself_may_be_a_symlink(make_context, tmp_path):
    (tmp_path / "actual").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "actual", target_is_directory=True)
    context = make_context(files_root=tmp_path / "linked")

    FileWrite().execute({"path": "a.txt", "content": "ok"}, context)
    assert FileRead().execute({"path": "a.txt"}, context)["content"] == "ok"


# --- read failures ---------------------------------------------------------------------------------------------


def test_reading_a_missing_file_fails_clearly(read):
    with pytest.raises(ActionError, match="file 'nope.txt' does not exist") as caught:
        read("nope.txt")
    assert caught.value.retryable is False


def test_reading_a_directory_fails_clearly(write, read):
    write({"path": "d/f.txt", "content": "x"})
    with pytest.raises(ActionError, match="'d' is a directory"):
        read("d")
    with pytest.raises(ActionError, match="'d' is a directory"):
        write({"path": "d", "content": "x"})


def test_reading_binary_fails_clearly(read, root):
    root.mkdir()
    (root / "b.bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ActionError, match="not UTF-8 text"):
        read("b.bin")


def test_reading_too_large_a_file_fails(read, root, monkeypatch):
    from connectors.files import actions

    monkeypatch.setattr(actions, "MAX_READ_BYTES", 10)
    root.mkdir()
    (root / "big.txt").write_text("x" * 11)
    with pytest.raises(ActionError, match="larger than 10 bytes"):
        read("big.txt")


# --- schemas ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [FileWrite, FileRead])
def test_the_schemas_are_valid_and_described(action):
    jsonschema.Draft202012Validator.check_schema(action.input_schema)
    assert all(prop.get("description") for prop in action.input_schema["properties"].values())


@pytest.mark.parametrize(
    "inputs",
    [
        {"content": "x"},
        {"path": "a"},
        {"path": "", "content": "x"},
        {"path": "a", "content": "x", "mode": "prepend"},
        {"path": "a", "content": "x", "encoding": "latin-1"},
    ],
)
def test_the_write_schema_rejects_malformed_inputs(inputs):
    assert list(jsonschema.Draft202012Validator(FileWrite.input_schema).iter_errors(inputs)) != []
