"""SPEC §11: a template yields at most 1 MiB per value, refuses amplification before building it, and stops
by itself once the task's deadline has passed."""
from __future__ import annotations

import threading
import time
import tracemalloc

import pytest

from workflows.limits import MAX_RENDERED_BYTES
from workflows.templating import TemplateRenderError, render_value

CONTEXT = {"steps": {"a": {"output": {"body": "x" * 1000, "items": [1, 2, 3]}}}}
REF_BOMB = "{% set a = ['x' * 1000] * 1000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"


def refused(template: str, **options) -> str:
    with pytest.raises(TemplateRenderError) as caught:
        render_value(template, CONTEXT, "inputs.x", **options)
    return str(caught.value)


@pytest.mark.parametrize("template, what", [
    ("{{ ('a' * 1000000)|replace('a', 'a' * 100) }}", "the `replace` filter"),
    ("text {{ ('a' * 1000000)|replace('a', 'a' * 100) }}", "the `replace` filter"),
    ("{{ ('a' * 1000000).replace('a', 'a' * 100) }}", "`replace`"),
    ("{{ '%1000000000d'|format(1) }}", "the `format` filter"),
    ("{{ '%*d'|format(1000000000, 1) }}", "the `format` filter"),
    ("{{ '%1000000000d' % 1 }}", "`%` formatting"),
    ("{{ '{:>1000000000}'.format(1) }}", "`format`"),
    ("{{ '{:>{}}'.format(1, 1000000000) }}", "`format`"),
    ("{{ 'a'|center(1000000000) }}", "the `center` filter"),
    ("{{ 'a'.ljust(1000000000) }}", "`ljust`"),
    ("{{ 'a'.rjust(1000000000) }}", "`rjust`"),
    ("{{ ('\t' * 1000).expandtabs(1000000) }}", "`expandtabs`"),
    ("{{ ('a\n' * 500000)|indent(1000) }}", "the `indent` filter"),
    ("{{ ('a' * 1000000)|wordwrap(1, wrapstring='x' * 100) }}", "the `wordwrap` filter"),
    ("{% set s = 'a' * 1000000 %}{{ [s, s, s]|join }}", "the `join` filter"),
    ("{% set s = 'a' * 1000000 %}{{ ','.join([s, s]) }}", "`join`"),
    ("{{ ('a' * 1000000) ~ ('a' * 1000000) }}", "the template"),
    ("{{ ('a' * 1000000) + ('a' * 1000000) }}", "`+`"),
    ("{{ ['a' * 1000] * 2000 }}", "`*`"),
    (REF_BOMB + "{{ [b, b, b, b, b, b, b, b, b, b]|string }}", "the `string` filter"),
    ("{{ [['x' * 100000] * 10, ['x' * 100000] * 10] }}", "the value"),
    (REF_BOMB + "text {{ [b, b, b, b, b, b, b, b, b, b] }}", "the template"),
    (REF_BOMB + "{{ [b, b, b, b, b, b, b, b, b, b]|tojson }}", "the `tojson` filter"),
    ("{{ [1]|tojson(indent=100000000) }}", "the `tojson` filter"),
    ("{% set s = 'x' * 1000000 %}{% for i in range(1000) %}{{ s }}{% endfor %}", "the template"),
    ("{{ lipsum(100000) }}", "lipsum"),
])
def test_amplifying_templates_are_refused_before_the_value_is_built(template, what):
    tracemalloc.start()
    try:
        message = refused(template)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith((f"inputs.x: {what} ", f"inputs.x: refused by the sandbox: {what} ")), message
    assert "larger than 1,048,576 bytes" in message
    assert peak < 16 * 2**20


def test_ordinary_templates_still_render():
    assert render_value("{{ 'x'|replace('x', 'yy') }}-{{ '%s.%s'|format(1, 2) }}-{{ '{}'.format(3) }}",
                        CONTEXT) == "yy-1.2-3"
    assert render_value("{{ range(3)|list }}", CONTEXT) == [0, 1, 2]
    assert render_value("{{ range(4)|reverse|list }}", CONTEXT) == [3, 2, 1, 0]
    assert render_value("{% for i in range(3) %}{{ i }}{% endfor %}{{ 'a' ~ 1 }}", CONTEXT) == "012a1"
    assert render_value("{{ steps.a.output.items|join(',') }}", CONTEXT) == "1,2,3"
    assert render_value("{{ [[1], [2]]|sum(start=[]) }}", CONTEXT) == [1, 2]
    assert len(render_value("{{ 'a' * %d }}" % MAX_RENDERED_BYTES, CONTEXT)) == MAX_RENDERED_BYTES


def test_a_template_nested_too_deeply_is_an_error_not_a_recursion_error():
    assert "nested too deeply" in refused("{{ " + "[" * 400 + "]" * 400 + " }}")


def test_a_render_past_its_deadline_stops_by_itself():
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    message = refused(loop, deadline=started + 0.5)
    assert message == "inputs.x: timed out: rendering passed the task's timeout"
    assert time.monotonic() - started < 1.5


def test_a_loop_over_a_long_string_also_checks_the_deadline():
    loop = "{% for i in 'x' * 100000 %}{% for j in 'y' * 100000 %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    assert "timed out: rendering passed" in refused(loop, deadline=started + 0.5)
    assert time.monotonic() - started < 1.5


def test_an_abandoned_render_thread_ends_soon_after_the_deadline():
    loop = "{% for i in range(100000) %}{{ i|string }}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    errors = []

    def render():
        try:
            render_value(loop, CONTEXT, deadline=time.monotonic() + 0.3)
        except TemplateRenderError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=render, daemon=True)
    thread.start()
    thread.join(3)
    assert not thread.is_alive() and errors == ["timed out: rendering passed the task's timeout"]
