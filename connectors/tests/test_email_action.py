"""email.send through Django's SMTP backend to a real aiosmtpd server on 127.0.0.1 (no database needed)."""
from __future__ import annotations

import email
import email.policy

import jsonschema
import pytest

from automation.testing import free_port
from connectors.base import ActionError
from connectors.email.actions import EmailSend
from connectors.registry import ActionRegistry

from .smtp import smtp_server as serve_smtp


class Recorder:
    """Accepts everything, except recipients whose local part names an SMTP answer (`reject-550@...`)."""

    def __init__(self):
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject-"):
            code = local.split("-", 1)[1]
            return f"{code} {'try again later' if code.startswith('4') else 'no such mailbox'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp_server(settings):
    recorder = Recorder()
    with serve_smtp(recorder, settings):
        yield recorder


@pytest.fixture
def send(make_context):
    def send(inputs, **context_fields):
        jsonschema.validate(inputs, EmailSend.input_schema, cls=jsonschema.Draft202012Validator)
        context = make_context()
        for name, value in context_fields.items():
            setattr(context, name, value)
        return EmailSend().execute(inputs, context)

    return send


def parsed(envelope):
    return email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def test_is_registered_under_its_name():
    assert ActionRegistry(use_entry_points=False).get_class("email.send") is EmailSend


def test_sends_a_plain_message(send, smtp_server, log_lines):
    output = send({"to": "ada@example.com", "subject": "Welcome Ada", "body": "Hello!"})

    assert output["sent"] == 1
    (envelope,) = smtp_server.envelopes
    assert envelope.mail_from == "flowforge@example.org"
    assert envelope.rcpt_tos == ["ada@example.com"]
    message = parsed(envelope)
    assert message["Subject"] == "Welcome Ada"
    assert message["To"] == "ada@example.com"
    assert message["Message-ID"] == output["message_id"]
    assert output["message_id"].endswith("@example.org>")
    assert message.get_content().strip() == "Hello!"
    assert "Message-ID" in log_lines[0]


def test_sends_to_lists_with_cc_bcc_html_and_a_sender(send, smtp_server):
    output = send({
        "to": ["a@example.com", "b@example.com"],
        "cc": "c@example.com",
        "bcc": ["hidden@example.com"],
        "from": "Robot <robot@example.net>",
        "subject": "Report",
        "body": "plain version",
        "html": "<p>html version</p>",
    })

    (envelope,) = smtp_server.envelopes
    assert envelope.mail_from == "robot@example.net"
    assert sorted(envelope.rcpt_tos) == ["a@example.com", "b@example.com", "c@example.com", "hidden@example.com"]
    message = parsed(envelope)
    assert message["To"] == "a@example.com, b@example.com"
    assert message["Cc"] == "c@example.com"
    assert message["Bcc"] is None
    assert message["From"] == "Robot <robot@example.net>"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == "plain version"
    assert message.get_body(("html",)).get_content().strip() == "<p>html version</p>"
    assert output["message_id"].endswith("@example.net>")


def test_line_breaks_in_the_subject_cannot_inject_headers(send, smtp_server):
    send({"to": "a@example.com", "subject": "Hi\r\nBcc: victim@example.com", "body": "x"})

    (envelope,) = smtp_server.envelopes
    assert envelope.rcpt_tos == ["a@example.com"]
    assert parsed(envelope)["Subject"] == "Hi Bcc: victim@example.com"


@pytest.mark.parametrize(
    "field, value", [("to", "not-an-address"), ("to", "a@example.com\nBcc: x@example.com"), ("from", "nobody"),
                     ("cc", ["ok@example.com", "@example.com"])],
)
def test_malformed_addresses_fail_permanently(make_context, smtp_server, field, value):
    inputs = {"to": "a@example.com", "subject": "s", "body": "b", field: value}
    with pytest.raises(ActionError, match=f"{field}: .* is not an e-mail address") as caught:
        EmailSend().execute(inputs, make_context())
    assert caught.value.retryable is False
    assert smtp_server.envelopes == []


def test_a_permanently_refused_recipient_is_not_retried(send, smtp_server):
    with pytest.raises(ActionError, match="refused every recipient: reject-550@example.com \\(550") as caught:
        send({"to": "reject-550@example.com", "subject": "s", "body": "b"})
    assert caught.value.retryable is False


def test_a_temporarily_refused_recipient_is_retryable(send, smtp_server):
    with pytest.raises(ActionError, match="451") as caught:
        send({"to": "reject-451@example.com", "subject": "s", "body": "b"})
    assert caught.value.retryable is True


def test_an_unreachable_mail_server_is_retryable(send, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False

    with pytest.raises(ActionError, match="could not reach the mail server") as caught:
        send({"to": "a@example.com", "subject": "s", "body": "b"})
    assert caught.value.retryable is True


def test_works_with_any_configured_backend(send, settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []

    output = send({"to": "a@example.com", "subject": "s", "body": "b"})

    assert output["sent"] == 1
    assert mail.outbox[0].extra_headers["Message-ID"] == output["message_id"]


# --- schema ----------------------------------------------------------------------------------------------------


def test_the_schema_is_valid_and_described():
    jsonschema.Draft202012Validator.check_schema(EmailSend.input_schema)
    assert all(prop.get("description") for prop in EmailSend.input_schema["properties"].values())


@pytest.mark.parametrize(
    "inputs",
    [
        {"subject": "s", "body": "b"},
        {"to": "a@example.com", "body": "b"},
        {"to": [], "subject": "s", "body": "b"},
        {"to": "a@example.com", "subject": "s", "body": "b", "attachments": []},
        {"to": "a@example.com", "subject": "s", "body": 3},
        {"to": "a@example.com", "subject": "s", "body": "b", "cc": [1]},
    ],
)
def test_the_schema_rejects_malformed_inputs(inputs):
    assert list(jsonschema.Draft202012Validator(EmailSend.input_schema).iter_errors(inputs)) != []


def test_the_schema_checks_address_format_when_formats_are_asserted():
    validator = jsonschema.Draft202012Validator(EmailSend.input_schema, format_checker=jsonschema.FormatChecker())
    assert list(validator.iter_errors({"to": "nope", "subject": "s", "body": "b"})) != []
    assert list(validator.iter_errors({"to": ["a@example.com"], "subject": "s", "body": "b"})) == []
