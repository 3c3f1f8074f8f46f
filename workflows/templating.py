"""`{{ ... }}` data mapping: Jinja2 in an immutable sandbox with strict undefined. No Django import.

- A string that is exactly one expression keeps the expression's native type; anything else renders to text.
  Otherwise the syntax and the results are plain Jinja2's (whitespace control included), except where
  `tests/test_templating_jinja_parity.py` lists a deliberate difference.
- Values are resolved recursively through dicts and lists.
- A missing value fails with the expression's path, below list indexes too (`steps.a.output.rows[0].nme is
  undefined`), wherever it hides: inside a list or dict the template builds, or an item of `map(attribute=...)`.
- A data key shadows a dict method only when the key exists; otherwise `.get()`, `.items()`, `.keys()` and
  `.values()` work as in Jinja2. A method, function or generator is not a value: rendering one fails.
- A native result that is not JSON data fails naming the expression.
- In shell commands each `{{ }}` is escaped for where it lands (workflows/shellquote.py).
- Bounded (SPEC §11): no value a template builds, and no rendered value, passes MAX_RENDERED_BYTES; the
  filters, methods and operators that can amplify their input are checked *before* they run, so the worker never
  holds the huge value. A deadline (the task's timeout) is checked cooperatively in every call, lookup,
  intercepted operator, loop step and output piece, so a render abandoned by the executor stops by itself.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
import re
import secrets
import string
import time
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from markupsafe import Markup

from .limits import MAX_RENDERED_BYTES, LimitExceeded, check_storable, json_size
from .shellquote import ShellQuoteError, assemble

_MARKERS = ("{{", "{%", "{#")
_LIMIT_TEXT = f"{MAX_RENDERED_BYTES:,} bytes"
_SNIPPET_LENGTH = 100
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("template_deadline", default=None)
# The values of one shell command's `{{ }}`s, in order; the rendered text holds a numbered token for each.
_shell_values: contextvars.ContextVar[tuple[str, list[str]] | None] = contextvars.ContextVar(
    "template_shell_values", default=None)


class TemplateRenderError(Exception):
    """A template could not be rendered (syntax, missing value, sandbox violation, size limit, deadline)."""


class _NotAValue(TemplateError):
    """The template rendered something that is not data: a method, a function, a generator."""


class _StrictUndefined(StrictUndefined):
    """Also refuses `repr`, so an undefined value inside a list or dict cannot be printed as `Undefined`."""

    __slots__ = ()
    __repr__ = StrictUndefined._fail_with_undefined_error


class _TooLarge(SecurityError):
    def __init__(self, what: str):
        super().__init__(f"{what} would build a value larger than {_LIMIT_TEXT}")


class _PastDeadline(SecurityError):
    pass


def _check_deadline() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise _PastDeadline("timed out: rendering passed the task's timeout")


@contextlib.contextmanager
def _deadline_scope(deadline: float | None) -> Iterator[None]:
    token = _deadline.set(deadline) if deadline is not None else None
    try:
        yield
    finally:
        if token is not None:
            _deadline.reset(token)


# --- size estimates, computed before the amplifying operation runs --------------------------------------------

def _size(value: Any) -> int:
    """Characters `value` takes as text; containers by their JSON size, counted without building it."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, _TrackedList):
        value = list(list.__iter__(value))  # measured without tracking every item
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return json_size(list(value) if isinstance(value, (set, frozenset)) else value,
                         stop_after=MAX_RENDERED_BYTES)
    return len(repr(value)) if isinstance(value, (int, float)) else 64


def _bound(estimate: int, what: str) -> None:
    if estimate > MAX_RENDERED_BYTES:
        raise _TooLarge(what)


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")


def _printf_estimate(fmt: str, args: Any) -> int:
    values = list(args.values()) if isinstance(args, Mapping) else list(args) if isinstance(args, tuple) else [args]
    widths = sum(int(n) for match in _PRINTF_SPEC.finditer(fmt) for n in match.groups() if n and n != "*")
    starred = fmt.count("*") and sum(abs(_int(v)) for v in values)
    return len(fmt) + widths + starred + sum(_size(v) for v in values)


def _format_estimate(fmt: str, args: tuple, kwargs: Mapping) -> int:
    widths = 0
    try:
        for _, _, spec, _ in string.Formatter().parse(fmt):
            widths += sum(int(n) for n in re.findall(r"\d+", spec or ""))
            if spec and "{" in spec:
                widths += sum(abs(_int(v)) for v in (*args, *kwargs.values()))
    except ValueError:
        pass  # str.format raises the same error itself
    return len(fmt) + widths + sum(_size(v) for v in (*args, *kwargs.values()))


def _replace_estimate(s: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not all(isinstance(x, str) for x in (s, old, new)):
        return _size(s)
    hits = (len(s) + 1) if old == "" else s.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(len(new) - len(old), 0)


def _join_estimate(items: Any, separator: Any) -> int:
    if not isinstance(items, (list, tuple, str, dict, set, frozenset, range, _Range)):
        return 0  # a generator: its items are bounded where they were made, the result checked after
    total = 0
    for item in items:
        total += _size(item) + _size(separator)
        if total > MAX_RENDERED_BYTES:
            break
    return total


def _wordwrap_estimate(s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
                       *_: Any, **__: Any) -> int:
    text = str(s)
    wrap = len(wrapstring) if isinstance(wrapstring, str) else 1
    return len(text) + (len(text) // max(_int(width, 79), 1) + 1) * wrap


def _indent_estimate(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    text = str(s)
    per_line = len(width) if isinstance(width, str) else abs(_int(width, 4))
    return len(text) + (text.count("\n") + 1) * per_line


def _tojson_estimate(value: Any, indent: Any = None) -> int:
    size = json_size(value, stop_after=MAX_RENDERED_BYTES)
    step = len(indent) if isinstance(indent, str) else abs(_int(indent))
    return size + (size * step * 8 if step else 0)  # a rough upper bound: each item on its own, indented line


def _width_estimate(s: Any, width: Any = 0, *_: Any) -> int:
    return max(_size(s), abs(_int(width)))


def _lipsum_estimate(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> int:  # noqa: A002
    return abs(_int(n, 5)) * abs(_int(max, 100)) * 16


def _bounded_lipsum(lipsum: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(lipsum)
    def bounded(*args: Any, **kwargs: Any) -> str:
        _bound(_lipsum_estimate(*args, **kwargs), "lipsum")
        return lipsum(*args, **kwargs)

    return bounded


# Filters whose output can be much larger than their input: estimated from the arguments before they run.
_FILTER_ESTIMATES: dict[str, Callable[..., int]] = {
    "replace": _replace_estimate,
    "format": lambda fmt, *args, **kwargs: _printf_estimate(str(fmt), args or kwargs),
    "center": _width_estimate,
    "indent": _indent_estimate,
    "wordwrap": _wordwrap_estimate,
    "join": lambda value, d="", attribute=None: _join_estimate(value, d),
    "tojson": _tojson_estimate,
    "sum": lambda iterable, attribute=None, start=0: _size(start) + _join_estimate(iterable, ""),
}
# Methods reached through the sandbox's `call`, keyed by (type, name).
_METHOD_ESTIMATES: dict[tuple[type, str], Callable[..., int]] = {
    (str, "replace"): _replace_estimate,
    (str, "format"): lambda fmt, *args, **kwargs: _format_estimate(fmt, args, kwargs),
    (str, "format_map"): lambda fmt, mapping: _format_estimate(fmt, (), mapping if isinstance(mapping, Mapping)
                                                                else {}),
    (str, "center"): _width_estimate,
    (str, "ljust"): _width_estimate,
    (str, "rjust"): _width_estimate,
    (str, "zfill"): _width_estimate,
    (str, "expandtabs"): lambda s, tabsize=8: len(s) + s.count("\t") * abs(_int(tabsize, 8)),
    (str, "join"): lambda separator, items: _join_estimate(items, separator),
}
# Filters that never turn a container into text, so a container argument need not be measured first.
_STRUCTURAL_FILTERS = frozenset({
    "abs", "attr", "batch", "bool", "count", "d", "default", "dictsort", "first", "float", "groupby", "int",
    "items", "last", "length", "list", "map", "max", "min", "reject", "rejectattr", "reverse", "round", "select",
    "selectattr", "slice", "sort", "unique", "random",
})


def _strip_pass_arg(function: Callable, args: tuple) -> tuple:
    return args[1:] if getattr(function, "jinja_pass_arg", None) is not None else args


def _bounded_filter(name: str, function: Callable) -> Callable:
    estimate = _FILTER_ESTIMATES.get(name)
    measure_containers = name not in _STRUCTURAL_FILTERS

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        own = _strip_pass_arg(function, args)
        if estimate is not None:
            _bound(estimate(*own, **kwargs), f"the `{name}` filter")
        elif measure_containers and own:
            _bound(_size(own[0]), f"the `{name}` filter")
        result = function(*args, **kwargs)
        if isinstance(result, str):
            _bound(len(result), f"the `{name}` filter")
        return result

    return bounded


class _Range:
    """`range` for templates: at most MAX_RANGE items, and every step checks the deadline."""

    def __init__(self, *args: int):
        self._range = range(*args)
        if len(self._range) > MAX_RANGE:
            raise _TooLarge(f"range of {len(self._range):,} items (at most {MAX_RANGE:,})")

    def __iter__(self) -> Iterator[int]:
        for value in self._range:
            _check_deadline()
            yield value

    def __reversed__(self) -> Iterator[int]:
        for value in reversed(self._range):
            _check_deadline()
            yield value

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: Any) -> Any:
        return self._range[index]

    def __contains__(self, value: Any) -> bool:
        return value in self._range

    def __repr__(self) -> str:
        return repr(self._range)


_Range.__name__ = _Range.__qualname__ = "range"


class _CodeGenerator(CodeGenerator):
    """Routes `a ~ b` through the environment's bounded `concat` and every `for` loop through its iterator."""

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Any) -> None:
        node.iter = nodes.Call(nodes.EnvironmentAttribute("iterate"), [node.iter], [], None, None)
        super().visit_For(node, frame)


class _ShellCodeGenerator(_CodeGenerator):
    """Every `{{ }}` written into the command becomes a token for its value (escaped once the command's text is
    known); inside `{% set %}` blocks and macros values stay raw, since their result is one value again."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, nodes.TemplateData):
            raise nodes.Impossible()  # a constant `{{ 'a b' }}` is a value too, not command text
        return super()._output_child_to_const(node, frame, finalize)

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("str(environment.finalize(" if frame.buffer is not None else "str(environment.shell_token(")

    def start_write(self, frame: Frame, node: nodes.Node | None = None) -> None:
        if frame.buffer is None:  # a filter block, call block or recursive loop would write values as command text
            self.fail("`{% filter %}`, `{% call %}` and recursive loops cannot write into a shell command; "
                      "capture them with `{% set name %}...{% endset %}` and use `{{ name }}`",
                      node.lineno if node is not None else None)
        super().start_write(frame, node)


class _Tracked(dict):
    """A dict that knows its path in the context, so a missing key can be named in full."""

    __slots__ = ("_path",)

    def __init__(self, data: Mapping, path: str):
        super().__init__(data)
        self._path = path

    def get(self, key: Any, default: Any = None) -> Any:
        return _track(dict.__getitem__(self, key), _join(self._path, key)) if key in self else default


class _TrackedList(list):
    """A list that knows its path; its items (by index or in a loop or filter) know theirs."""

    __slots__ = ("_path",)

    def __init__(self, data: list, path: str):
        super().__init__(data)
        self._path = path

    def __iter__(self) -> Iterator[Any]:
        for index, item in enumerate(list.__iter__(self)):
            yield _track(item, f"{self._path}[{index}]")


def _join(path: str, key: Any) -> str:
    if isinstance(key, str):
        return f"{path}.{key}"
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}[{key!r}]"


def _track(value: Any, path: str) -> Any:
    if type(value) is dict:
        return _Tracked(value, path)
    if type(value) is list:
        return _TrackedList(value, path)
    return value


def _untrack(value: Any) -> Any:
    """A native result as plain data: tracked containers hold raw data, so a shallow copy is enough for them."""
    if isinstance(value, Markup):
        return str(value)
    if isinstance(value, _Tracked):
        return dict(value)
    if isinstance(value, _TrackedList):
        return list(list.__iter__(value))
    if isinstance(value, dict):
        return {k: _untrack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untrack(v) for v in value]
    return value


def _not_a_value(value: Any) -> str | None:
    if isinstance(value, (types.GeneratorType, Iterator)):
        return "gives a generator, not a value: add `|list`"
    if callable(value):
        name = getattr(value, "__name__", type(value).__name__)
        kind = "method" if getattr(value, "__self__", None) is not None else "function"
        return f"gives `{name}`, a {kind}, not a value: call it, `{name}()`"
    return None


def _not_json(value: Any) -> Any:
    """`tojson`'s fallback: an undefined value says which; anything else is not JSON data."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    problem = _not_a_value(value)
    raise _NotAValue(problem) if problem else TypeError(f"a {type(value).__name__} object is not JSON data")


def _reject_non_values(value: Any) -> None:
    """Fail on an undefined value, a method, a function or a generator anywhere inside `value`."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, (str, int, float, _Tracked, _TrackedList)) or node is None:
            continue  # scalars, and tracked containers, which hold the context's data as it was given
        if isinstance(node, Undefined):
            node._fail_with_undefined_error()
        if isinstance(node, dict):
            stack.extend(reversed(node.values()))  # reversed: the first problem is the one reported
        elif isinstance(node, (list, tuple)):
            stack.extend(reversed(node))
        else:
            problem = _not_a_value(node)
            if problem:
                raise _NotAValue(problem)


class _Environment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, function) for name, function in self.filters.items()}
        self.globals["range"] = _Range
        self.globals["lipsum"] = _bounded_lipsum(self.globals["lipsum"])
        self.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _not_json}

    def concat(self, pieces: Any) -> str:  # type: ignore[override] - every buffer join and `~`, bounded
        texts, total = [], 0
        for piece in pieces:
            _check_deadline()
            if not isinstance(piece, str):
                _reject_non_values(piece)
                _bound(_size(piece), "the template")
                piece = str(piece)
            total += len(piece)
            _bound(total, "the template")
            texts.append(piece)
        return "".join(texts)

    def iterate(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            _check_deadline()
            yield item

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_deadline()
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        estimate = _METHOD_ESTIMATES.get((type(owner), getattr(method, "__name__", "")))
        if estimate is not None:
            _bound(estimate(owner, *args, **kwargs), f"`{method.__name__}`")
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str):
            _bound(len(result), f"`{getattr(method, '__name__', 'the call')}`")
        return result

    def call_binop(self, context, operator_name, left, right):
        _check_deadline()
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    _bound(_size(seq) * max(count, 0), "`*`")
            return operator.mul(left, right)
        if operator_name == "**":
            if isinstance(right, (int, float)) and abs(right) > 1000:
                raise SecurityError("exponent too large in template")
            return operator.pow(left, right)
        if operator_name == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _bound(_size(left) + _size(right), "`+`")
            return operator.add(left, right)
        if operator_name == "%":
            if isinstance(left, str):
                _bound(_printf_estimate(left, right), "`%` formatting")
            return operator.mod(left, right)
        return super().call_binop(context, operator_name, left, right)

    def _tracked_lookup(self, obj: _Tracked | _TrackedList, key: Any, default_lookup: Callable) -> Any:
        path = _join(obj._path, key)
        if isinstance(obj, _Tracked) and isinstance(key, (str, int, float, bool)) and key in obj:
            return _track(dict.__getitem__(obj, key), path)
        if isinstance(obj, _TrackedList) and isinstance(key, int):
            try:
                return _track(list.__getitem__(obj, key), path)
            except IndexError:
                return self.undefined(hint=f"{path} is undefined")
        methods_of = dict if isinstance(obj, _Tracked) else list
        if isinstance(key, str) and not key.startswith("_") and not hasattr(methods_of, key):
            return self.undefined(hint=f"{path} is undefined")  # neither data nor a dict/list method
        value = default_lookup(obj, key)  # a method (`items`, `index`), or a slice of a list
        return self.undefined(hint=f"{path} is undefined") if isinstance(value, Undefined) else value

    def _lookup(self, obj, key, default_lookup, *, attribute: bool):
        _check_deadline()
        if isinstance(obj, (_Tracked, _TrackedList)):
            return self._tracked_lookup(obj, key, default_lookup)
        if isinstance(obj, Mapping) and hasattr(obj, "path") and isinstance(key, str):
            try:
                return obj[key]
            except KeyError:
                return self.undefined(hint=f"{obj.path}.{key} is undefined")
        if attribute and isinstance(obj, dict) and isinstance(key, str) and key in obj:
            return obj[key]  # a key shadows a method of the same name (Jinja2 would give the method)
        return default_lookup(obj, key)

    def getattr(self, obj, attribute):
        return self._lookup(obj, attribute, super().getattr, attribute=True)

    def getitem(self, obj, argument):
        return self._lookup(obj, argument, super().getitem, attribute=False)


class _ShellEnvironment(_Environment):
    code_generator_class = _ShellCodeGenerator

    def shell_token(self, value: Any) -> str:
        """A `{{ }}` of a shell command: its text is kept aside and a token stands in the command for it."""
        nonce, values = _shell_values.get()
        values.append(_expand_tokens(str(self.finalize(value))))
        return f"\x00{nonce}.{len(values) - 1}\x00"


_TOKEN = re.compile(r"\x00(\d+)\.(\d+)\x00")


def _expand_tokens(text: str) -> str:
    """Raw values for the tokens in `text` (a captured block printed again is one value)."""
    if "\x00" not in text:
        return text
    nonce, values = _shell_values.get()
    return _TOKEN.sub(lambda m: values[int(m[2])] if m[1] == nonce else m[0], text)


def _finalize(value: Any) -> Any:
    _check_deadline()
    if not isinstance(value, str):
        _reject_non_values(value)
        _bound(_size(value), "the template")
    return value


_OPTIONS: dict[str, Any] = {"undefined": _StrictUndefined, "autoescape": False, "keep_trailing_newline": True,
                            "finalize": _finalize}
_env = _Environment(**_OPTIONS)
# For inputs that a shell interprets: every `{{ value }}` is escaped for where it lands in the command.
_shell_env = _ShellEnvironment(**_OPTIONS)


def has_template(value: Any) -> bool:
    return isinstance(value, str) and any(marker in value for marker in _MARKERS)


def _tracked_context(context: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _track(value, name) for name, value in context.items()}


def _snippet(source: str) -> str:
    text = source.strip()
    return text if len(text) <= _SNIPPET_LENGTH else text[:_SNIPPET_LENGTH] + "…"


def _single_expression(template: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is one `{{ }}` and whitespace, as Jinja2 parsed it."""
    if len(template.body) != 1 or not isinstance(template.body[0], nodes.Output):
        return None
    children = template.body[0].nodes
    expressions = [child for child in children if not isinstance(child, nodes.TemplateData)]
    if len(expressions) != 1:
        return None
    if any(isinstance(child, nodes.TemplateData) and child.data.strip() for child in children):
        return None
    return expressions[0]


def _native(source: str, template: Template, variables: dict[str, Any]) -> Any:
    result = TemplateExpression(template, undefined_to_none=False)(**variables)
    _reject_non_values(result)
    if _size(result) > MAX_RENDERED_BYTES:
        raise TemplateRenderError(f"the value is larger than {_LIMIT_TEXT}")
    result = _untrack(result)
    try:
        check_storable(result)
    except LimitExceeded as exc:
        where = f" at {exc.path}" if exc.path else ""
        hint = "; add `|list`" if re.search(r"\ba (range|dict_\w+) object", exc.message) else ""
        raise TemplateRenderError(f"{exc.message}: `{_snippet(source)}` gives it{where}{hint}") from None
    return result


def _render_shell(template: Template, variables: dict[str, Any]) -> str:
    nonce, values = str(secrets.randbelow(10**12)), []
    token = _shell_values.set((nonce, values))
    try:
        text = template.render(**variables)
    finally:
        _shell_values.reset(token)
    parts = _TOKEN.split(text)  # text, nonce, index, text, nonce, index, ..., text
    texts, indexes = parts[0::3], parts[2::3]
    if any(part != nonce for part in parts[1::3]) or any("\x00" in part for part in (*texts, *values)):
        raise TemplateRenderError("the command contains a NUL character")
    try:
        command = assemble(texts, [values[int(index)] for index in indexes], on_progress=_check_deadline)
    except ShellQuoteError as exc:
        raise TemplateRenderError(str(exc)) from None
    if len(command) > MAX_RENDERED_BYTES:
        raise TemplateRenderError(f"the command is larger than {_LIMIT_TEXT}")
    return command


def _render(source: str, context: Mapping[str, Any], shell_quote: bool) -> Any:
    variables = _tracked_context(context)
    kind, template = (_compiled if len(source) <= _CACHED_SOURCE_CHARS else _compile)(source, shell_quote)
    if kind == "shell":
        return _render_shell(template, variables)
    if kind == "native":
        return _native(source, template, variables)
    return template.render(**variables)


# Parsing and compiling a template costs several times its render, and a task renders the same sources in run
# after run: compiled templates are kept per process (they hold no context; the deadline and the shell-quoting
# nonce are read at render time). Long sources are compiled each time, so the cache stays small.
_CACHED_SOURCE_CHARS = 2000


def _compile(source: str, shell_quote: bool) -> tuple[str, Template]:
    """("shell" | "native" | "text", the compiled template): a lone `{{ }}` keeps its value's type (native)."""
    parsed = (_shell_env if shell_quote else _env).parse(source)
    if shell_quote:
        return "shell", _shell_env.from_string(parsed)
    expression = _single_expression(parsed)
    if expression is not None:
        body = [nodes.Assign(nodes.Name("result", "store"), expression, lineno=expression.lineno)]
        return "native", _env.from_string(nodes.Template(body, lineno=1))
    return "text", _env.from_string(parsed)


_compiled = functools.lru_cache(maxsize=1024)(_compile)


def render_string(source: str, context: Mapping[str, Any], *, shell_quote: bool = False,
                  deadline: float | None = None) -> Any:
    """Render one template string; `deadline` (time.monotonic()) stops the render once passed."""
    if not has_template(source):
        return source
    try:
        with _deadline_scope(deadline):
            return _render(source, context, shell_quote)
    except UndefinedError as exc:
        raise TemplateRenderError(str(exc)) from None
    except _NotAValue as exc:
        raise TemplateRenderError(f"`{_snippet(source)}` {exc}") from None
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"template syntax error: {exc.message}") from None
    except _PastDeadline as exc:
        raise TemplateRenderError(str(exc)) from None
    except SecurityError as exc:
        raise TemplateRenderError(f"refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise TemplateRenderError(str(exc)) from None
    except RecursionError:
        raise TemplateRenderError("the template is nested too deeply") from None
    except MemoryError:
        raise TemplateRenderError(f"the template would build a value larger than {_LIMIT_TEXT}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from None


def render_value(value: Any, context: Mapping[str, Any], path: str = "", *, shell_quote: bool = False,
                 deadline: float | None = None) -> Any:
    """Render every template inside `value`; errors name the path (`inputs.url: ... is undefined`)."""
    if isinstance(value, str):
        try:
            return render_string(value, context, shell_quote=shell_quote, deadline=deadline)
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{path}: {exc}" if path else str(exc)) from None
    if isinstance(value, dict):
        return {k: render_value(v, context, f"{path}.{k}" if path else str(k), shell_quote=shell_quote,
                                deadline=deadline)
                for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, f"{path}[{i}]", shell_quote=shell_quote, deadline=deadline)
                for i, v in enumerate(value)]
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
        except RecursionError:
            return [(path, "template syntax error: nested too deeply")]
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


def template_variables(value: Any) -> set[str]:
    """The top-level names the templates inside `value` read (`item`, `steps`, ...); unparsable ones read none."""
    if isinstance(value, str):
        if not has_template(value):
            return set()
        try:
            return set(meta.find_undeclared_variables(_env.parse(value)))
        except (TemplateSyntaxError, RecursionError):
            return set()
    if isinstance(value, dict):
        return set().union(*(template_variables(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(template_variables(v) for v in value))
    return set()
