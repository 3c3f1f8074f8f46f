"""example.ping: answers `{pong: message}`. Depends on nothing but Flowforge's Action contract."""
from connectors.base import Action, ActionContext


class Ping(Action):
    name = "example.ping"
    title = "Ping (example plug-in)"
    description = "Returns the message it was given as output.pong."
    input_schema = {
        "type": "object",
        "properties": {"message": {"type": "string", "description": "Any text"}},
        "required": ["message"],
        "additionalProperties": False,
    }
    output_schema = {"type": "object", "properties": {"pong": {"type": "string"}}}

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        context.log(f"pong: {inputs['message']}")
        return {"pong": inputs["message"]}
