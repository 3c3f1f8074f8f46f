"""file.write and file.read: paths relative to the files root (AUTOMATION_FILES_ROOT), never outside it.

Refused, before anything is opened: absolute paths, NUL bytes, `..` that climbs out, and paths whose real
location (symlinks resolved) lies outside the root. The final component is then opened with O_NOFOLLOW, and the
opened file's real path is checked again, so a symlink swapped in after the check is caught before any byte
is read or the file is truncated.
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path, PurePosixPath

from connectors.base import Action, ActionContext, ActionError

MAX_READ_BYTES = 10 * 1024 * 1024

_PATH = {
    "type": "string",
    "minLength": 1,
    "maxLength": 4096,
    "description": "Path relative to the files root (AUTOMATION_FILES_ROOT), e.g. reports/today.json",
}


def _not_json(token: str):
    raise ValueError(f"{token} is not JSON")  # json.loads would accept NaN and Infinity otherwise


def _refuse(message: str) -> ActionError:
    return ActionError(message, retryable=False)


def _root(context: ActionContext) -> Path:
    root = Path(context.config.files_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ActionError(f"cannot create the files root {root}: {exc.strerror}", retryable=False) from None
    return Path(os.path.realpath(root))


def _inside(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root).rstrip(os.sep) + os.sep)


def confine(path: str, root: Path) -> tuple[Path, str]:
    """The real absolute path for `path` under `root`, and `path` normalised; raises ActionError if it escapes."""
    if "\x00" in path:
        raise _refuse(f"path {path!r} contains a NUL byte")
    if path.startswith(("/", "\\")) or os.path.isabs(path):
        raise _refuse(f"path '{path}' is absolute; give a path relative to the files root")
    normalised = os.path.normpath(path)
    if normalised == ".":
        raise _refuse(f"path '{path}' names the files root itself, not a file")
    if normalised == ".." or normalised.startswith(".." + os.sep):
        raise _refuse(f"path '{path}' escapes the files root")
    real = os.path.realpath(root / normalised)  # resolves symlinks in every existing component
    if not _inside(real, root) or real == str(root):
        raise _refuse(f"path '{path}' escapes the files root (through a symbolic link)")
    return Path(real), PurePosixPath(normalised).as_posix()


def _open_confined(real: Path, root: Path, shown: str, flags: int, mode: int = 0o644) -> int:
    try:
        fd = os.open(real, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except FileNotFoundError:
        raise _refuse(f"file '{shown}' does not exist") from None
    except IsADirectoryError:
        raise _refuse(f"path '{shown}' is a directory") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component became a symlink after the check
            raise _refuse(f"path '{shown}' escapes the files root (through a symbolic link)") from None
        raise ActionError(f"cannot open '{shown}': {exc.strerror}", retryable=False) from None
    try:
        opened = os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else str(real)
        if not _inside(opened, root):  # a parent directory was swapped for a symlink after the check
            raise _refuse(f"path '{shown}' escapes the files root (through a symbolic link)")
        if os.path.isdir(opened):
            raise _refuse(f"path '{shown}' is a directory")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _replace(real: Path, root: Path, shown: str, data: bytes, key: str) -> None:
    """Write a temporary file in the same folder, then rename it over the target: a repeated attempt replaces
    the file whole, and a reader never sees half of it. Names are resolved against the opened, checked folder."""
    folder = os.open(real.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        if not _inside(os.path.realpath(f"/proc/self/fd/{folder}"), root) and os.path.exists("/proc/self/fd"):
            raise _refuse(f"path '{shown}' escapes the files root (through a symbolic link)")
        temporary = f".{real.name}.{key or os.urandom(8).hex()}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                     0o644, dir_fd=folder)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        try:
            os.replace(temporary, real.name, src_dir_fd=folder, dst_dir_fd=folder)
        except IsADirectoryError:
            os.unlink(temporary, dir_fd=folder)
            raise _refuse(f"path '{shown}' is a directory") from None
    finally:
        os.close(folder)


def _append_once(fd: int, data: bytes, root: Path, key: str) -> bool:
    """Append `data` unless this task run's key already did; False when it had.

    The marker `<root>/.flowforge/appends/<key>` holds the file's size before this key's append, and is written
    before the bytes. A repeated attempt that finds it checks the bytes at that offset: already there, nothing
    to do; the file ends in a prefix of them (the attempt died mid-write), the end is cut back and written
    again; anything else (nothing, or other writers' lines), appended at the end. Without a key, a plain append.
    """
    if not key:
        _write_all(fd, data)
        return True
    markers = root / ".flowforge" / "appends"
    markers.mkdir(parents=True, exist_ok=True)
    marker = markers / key
    try:
        offset = int(marker.read_text() or "-1")
    except (FileNotFoundError, ValueError):
        offset = -1
    if offset < 0:
        marker.write_text(str(os.fstat(fd).st_size))
        _write_all(fd, data)
        return True
    there = os.pread(fd, len(data), offset)
    if there == data:
        return False
    if os.fstat(fd).st_size == offset + len(there) and data.startswith(there):
        os.ftruncate(fd, offset)
    _write_all(fd, data)
    return True


class FileWrite(Action):
    name = "file.write"
    title = "Write file"
    description = (
        "Writes content to a file under the files root, creating parent directories. A string is written as "
        "is; any other JSON value is written as indented JSON. An overwrite replaces the file whole (written "
        "beside it, then renamed); an append is applied once per task run, however often its attempt repeats. "
        "Output: path, bytes."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "path": _PATH,
            "content": {"description": "Text to write, or any JSON value to write as indented JSON"},
            "mode": {
                "type": "string",
                "enum": ["overwrite", "append"],
                "default": "overwrite",
                "description": "Replace the file, or add to its end",
            },
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "The path written, relative to the files root"},
            "bytes": {"type": "integer", "description": "How many bytes this write added"},
        },
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        root = _root(context)
        real, shown = confine(inputs["path"], root)
        content = inputs["content"]
        if not isinstance(content, str):
            content = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
        data = content.encode("utf-8")
        append = inputs.get("mode", "overwrite") == "append"

        try:
            real.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ActionError(f"cannot create the directory of '{shown}': {exc.strerror}", retryable=False) from None
        try:
            if append:
                fd = _open_confined(real, root, shown, os.O_RDWR | os.O_CREAT | os.O_APPEND)
                try:
                    if not _append_once(fd, data, root, context.idempotency_key):
                        context.log(f"{shown}: already appended by an earlier attempt of this task run")
                        return {"path": shown, "bytes": 0}
                finally:
                    os.close(fd)
            else:
                _replace(real, root, shown, data, context.idempotency_key)
        except OSError as exc:
            raise ActionError(f"cannot write '{shown}': {exc.strerror}", retryable=False) from None
        context.log(f"{'appended' if append else 'wrote'} {len(data)} bytes to {shown}")
        return {"path": shown, "bytes": len(data)}


class FileRead(Action):
    name = "file.read"
    title = "Read file"
    description = (
        "Reads a UTF-8 text file under the files root. Output: content (text) and json (the parsed content when "
        "it is valid JSON, else null)."
    )
    input_schema = {
        "type": "object",
        "properties": {"path": _PATH},
        "required": ["path"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "content": {"type": "string"},
            "json": {"description": "The parsed content when the file holds JSON, else null"},
        },
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        root = _root(context)
        real, shown = confine(inputs["path"], root)
        fd = _open_confined(real, root, shown, os.O_RDONLY)
        try:
            with os.fdopen(fd, "rb") as handle:
                data = handle.read(MAX_READ_BYTES + 1)
        except OSError as exc:
            raise ActionError(f"cannot read '{shown}': {exc.strerror}", retryable=False) from None
        if len(data) > MAX_READ_BYTES:
            raise _refuse(f"file '{shown}' is larger than {MAX_READ_BYTES} bytes")
        try:
            content = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _refuse(f"file '{shown}' is not UTF-8 text (byte {exc.start})") from None
        try:
            parsed = json.loads(content, parse_constant=_not_json)
        except ValueError:
            parsed = None
        context.log(f"read {len(data)} bytes from {shown}")
        return {"path": shown, "content": content, "json": parsed}
