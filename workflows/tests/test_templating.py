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


ROWS = {"x": 3, "steps": {"a": {"output": {"rows": [{"name": "n", "items": 5}, {"name": "m"}],
                                          "d": {"k": 1, "j": 2}}}}}


def refusal(template: str, context: dict = ROWS) -> str:
    with pytest.raises(TemplateRenderError) as caught:
        render_value(template, context, "inputs.v")
    return str(caught.value)


@pytest.mark.parametrize("template, rendered", [
    ("{{- x }}", 3),
    ("{{ x -}}", 3),
    ("{{- x -}}", 3),
    ("a {{- x }} b", "a3 b"),
    ("a {{ x -}} b", "a 3b"),
    ("a\n  {%- if x %} yes {% endif -%}\n b", "a yes b"),
    ("{{ x }} }}", "3 }}"),
    ("}} {{ x }}", "}} 3"),
    ("{{ x }}{{ x }}", "33"),
    ("  {{ x }}\n", 3),
])
def test_whitespace_control_and_stray_braces_render_as_in_jinja(template, rendered):
    assert render_value(template, ROWS) == rendered


@pytest.mark.parametrize("template, message", [
    ("{{ [steps.a.output.nme] }}", "inputs.v: steps.a.output.nme is undefined"),
    ("{{ {'k': steps.a.output.nme} }}", "inputs.v: steps.a.output.nme is undefined"),
    ("{{ steps.a.output.rows|map(attribute='nme')|list }}", "inputs.v: steps.a.output.rows[0].nme is undefined"),
    ("{{ [1, [2, {'k': steps.a.output.d.nme}]] }}", "inputs.v: steps.a.output.d.nme is undefined"),
    ("text {{ [steps.a.output.nme] }}", "inputs.v: steps.a.output.nme is undefined"),
    ("{{ [steps.a.output.nme]|string }}", "inputs.v: steps.a.output.nme is undefined"),
    ("{{ 'a' ~ [steps.a.output.nme] }}", "inputs.v: steps.a.output.nme is undefined"),
])
def test_a_missing_value_inside_a_list_or_dict_fails_the_render_naming_its_path(template, message):
    assert refusal(template) == message


@pytest.mark.parametrize("template, message", [
    ("{{ steps.a.output.rows[0].nme }}", "steps.a.output.rows[0].nme is undefined"),
    ("{{ steps.a.output.rows[1].name.x }}", "'str object' has no attribute 'x'"),
    ("{{ steps.a.output.rows[5] }}", "steps.a.output.rows[5] is undefined"),
    ("{{ steps.a.output.rows.0.nme }}", "steps.a.output.rows[0].nme is undefined"),
    ("{% for r in steps.a.output.rows %}{{ r.name.upper() }}{{ r.nme }}{% endfor %}",
     "steps.a.output.rows[0].nme is undefined"),
    ("{{ steps.a.output.d.get('k').nme }}", "'int object' has no attribute 'nme'"),
    ("{{ steps.a.output.rows|selectattr('nme')|list }}", "steps.a.output.rows[0].nme is undefined"),
])
def test_a_missing_key_below_a_list_index_names_the_whole_path(template, message):
    assert refusal(template) == f"inputs.v: {message}"


@pytest.mark.parametrize("template, rendered", [
    ("{{ steps.a.output.d.get('k') }}", 1),
    ("{{ steps.a.output.d.get('nme', 'none') }}", "none"),
    ("{{ steps.a.output.d.items()|list }}", [("k", 1), ("j", 2)]),
    ("{{ steps.a.output.d.keys()|list }}", ["k", "j"]),
    ("{{ steps.a.output.d.values()|list }}", [1, 2]),
    ("{% for k, v in steps.a.output.d.items() %}{{ k }}={{ v }};{% endfor %}", "k=1;j=2;"),
    ("{{ steps.a.output.d|dictsort }}", [("j", 2), ("k", 1)]),
    ("{{ steps.a.output.rows[0].items }}", 5),  # the key exists, so it shadows the method
    ("{{ {'items': 'data'}.items }}", "data"),
    ("{{ steps.a.output.rows[1].items()|list }}", [("name", "m")]),  # no such key: the method
])
def test_dict_methods_work_unless_a_key_of_the_same_name_exists(template, rendered):
    assert render_value(template, ROWS) == rendered


@pytest.mark.parametrize("template", [
    "{{ steps.a.output.rows[1].items }}",
    "{{ steps.a.output.d.get }}",
    "text {{ steps.a.output.d.keys }}",
    "{{ [steps.a.output.d.values] }}",
    "{{ 'abc'.upper }}",
    "{{ range }}",
])
def test_a_bare_method_is_an_error_never_a_stored_value(template):
    message = refusal(template)
    assert "not a value: call it" in message, message
    assert message.startswith(f"inputs.v: `{template}` gives `")


@pytest.mark.parametrize("template, message", [
    ("{{ range(3) }}", "a range object is not JSON data and cannot be stored: `{{ range(3) }}` gives it; "
                       "add `|list`"),
    ("{{ steps.a.output.d.items() }}", "a dict_items object is not JSON data and cannot be stored: "
                                       "`{{ steps.a.output.d.items() }}` gives it; add `|list`"),
    ("{{ [1, range(2)] }}", "a range object is not JSON data and cannot be stored: `{{ [1, range(2)] }}` gives "
                            "it at [1]; add `|list`"),
    ("{{ {1: 'a'} }}", "key 1 is not a string, which cannot be stored: `{{ {1: 'a'} }}` gives it"),
    ("{{ steps.a.output.rows|map(attribute='name') }}", "`{{ steps.a.output.rows|map(attribute='name') }}` "
                                                         "gives a generator, not a value: add `|list`"),
])
def test_a_value_that_is_not_json_fails_naming_the_expression(template, message):
    assert refusal(template) == f"inputs.v: {message}"


def test_internal_attributes_of_the_tracked_data_are_not_reachable():
    assert refusal("{{ steps.a.output.d._path }}") == "inputs.v: steps.a.output.d._path is undefined"
    assert refusal("{{ steps.a.output.d.path }}") == "inputs.v: steps.a.output.d.path is undefined"
    assert refusal("{{ steps.a.output.rows.path }}") == "inputs.v: steps.a.output.rows.path is undefined"
    assert render_value("{{ steps.a.output.rows }}", ROWS) == ROWS["steps"]["a"]["output"]["rows"]
    assert type(render_value("{{ steps.a.output.rows }}", ROWS)) is list
    assert type(render_value("{{ steps.a.output.rows[0] }}", ROWS)) is dict
