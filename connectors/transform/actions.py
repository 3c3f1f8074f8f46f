"""transform.jinja: its `value` input is rendered by the engine like any input; the action hands it on."""
from __future__ import annotations

from connectors.base import Action, ActionContext


class TransformJinja(Action):
    name = "transform.jinja"
    title = "Transform data"
    description = (
        "Renders `value` (any JSON value; strings may hold {{ ... }} templates) and returns it as output.value."
    )
    input_schema = {
        "type": "object",
        "properties": {"value": {"description": "A template or a structure of templates to render"}},
        "required": ["value"],
        "additionalProperties": False,
    }
    output_schema = {"type": "object", "properties": {"value": {}}}

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        return {"value": inputs["value"]}
