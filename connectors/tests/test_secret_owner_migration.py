"""Migrating to owned secrets (connectors 0003/0004) loses no secret: existing ones go to the first superuser (else
the first user); with no user at all they stay without owner, readable by nobody until an operator assigns one."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from connectors.models import Secret
from connectors.secrets import secret_value

BEFORE = [("connectors", "0002_connected_accounts")]
AFTER = [("connectors", "0005_strict_encrypted_fields")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def before_owners(transactional_db):
    """The schema as it was before owners; migrated forward again however the test ends."""
    apps = _migrate(BEFORE)
    yield apps
    _migrate(_leaves())


def _leaves():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def test_existing_secrets_go_to_the_first_superuser(before_owners):
    User = before_owners.get_model("auth", "User")
    User.objects.create(username="first-plain-user")
    admin = User.objects.create(username="admin", is_superuser=True, is_staff=True)
    User.objects.create(username="later-admin", is_superuser=True, is_staff=True)
    old = before_owners.get_model("connectors", "Secret")
    old.objects.create(name="API_TOKEN", value="tok-from-before")
    old.objects.create(name="OTHER", value="other-from-before")

    _migrate(AFTER)

    assert set(Secret.objects.values_list("name", "owner_id")) == {("API_TOKEN", admin.id), ("OTHER", admin.id)}
    assert secret_value("API_TOKEN", owner_id=admin.id) == "tok-from-before"


def test_without_a_superuser_the_first_user_gets_them(before_owners):
    User = before_owners.get_model("auth", "User")
    first = User.objects.create(username="first")
    User.objects.create(username="second")
    before_owners.get_model("connectors", "Secret").objects.create(name="API_TOKEN", value="tok")

    _migrate(AFTER)

    assert secret_value("API_TOKEN", owner_id=first.id) == "tok"


def test_with_no_user_at_all_the_secrets_are_kept_without_owner(before_owners):
    before_owners.get_model("connectors", "Secret").objects.create(name="API_TOKEN", value="tok")

    _migrate(AFTER)

    [orphan] = Secret.objects.all()
    assert (orphan.name, orphan.owner_id, orphan.value) == ("API_TOKEN", None, "tok")
