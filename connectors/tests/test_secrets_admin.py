"""Secrets in the admin, per owner: superusers see all with their owner; other staff see, add and change only
their own (owner set to them, not editable); the value is write-only everywhere."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from connectors.models import Secret
from connectors.secrets import secret_value

A_VALUE, B_VALUE = "alice-admin-value-31", "bob-admin-value-57"
CHANGELIST = "/admin/connectors/secret/"


def _staff(username: str) -> tuple:
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="connectors",
                                                         codename__endswith="_secret"))
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def two_vaults(db):
    alice, a = _staff("alice")
    bob, b = _staff("bob")
    mine = Secret.objects.create(owner=alice, name="A_KEY", value=A_VALUE)
    theirs = Secret.objects.create(owner=bob, name="B_KEY", value=B_VALUE)
    return alice, a, bob, b, mine, theirs


def test_a_superuser_sees_every_secret_with_its_owner_and_never_a_value(two_vaults):
    *_, mine, theirs = two_vaults
    root = Client()
    root.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))

    listing = root.get(CHANGELIST)
    detail = root.get(f"{CHANGELIST}{theirs.id}/change/")

    assert listing.status_code == detail.status_code == 200
    text = listing.content.decode()
    assert "A_KEY" in text and "B_KEY" in text and "alice" in text and "bob" in text
    assert 'name="owner"' in detail.content.decode()
    for page in (listing, detail):
        assert A_VALUE not in page.content.decode() and B_VALUE not in page.content.decode()


def test_staff_see_and_open_only_their_own_secrets(two_vaults):
    alice, a, bob, b, mine, theirs = two_vaults

    listing = a.get(CHANGELIST)
    own = a.get(f"{CHANGELIST}{mine.id}/change/")
    other = a.get(f"{CHANGELIST}{theirs.id}/change/")
    deleted = a.post(f"{CHANGELIST}{theirs.id}/delete/", {"post": "yes"})

    assert listing.status_code == 200 and "A_KEY" in listing.content.decode()
    assert "B_KEY" not in listing.content.decode()
    assert own.status_code == 200 and 'name="owner"' not in own.content.decode()
    assert other.status_code == 302 and deleted.status_code == 302  # "doesn't exist", back to the index
    assert secret_value("B_KEY", owner_id=bob.id) == B_VALUE


def test_a_secret_staff_add_is_theirs_and_may_share_a_name_with_another_owners(two_vaults):
    alice, a, bob, b, mine, theirs = two_vaults

    added = a.post(f"{CHANGELIST}add/", {"name": "B_KEY", "new_value": "alice-own-b-key", "description": "",
                                         "owner": bob.id})

    assert added.status_code == 302, added.content.decode()
    assert secret_value("B_KEY", owner_id=alice.id) == "alice-own-b-key"  # the posted owner was ignored
    assert secret_value("B_KEY", owner_id=bob.id) == B_VALUE


def test_adding_a_name_the_owner_already_has_is_a_form_error(two_vaults):
    alice, a, *_ = two_vaults

    again = a.post(f"{CHANGELIST}add/", {"name": "A_KEY", "new_value": "second", "description": ""})

    assert again.status_code == 200
    assert "alice already has a secret named &#x27;A_KEY&#x27;." in again.content.decode()
    assert secret_value("A_KEY", owner_id=alice.id) == A_VALUE


def test_a_bad_name_in_the_admin_is_a_form_error(two_vaults):
    _, a, *_ = two_vaults

    refused = a.post(f"{CHANGELIST}add/", {"name": "not-a-name", "new_value": "v", "description": ""})

    assert refused.status_code == 200
    assert "must start with a letter or _" in refused.content.decode()
    assert Secret.objects.count() == 2


def test_changing_a_secret_with_a_blank_value_keeps_the_old_one(two_vaults):
    alice, a, bob, b, mine, theirs = two_vaults

    changed = a.post(f"{CHANGELIST}{mine.id}/change/", {"name": "A_KEY", "new_value": "", "description": "notes"})

    assert changed.status_code == 302
    assert secret_value("A_KEY", owner_id=alice.id) == A_VALUE
    assert Secret.objects.get(id=mine.id).description == "notes"
