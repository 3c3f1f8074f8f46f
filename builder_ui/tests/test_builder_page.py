"""The Django page that mounts the builder bundle: access rules, mount point and CSRF cookie."""
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from workflows.services import workflow_save

pytestmark = pytest.mark.django_db

PIPELINE = {"name": "Data Pipeline", "tasks": {"task_A": {"run": "echo a"}}}


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def bobs_workflow():
    bob = get_user_model().objects.create_user("bob", password="pw")
    return workflow_save(source=PIPELINE, owner=bob)


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/builder/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/builder/")


def test_the_new_workflow_page_mounts_the_bundle_without_a_workflow_id(client, alice):
    client.force_login(alice)
    response = client.get("/builder/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="builder-root"' in html
    assert 'data-workflow-id=""' in html
    assert 'data-api-base="/api/"' in html
    assert 'data-admin-url="/admin/workflows/workflow/"' in html
    assert 'data-runs-url="/admin/runs/workflowrun/"' in html  # "Run #N" links to <that><id>/change/
    assert f'data-csrf-token="{response.context["csrf_token"]}"' in html
    assert '<link rel="stylesheet" href="/static/builder_ui/builder.css">' in html
    assert '<script src="/static/builder_ui/builder.js" defer></script>' in html


def test_the_page_sets_the_csrf_cookie_the_bundle_falls_back_to(client, alice):
    client.force_login(alice)
    response = client.get("/builder/")
    assert response.cookies["csrftoken"].value


def test_owners_open_their_workflow(client):
    owner = get_user_model().objects.create_user("carol", password="pw")
    workflow = workflow_save(source=PIPELINE, owner=owner)
    client.force_login(owner)
    response = client.get(f"/builder/{workflow.id}/")
    assert response.status_code == 200
    assert f'data-workflow-id="{workflow.id}"' in response.content.decode()
    assert "<title>Data Pipeline | Builder | Flowforge</title>" in response.content.decode()


def test_the_page_preloads_the_api_reads_the_bundle_starts_with(client, alice):
    workflow = workflow_save(source=PIPELINE, owner=alice)
    client.force_login(alice)
    html = client.get(f"/builder/{workflow.id}/").content.decode()
    assert '<link rel="preload" href="/api/actions/" as="fetch" crossorigin>' in html
    assert f'<link rel="preload" href="/api/workflows/{workflow.id}/" as="fetch" crossorigin>' in html
    assert "/api/workflows/" not in client.get("/builder/").content.decode()


def test_another_users_workflow_is_not_found(client, alice, bobs_workflow):
    client.force_login(alice)
    assert client.get(f"/builder/{bobs_workflow.id}/").status_code == 404


def test_staff_open_other_users_workflows_only_with_the_model_permission(client, bobs_workflow):
    ops = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(ops)
    assert client.get(f"/builder/{bobs_workflow.id}/").status_code == 404
    ops.user_permissions.add(Permission.objects.get(codename="view_workflow"))
    client.force_login(get_user_model().objects.get(id=ops.id))  # a fresh user: no cached permissions
    assert client.get(f"/builder/{bobs_workflow.id}/").status_code == 200


def test_a_missing_workflow_is_not_found(client, alice):
    client.force_login(alice)
    assert client.get("/builder/999999/").status_code == 404


def test_the_static_bundle_is_served_without_collectstatic(client):
    assert client.get("/static/builder_ui/builder.js").status_code == 200
    assert client.get("/static/builder_ui/builder.css").status_code == 200
