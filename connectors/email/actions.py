"""email.send: one message through Django's e-mail backend (EMAIL_BACKEND, EMAIL_HOST, ... settings).

The one action that needs Django; it is imported inside `execute` so that loading the registry, validating
definitions and the engine's tests stay Django-free.
"""
from __future__ import annotations

import smtplib
from email.utils import make_msgid, parseaddr

from connectors.base import Action, ActionContext, ActionError

SMTP_TIMEOUT = 60.0

_ADDRESS = {"type": "string", "format": "email", "minLength": 3, "maxLength": 320}


def _addresses(description: str, *, min_items: int = 0) -> dict:
    return {
        "anyOf": [_ADDRESS, {"type": "array", "items": _ADDRESS, "minItems": min_items}],
        "description": description,
    }


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _check_address(field: str, value: str) -> str:
    value = value.strip()
    _, addr = parseaddr(value)
    if "\r" in value or "\n" in value or "@" not in addr or addr.startswith("@") or addr.endswith("@"):
        raise ActionError(f"{field}: {value!r} is not an e-mail address", retryable=False)
    return value


def _smtp_error(exc: Exception) -> ActionError:
    """5xx answers are permanent (unknown mailbox, relaying denied, bad credentials); the rest may pass later."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        refused = ", ".join(f"{addr} ({code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg})"
                            for addr, (code, msg) in exc.recipients.items())
        return ActionError(f"the mail server refused every recipient: {refused}",
                           retryable=not all(code >= 500 for code in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return ActionError(f"the mail server answered {exc.smtp_code} {text}", retryable=exc.smtp_code < 500)
    if isinstance(exc, smtplib.SMTPException):
        return ActionError(f"SMTP error: {exc}", retryable=True)
    return ActionError(f"could not reach the mail server: {exc}", retryable=True)


class EmailSend(Action):
    name = "email.send"
    title = "Send e-mail"
    description = (
        "Sends an e-mail through the platform's mail settings. Output: sent (messages sent) and message_id."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "to": _addresses("Recipient address, or a list of them", min_items=1),
            "subject": {"type": "string", "maxLength": 998, "description": "Subject line (line breaks become spaces)"},
            "body": {"type": "string", "description": "Plain-text body"},
            "html": {"type": "string", "description": "HTML body, sent as an alternative to the plain text"},
            "from": {
                "type": "string",
                "minLength": 3,
                "description": "Sender, 'a@example.com' or 'Name <a@example.com>'; default DEFAULT_FROM_EMAIL",
            },
            "cc": _addresses("Carbon-copy address(es)"),
            "bcc": _addresses("Blind-carbon-copy address(es), not shown to the other recipients"),
        },
        "required": ["to", "subject", "body"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {
            "sent": {"type": "integer", "description": "Messages sent (1, or 0 if the backend dropped it)"},
            "message_id": {"type": "string", "description": "The Message-ID header of the message sent"},
        },
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
        from django.core.mail import EmailMultiAlternatives, get_connection

        to = [_check_address("to", a) for a in _as_list(inputs["to"])]
        cc = [_check_address("cc", a) for a in _as_list(inputs.get("cc"))]
        bcc = [_check_address("bcc", a) for a in _as_list(inputs.get("bcc"))]
        if not to:
            raise ActionError("to: at least one recipient is needed", retryable=False)
        try:
            sender = _check_address("from", inputs.get("from") or settings.DEFAULT_FROM_EMAIL)
        except ImproperlyConfigured as exc:
            raise ActionError(f"Django settings are not configured: {exc}", retryable=False) from None
        # Set here rather than left to Django so the output can name it (Django would make a new one per call,
        # and looks the machine's DNS name up to do so).
        domain = parseaddr(sender)[1].rpartition("@")[2] or "flowforge.invalid"
        # From the task run's key (SPEC §10): every attempt sends the same Message-ID, so a mail system that
        # de-duplicates on it (and every mail client's threading) sees one message even if an attempt repeats.
        message_id = (f"<{context.idempotency_key}.flowforge@{domain}>" if context.idempotency_key
                      else make_msgid(domain=domain))

        subject = " ".join(inputs["subject"].split())
        connection = get_connection(timeout=min(float(context.timeout), SMTP_TIMEOUT))
        message = EmailMultiAlternatives(
            subject=subject,
            body=inputs["body"],
            from_email=sender,
            to=to,
            cc=cc,
            bcc=bcc,
            headers={"Message-ID": message_id},
            connection=connection,
        )
        if inputs.get("html"):
            message.attach_alternative(inputs["html"], "text/html")
        try:
            sent = message.send()
        except ValueError as exc:  # BadHeaderError, or an address Django cannot encode
            raise ActionError(f"cannot build the message: {exc}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise _smtp_error(exc) from None
        context.log(f"sent {subject!r} to {len(to) + len(cc) + len(bcc)} recipient(s), Message-ID {message_id}")
        return {"sent": sent, "message_id": message_id}
