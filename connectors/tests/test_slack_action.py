"""slack.post_message against a fake Slack Web API on 127.0.0.1: the owner's bearer token is sent, Slack's
{"ok": false} fails the task with its error, an expired rotated token is refreshed once and the post retried
once, and another user's Slack connection is never used."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from connectors.base import ActionConfig, ActionContext, ActionError
from connectors.models import ConnectedAccount
from connectors.slack.actions import PostMessage
from connectors.tests.fake_slack import LOOPBACK, connect_slack, fake_slack  # noqa: F401

pytestmark = pytest.mark.django_db

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Deploy* finished"}}]


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def bob():
    return get_user_model().objects.create_user("bob", password="pw")


def post(owner, log: list | None = None, **inputs) -> dict:
    context = ActionContext(run_id=1, task_id="announce", owner_id=owner.id,
                            config=ActionConfig(http_allowed_networks=LOOPBACK),
                            log=log.append if log is not None else (lambda line: None))
    return PostMessage().execute({"channel": "#general", "text": "Deploy finished", **inputs}, context)


def test_a_message_is_posted_with_the_owners_bearer_token_and_answers_channel_and_ts(fake_slack, alice):
    account = connect_slack(fake_slack, alice)

    output = post(alice, blocks=BLOCKS)

    assert output == {"channel": "C0GENERAL", "ts": "1700000000.000000"}
    authorization, body, _ = fake_slack.posts[0]
    assert authorization == f"Bearer {account.access_token}"
    assert body == {"channel": "#general", "text": "Deploy finished", "blocks": BLOCKS}


def test_slacks_ok_false_fails_the_task_with_slacks_error(fake_slack, alice):
    connect_slack(fake_slack, alice)

    with pytest.raises(ActionError) as failed:
        post(alice, channel="#no-such-channel")

    assert str(failed.value) == "Slack chat.postMessage failed: channel_not_found"
    assert failed.value.retryable is False and failed.value.output == {"error": "channel_not_found"}
    assert fake_slack.refreshes == 0 and len(fake_slack.posts) == 1


def test_an_expired_token_is_refreshed_once_and_the_message_posted_once(fake_slack, alice):
    account = connect_slack(fake_slack, alice)
    fake_slack.expire_access_tokens()

    output = post(alice, connection="slack:ada")

    assert output["channel"] == "C0GENERAL"
    assert fake_slack.refreshes == 1
    assert [answer.get("error") for _, _, answer in fake_slack.posts] == ["token_expired", None]
    assert ConnectedAccount.objects.get(id=account.id).access_token != account.access_token


def test_a_refused_refresh_marks_the_connection_and_names_it(fake_slack, alice):
    account = connect_slack(fake_slack, alice)
    fake_slack.expire_access_tokens()
    fake_slack.refresh_tokens.clear()  # revoked at Slack

    with pytest.raises(ActionError, match="connection 'slack:ada' needs re-authorisation") as failed:
        post(alice)

    assert failed.value.retryable is False
    assert ConnectedAccount.objects.get(id=account.id).status == ConnectedAccount.Status.NEEDS_REAUTH
    assert len(fake_slack.posts) == 1


def test_another_users_slack_connection_is_never_used(fake_slack, alice, bob):
    connect_slack(fake_slack, alice)

    with pytest.raises(ActionError, match="the workflow's owner has no connected slack account"):
        post(bob)
    with pytest.raises(ActionError, match="the workflow's owner has no connection 'slack:ada'"):
        post(bob, connection="slack:ada")

    assert fake_slack.posts == []
