"""Moving WebhookDelivery, TriggerState and PollSeenKey from workflows to triggers (workflows 0010, triggers 0001 and
0002) keeps every row of an existing database, and permissions granted on them follow the models."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from triggers.models import PollSeenKey, TriggerState, WebhookDelivery

BEFORE_WORKFLOWS = ("workflows", "0009_definition_source")


def _executor() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor


def _leaves():
    return _executor().loader.graph.leaf_nodes()


def _before_targets():
    return [node for node in _leaves() if node[0] not in ("workflows", "triggers")] + [BEFORE_WORKFLOWS]


@pytest.fixture
def before_move(transactional_db):
    """The schema as it was with the models in workflows; migrated forward again however the test ends."""
    executor = _executor()
    executor.migrate([*_before_targets(), ("triggers", None)])
    yield _executor().loader.project_state(_before_targets()).apps
    _executor().migrate(_leaves())


def test_existing_deliveries_trigger_states_and_seen_keys_survive_the_move(before_move):
    User = before_move.get_model("auth", "User")
    owner = User.objects.create(username="owner")
    Workflow = before_move.get_model("workflows", "Workflow")
    workflow = Workflow.objects.create(name="hook", name_key="hook", owner=owner, definition={"name": "hook"},
                                       webhook_token="tok-before-the-move")
    version = before_move.get_model("workflows", "WorkflowVersion").objects.create(
        workflow=workflow, version=1, definition={"name": "hook"})
    run = before_move.get_model("runs", "WorkflowRun").objects.create(workflow=workflow, workflow_version=version,
                                                                       trigger={"kind": "webhook"})
    old_delivery = before_move.get_model("workflows", "WebhookDelivery").objects.create(
        workflow=workflow, method="POST", headers={"content-type": "application/json"}, body=b'{"a": 1}',
        status_code=202, run=run, idempotency_key="key-1")
    before_move.get_model("workflows", "TriggerState").objects.create(workflow=workflow, trigger_key="cron:abc")
    before_move.get_model("workflows", "PollSeenKey").objects.create(workflow=workflow, trigger_key="poll:def",
                                                                     key="item-7")
    ContentType = before_move.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="triggers").delete()  # as before the triggers app existed
    old_type, _ = ContentType.objects.get_or_create(app_label="workflows", model="webhookdelivery")
    before_move.get_model("auth", "Permission").objects.get_or_create(
        content_type=old_type, codename="view_webhookdelivery", defaults={"name": "Can view webhook delivery"})

    _executor().migrate(_leaves())

    delivery = WebhookDelivery.objects.get(id=old_delivery.id)
    assert (delivery.workflow_id, delivery.run_id, bytes(delivery.body), delivery.idempotency_key) == (
        workflow.id, run.id, b'{"a": 1}', "key-1")
    assert TriggerState.objects.get(workflow_id=workflow.id).trigger_key == "cron:abc"
    assert PollSeenKey.objects.get(workflow_id=workflow.id).key == "item-7"
    permission = Permission.objects.get(codename="view_webhookdelivery")
    assert permission.content_type.app_label == "triggers"
