"""Put template values into a /bin/sh command line so that each stays one inert piece of data. No Django import.

The command's own text is scanned the way the shell reads it, and each value is escaped for the place it lands:
- unquoted (also inside `$( )`): shlex-quoted, `echo {{ x }}` -> `echo 'a b'`;
- inside double quotes: `"`, `\\`, `$` and backtick are backslash-escaped, `echo "done: {{ x }}"` -> `done: a b`;
- inside single quotes: each `'` becomes `'\\''`, so the value cannot close the quotes.
Places where no escaping is safe on every /bin/sh (backticks, `${...}`, `$((...))`, `$'...'`, comments,
here-documents, right after `\\` or `$`) are refused with a message saying so, never guessed.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TOP, COMMAND, DOUBLE, SINGLE, BACKTICK, PARAMETER, ARITHMETIC, ANSI, COMMENT = (
    "top", "command", "double", "single", "backtick", "parameter", "arithmetic", "ansi", "comment")
_UNQUOTED = (TOP, COMMAND, PARAMETER, ARITHMETIC)
_SEPARATORS = frozenset(" \t\n;&|()<>")
# Runs of characters that change nothing but "are we at the start of a word", per context.
_PLAIN = {
    DOUBLE: re.compile(r'[^\\"`$]+'),
    SINGLE: re.compile(r"[^']+"),
    BACKTICK: re.compile(r"[^\\`]+"),
    ANSI: re.compile(r"[^\\']+"),
    COMMENT: re.compile(r"[^\n]+"),
}
_UNQUOTED_PLAIN = re.compile(r"[^\\'\"`$#<(){}\s;&|>]+")
_UNQUOTED_SEPARATORS = re.compile(r"(?:[ \t\n;&|>]|<(?!<))+")
_CASE = re.compile(r"case\s")
_PROGRESS_EVERY = 10_000  # scanning steps between calls of `on_progress`
_NOT_HERE = {
    BACKTICK: "inside backticks (use `$(...)`)",
    PARAMETER: "inside `${...}`",
    ARITHMETIC: "inside `$((...))`",
    ANSI: "inside `$'...'`",
    COMMENT: "inside a shell comment",
}


class ShellQuoteError(ValueError):
    """A value would land where it cannot be quoted safely."""


@dataclass
class _Frame:
    kind: str
    depth: int = 0  # unmatched `(` inside `$(...)` / `$((...))`


def _double_quoted(value: str) -> str:
    return re.sub(r'([\\"$`])', r"\\\1", value)


def _single_quoted(value: str) -> str:
    return value.replace("'", "'\\''")


_ESCAPES: dict[str, Callable[[str], str]] = {TOP: shlex.quote, COMMAND: shlex.quote, DOUBLE: _double_quoted,
                                             SINGLE: _single_quoted}


class _Scanner:
    """Follows the quoting context of static command text, piece by piece."""

    def __init__(self, on_progress: Callable[[], None] | None = None) -> None:
        self.on_progress = on_progress
        self.steps = 0
        self.stack = [_Frame(TOP)]
        self.word_start = True
        self.pending = ""  # "\\" or "$" when the text so far ends with one that would bind to the next value
        self.unsafe_after = ""  # a construct after which the scanner no longer trusts its context

    @property
    def kind(self) -> str:
        return self.stack[-1].kind

    def feed(self, text: str) -> None:
        self.pending = ""
        i = 0
        while i < len(text):
            i = self._step(text, i)
            self.steps += 1
            if self.on_progress is not None and self.steps % _PROGRESS_EVERY == 0:
                self.on_progress()

    def escape(self, value: str) -> str:
        if self.unsafe_after:
            raise ShellQuoteError(f"a `{{{{ }}}}` after {self.unsafe_after} cannot be quoted safely")
        if self.pending == "\\":
            raise ShellQuoteError("a `{{ }}` right after a backslash cannot be quoted safely")
        if self.pending == "$":
            raise ShellQuoteError("a `{{ }}` right after `$` cannot be quoted safely (it would expand)")
        if self.kind not in _ESCAPES:
            raise ShellQuoteError(f"a `{{{{ }}}}` {_NOT_HERE[self.kind]} cannot be quoted safely")
        self.word_start = False
        return _ESCAPES[self.kind](value)

    def _push(self, kind: str) -> None:
        self.stack.append(_Frame(kind))
        self.word_start = kind in (COMMAND, ARITHMETIC)

    def _pop(self) -> None:
        if len(self.stack) > 1:
            self.stack.pop()
        self.word_start = False

    def _step(self, text: str, i: int) -> int:
        kind = self.kind
        plain = _PLAIN.get(kind)
        if plain is not None:
            match = plain.match(text, i)
            if match:
                return match.end()
        if kind in _UNQUOTED:
            return self._unquoted(text, i)
        char = text[i]
        if kind == COMMENT:
            self._pop()
            self.word_start = True
        elif kind == SINGLE:
            self._pop()
        elif char == "\\":  # DOUBLE, BACKTICK, ANSI: a backslash escapes the next character
            if i + 1 == len(text):
                self.pending = "\\"
            return i + 2
        elif kind == DOUBLE and char == "$":
            return self._dollar(text, i)
        elif kind == DOUBLE and char == "`":
            self._push(BACKTICK)
        else:  # the closing `"`, backtick or `'`
            self._pop()
        return i + 1

    def _dollar(self, text: str, i: int) -> int:
        for opener, kind in (("$((", ARITHMETIC), ("$(", COMMAND), ("${", PARAMETER)):
            if text.startswith(opener, i):
                self._push(kind)
                return i + len(opener)
        if text.startswith("$'", i) and self.kind != DOUBLE:
            self._push(ANSI)
            return i + 2
        if i + 1 == len(text):
            self.pending = "$"
        self.word_start = False
        return i + 1

    def _unquoted(self, text: str, i: int) -> int:
        frame = self.stack[-1]
        if frame.kind == COMMAND and self.word_start and _CASE.match(text, i):
            self.unsafe_after = "`case` inside `$(...)`"
        match = _UNQUOTED_PLAIN.match(text, i)
        if match:
            self.word_start = False
            return match.end()
        match = _UNQUOTED_SEPARATORS.match(text, i)
        if match:
            self.word_start = True
            return match.end()
        char = text[i]
        if char == "\\":
            if i + 1 == len(text):
                self.pending = "\\"
            self.word_start = False
            return i + 2
        if char == "$":
            return self._dollar(text, i)
        if char in "'\"`":
            if char == "'" and frame.kind == PARAMETER and self._inside(DOUBLE):
                self.unsafe_after = "a `'` inside `\"${...}\"` (shells disagree on it)"
            self._push({"'": SINGLE, '"': DOUBLE, "`": BACKTICK}[char])
            return i + 1
        if char == "#" and self.word_start and frame.kind in (TOP, COMMAND):
            self._push(COMMENT)
            return i + 1
        if text.startswith("<<", i):
            self.unsafe_after = "a here-document (`<<`)"
            return i + 2
        return self._bracket(text, i, frame, char)

    def _bracket(self, text: str, i: int, frame: _Frame, char: str) -> int:
        if char == "(" and frame.kind in (COMMAND, ARITHMETIC):
            frame.depth += 1
        elif char == ")" and frame.kind in (COMMAND, ARITHMETIC) and frame.depth:
            frame.depth -= 1
        elif char == ")" and frame.kind == COMMAND:
            self._pop()
            return i + 1
        elif char == ")" and frame.kind == ARITHMETIC and text.startswith("))", i):
            self._pop()
            return i + 2
        elif char == "}" and frame.kind == PARAMETER:
            self._pop()
            return i + 1
        self.word_start = char in _SEPARATORS
        return i + 1

    def _inside(self, kind: str) -> bool:
        return any(frame.kind == kind for frame in self.stack[:-1])


def assemble(texts: Sequence[str], values: Sequence[str], *, on_progress: Callable[[], None] | None = None) -> str:
    """The command `texts[0] values[0] texts[1] ... texts[-1]`, each value escaped for where it lands.

    `texts` are the command's own text (len(values) + 1 of them); raises ShellQuoteError for a value placed
    where it cannot be made inert. `on_progress` is called every few thousand steps (a deadline check).
    """
    scanner = _Scanner(on_progress)
    out = [texts[0]]
    scanner.feed(texts[0])
    for value, text in zip(values, texts[1:], strict=True):
        out.append(scanner.escape(value))
        out.append(text)
        scanner.feed(text)
    return "".join(out)
