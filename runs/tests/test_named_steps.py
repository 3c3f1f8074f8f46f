"""A templated task reads only the results its templates name, when they name them statically."""
import pytest

from runs import foreach, services
from runs.models import TaskRun
from workflows.definition import TaskSpec
from workflows.services import workflow_save

from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice  # noqa: F401 - fixture


@pytest.mark.parametrize(("inputs", "named"), [
    ({"v": "{{ steps.a.output.x }} and {{ tasks['b'].status }}"}, {"a", "b"}),
    ({"v": ["{{ trigger.body }}", {"deep": "{{ steps.c.output | tojson }}"}]}, {"c"}),
    ({"v": "no template, though it says steps"}, set()),
    ({"v": "{{ trigger.body.x }}"}, set()),
    ({"v": "{{ steps[trigger.body.name] }}"}, None),  # a computed key: every result is read
    ({"v": "{% for s in steps %}{{ s }}{% endfor %}"}, None),
    ({"v": "{{ steps.a.output"}, None),  # does not parse: the render reports it, with every result at hand
])
def test_the_tasks_a_template_names(inputs, named):
    found = foreach.named_steps(TaskSpec(id="t", action="transform.jinja", inputs=inputs))
    assert found == (None if named is None else frozenset(named))


@pytest.mark.django_db
def test_a_templated_task_in_a_long_chain_reads_the_result_it_names(alice, broker_double):  # noqa: F811
    tasks = "".join(f"  t{i}: {{action: test.outcome, depends_on: [t{i - 1}], inputs: {{value: 'v{i}'}}}}\n" if i
                    else "  t0: {action: test.outcome, inputs: {value: first}}\n" for i in range(30))
    tasks += "  last: {action: test.outcome, depends_on: [t29], inputs: {value: '{{ steps.t0.output.value }}-" \
             "{{ tasks[\"t29\"].output.value }}'}}\n"
    run = broker_double.step(services.run_create, workflow=workflow_save(source=f"name: named\ntasks:\n{tasks}",
                                                                          owner=alice))
    broker_double.deliver_all()
    assert TaskRun.objects.get(run=run, task_id="last").output["value"] == "first-v29"
