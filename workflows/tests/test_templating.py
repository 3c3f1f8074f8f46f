import pytest

from workflows.templating import TemplateRenderError, render_value

CONTEXT = {"steps": {"fetch_user": {"output": {"json": {"email": "a@b.c", "tags": [1, 2]}}}},
           "trigger": {"body": {"name": "x; touch /tmp/pwn"}}}


def test_single_expression_keeps_its_native_type():
    assert render_value("{{ steps.fetch_user.output.json }}", CONTEXT) == {"email": "a@b.c", "tags": [1, 2]}


def test_mixed_text_renders_to_a_string():
    assert render_value("to {{ steps.fetch_user.output.json.email }}", CONTEXT) == "to a@b.c"


def test_nested_structures_are_resolved_recursively():
    value = {"a": ["{{ steps.fetch_user.output.json.tags | length }}", {"b": "{{ trigger.body.name }}"}]}
    assert render_value(value, CONTEXT) == {"a": [2, {"b": "x; touch /tmp/pwn"}]}


def test_missing_value_names_the_expression_and_input_path():
    with pytest.raises(TemplateRenderError) as caught:
        render_value({"to": "{{ steps.fetch_user.output.nme }}"}, CONTEXT, "inputs")
    assert str(caught.value) == "inputs.to: steps.fetch_user.output.nme is undefined"


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ 'a' * 100000000 }}",
    "{{ {}.update(x=1) }}",
])
def test_sandbox_refuses_escapes_and_huge_values(payload):
    with pytest.raises(TemplateRenderError):
        render_value(payload, CONTEXT)


def test_shell_quoting_keeps_injected_text_as_data():
    assert render_value("echo {{ trigger.body.name }}", CONTEXT, shell_quote=True) == "echo 'x; touch /tmp/pwn'"
