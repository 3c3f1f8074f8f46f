"""email.send inside a workflow, with its inputs mapped from upstream output and the payload, delivered to a
real SMTP server (aiosmtpd) on 127.0.0.1 through Django's SMTP backend."""
from __future__ import annotations

import email
import email.policy
from functools import partial

import pytest

from connectors.models import Secret
from connectors.platform import action_config
from connectors.registry import default_registry
from connectors.secrets import secret_value
from runs.executor import RecordingSecrets, execute_attempt, template_context
from runs.local import LocalRunner
from workflows.definition import compile_definition

from .smtp import smtp_server


class Inbox:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def messages(self):
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]


@pytest.fixture
def inbox(settings):
    inbox = Inbox()
    with smtp_server(inbox, settings):
        yield inbox


class Quiet:
    def plan(self, levels): pass
    def task_started(self, task_id, attempt): pass
    def task_finished(self, task_id, result, will_retry): pass
    def task_skipped(self, task_id, reason): pass


WORKFLOW = {"name": "welcome", "tasks": {
    "fetch_user": {"action": "transform.jinja", "inputs": {"value": {
        "email": "{{ trigger.body.email }}", "name": "{{ trigger.body.name | title }}"}}},
    "notify": {"action": "email.send", "depends_on": ["fetch_user"], "inputs": {
        "to": "{{ steps.fetch_user.output.value.email }}",
        "subject": "Welcome {{ steps.fetch_user.output.value.name }}",
        "body": "{{ trigger.body.message }}",
        "cc": ["audit@example.org"]}},
}}


def test_a_workflow_sends_the_mapped_message_through_smtp(inbox):
    registry = default_registry()
    spec = compile_definition(WORKFLOW, registry)

    result = LocalRunner(spec, registry=registry, config=action_config(), reporter=Quiet(), trigger={
        "body": {"email": "ada@example.org", "name": "ada lovelace", "message": "Glad you are here.\nBye."}}).run()

    assert result.status == "succeeded", result.tasks["notify"].error
    [envelope] = inbox.envelopes
    [message] = inbox.messages()
    assert envelope.mail_from == "flowforge@example.org"
    assert sorted(envelope.rcpt_tos) == ["ada@example.org", "audit@example.org"]
    assert message["Subject"] == "Welcome Ada Lovelace"
    assert message["To"] == "ada@example.org"
    assert message.get_content().replace("\r\n", "\n") == "Glad you are here.\nBye.\n"
    assert result.tasks["notify"].output == {"sent": 1, "message_id": message["Message-ID"]}


@pytest.mark.django_db
def test_a_secret_in_the_message_is_delivered_but_masked_in_what_is_stored(inbox, django_user_model):
    owner = django_user_model.objects.create_user("inviter", password="pw")
    Secret.objects.create(owner=owner, name="INVITE_CODE", value="invite-93af27")
    registry = default_registry()
    spec = compile_definition({"name": "invite", "tasks": {"notify": {"action": "email.send", "inputs": {
        "to": "ada@example.org", "subject": "Your code", "body": "Code: {{ secrets.INVITE_CODE }}"}}}}, registry)

    result = execute_attempt(spec.tasks["notify"], registry=registry, config=action_config(), run_id=7,
                             template_context=template_context(trigger={}, task_results={}, run={"id": 7},
                                                               secrets=RecordingSecrets(
                                                                   partial(secret_value, owner_id=owner.id))))

    assert result.status == "succeeded", result.error
    assert inbox.messages()[0].get_content().strip() == "Code: invite-93af27"
    assert result.inputs["body"] == "Code: ***"
    assert "invite-93af27" not in repr((result.output, result.logs, result.inputs, result.error))


def test_a_bad_recipient_from_the_payload_fails_the_task_at_input_validation(inbox):
    registry = default_registry()
    spec = compile_definition(WORKFLOW, registry)

    result = LocalRunner(spec, registry=registry, config=action_config(), reporter=Quiet(), trigger={
        "body": {"email": "not-an-address\r\nBcc: victim@example.org", "name": "x", "message": "hi"}}).run()

    assert result.status == "failed"
    assert result.tasks["notify"].error.startswith("to: ")
    assert inbox.envelopes == []
