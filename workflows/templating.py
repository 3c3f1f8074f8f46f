"""`{{ ... }}` data mapping: Jinja2 in an immutable sandbox with strict undefined. No Django import.

- A string that is exactly one expression keeps the expression's native type; anything else renders to text.
- Values are resolved recursively through dicts and lists.
- A missing value fails with the expression's path: `steps.fetch_user.output.nme is undefined`.
"""
from __future__ import annotations

import operator
import shlex
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined
from markupsafe import Markup
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_STRING = 1024 * 1024  # the largest string or list a template may build
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
_MARKERS = ("{{", "{%", "{#")


class TemplateRenderError(Exception):
    """A template could not be rendered (syntax, missing value, sandbox violation, size limit)."""


class _Tracked(dict):
    """A dict that knows its path in the context, so a missing key can be named in full."""

    __slots__ = ("path",)

    def __init__(self, data: Mapping, path: str):
        super().__init__(data)
        self.path = path


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context, operator_name, left, right):
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    if len(seq) * max(count, 0) > MAX_STRING:
                        raise SecurityError("template would build a value larger than 1 MiB")
            return operator.mul(left, right)
        if operator_name == "**":
            if isinstance(right, (int, float)) and abs(right) > 1000:
                raise SecurityError("exponent too large in template")
            return operator.pow(left, right)
        return super().call_binop(context, operator_name, left, right)

    def _lookup(self, obj, key, default_lookup):
        if isinstance(obj, _Tracked):
            path = f"{obj.path}.{key}" if isinstance(key, str) else f"{obj.path}[{key!r}]"
            if key not in obj:
                return self.undefined(hint=f"{path} is undefined")
            return _track(dict.__getitem__(obj, key), path)
        if isinstance(obj, Mapping) and hasattr(obj, "path") and isinstance(key, str):
            try:
                return obj[key]
            except KeyError:
                return self.undefined(hint=f"{obj.path}.{key} is undefined")
        return default_lookup(obj, key)

    def getattr(self, obj, attribute):
        return self._lookup(obj, attribute, super().getattr)

    def getitem(self, obj, argument):
        return self._lookup(obj, argument, super().getitem)


def _track(value: Any, path: str) -> Any:
    if isinstance(value, dict) and not isinstance(value, _Tracked):
        return _Tracked(value, path)
    return value


def _untrack(value: Any) -> Any:
    if isinstance(value, Markup):
        return str(value)
    if isinstance(value, _Tracked):
        return {k: _untrack(v) for k, v in dict.items(value)}
    if isinstance(value, list):
        return [_untrack(v) for v in value]
    return value


_env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
# For inputs that a shell interprets: every `{{ value }}` is quoted, so `; touch /tmp/pwn` stays data.
_shell_env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                          finalize=lambda value: shlex.quote(str(value)))


def has_template(value: Any) -> bool:
    return isinstance(value, str) and any(marker in value for marker in _MARKERS)


def _tracked_context(context: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _track(value, name) for name, value in context.items()}


def render_string(source: str, context: Mapping[str, Any], *, shell_quote: bool = False) -> Any:
    if not has_template(source):
        return source
    variables = _tracked_context(context)
    env = _shell_env if shell_quote else _env
    try:
        single = _SINGLE_EXPRESSION.match(source)
        if single and not shell_quote and not any(m in single.group("expr") for m in _MARKERS):
            result = _env.compile_expression(single.group("expr"), undefined_to_none=False)(**variables)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return _untrack(result)
        text = env.from_string(source).render(**variables)
    except UndefinedError as exc:
        raise TemplateRenderError(str(exc)) from None
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"template syntax error: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateRenderError(f"refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise TemplateRenderError(str(exc)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from None
    if len(text) > MAX_STRING:
        raise TemplateRenderError("template rendered to more than 1 MiB")
    return text


def render_value(value: Any, context: Mapping[str, Any], path: str = "", *, shell_quote: bool = False) -> Any:
    """Render every template inside `value`; errors name the path (`inputs.url: ... is undefined`)."""
    if isinstance(value, str):
        try:
            return render_string(value, context, shell_quote=shell_quote)
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{path}: {exc}" if path else str(exc)) from None
    if isinstance(value, dict):
        return {k: render_value(v, context, f"{path}.{k}" if path else str(k), shell_quote=shell_quote)
                for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, f"{path}[{i}]", shell_quote=shell_quote) for i, v in enumerate(value)]
    return value


def syntax_errors(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Templates that do not parse, as (path, message) pairs; used when a definition is saved."""
    if isinstance(value, str):
        if not has_template(value):
            return []
        try:
            _env.parse(value)
        except TemplateSyntaxError as exc:
            return [(path, f"template syntax error: {exc.message} (line {exc.lineno})")]
        return []
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in syntax_errors(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in syntax_errors(v, f"{path}[{i}]")]
    return []


def is_truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "none", "null", "off")
    return bool(value)
