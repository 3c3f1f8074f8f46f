"""slack.post_message with the workflow owner's Slack connection (the token service of connectors.oauth2).

Importable without Django set up (the definition validator reads the schema); settings and the token service
are used in `execute` only.
"""
from __future__ import annotations

from connectors.base import Action, ActionContext

from . import client

TIMEOUT = 30.0

CONNECTION = {
    "type": "string",
    "title": "Connection",
    "description": "One of the workflow owner's Slack connections, as 'slack:<login>' (or just the login); "
                   "defaults to the owner's only Slack connection.",
    "minLength": 1,
    "maxLength": 140,
    "default": "slack",
}


class PostMessage(Action):
    name = "slack.post_message"
    title = "Slack: post a message"
    description = (
        "Posts a message to a Slack channel with the workflow owner's connected Slack account. Output: the "
        "channel id and the message's ts. Slack's {\"ok\": false, \"error\"} fails the task with that error."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "connection": CONNECTION,
            "channel": {"type": "string", "title": "Channel", "minLength": 1, "maxLength": 200,
                        "description": "A channel id (C0123...), #name, or a user id for a direct message"},
            "text": {"type": "string", "title": "Text", "minLength": 1, "maxLength": 40000,
                     "description": "The message (Slack mrkdwn); with blocks, the notification's fallback text"},
            "blocks": {"type": "array", "title": "Blocks", "items": {"type": "object"}, "maxItems": 50,
                       "description": "Block Kit blocks (https://api.slack.com/block-kit)"},
        },
        "required": ["channel", "text"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {"channel": {"type": "string"}, "ts": {"type": "string"}},
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        # Imported here so the schema stays readable without Django set up (settings, the accounts' models).
        from django.conf import settings

        from connectors.oauth2.tokens import authorized_request

        method = "chat.postMessage"
        body = client.chat_post_message_body(channel=inputs["channel"], text=inputs["text"],
                                             blocks=inputs.get("blocks"))
        timeout = min(TIMEOUT, float(context.timeout))

        def send(token: str):
            return client.call(api_url=settings.SLACK_API_URL, method=method, token=token, body=body,
                               config=context.config, timeout=timeout)

        response = authorized_request(context.owner_id, inputs.get("connection") or "slack", send,
                                      provider="slack", is_rejected=client.token_rejected)
        answer = client.answer_json(response, method)
        if answer.get("ok") is not True:
            raise client.SlackError(method, str(answer.get("error") or f"HTTP {response.status_code}"),
                                    output={"error": answer.get("error")})
        context.log(f"posted to {answer.get('channel')} (ts {answer.get('ts')})")
        return {"channel": answer.get("channel"), "ts": answer.get("ts")}
