"""Every API error answers SPEC §6's `{"errors": [{"path", "message"}]}` with a 4xx, never a server error or
DRF's `{"detail": ...}`; a run payload that cannot be stored is refused before a run exists."""
from __future__ import annotations

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from runs.models import WorkflowRun
from runs.tests.operator_fixtures import alice, make_run, make_workflow  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(alice) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def run_url(alice) -> str:
    return f"/api/workflows/{make_workflow(alice).id}/run/"


def errors(response, status: int) -> list[dict]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"errors"} and body["errors"], body
    assert all(set(error) == {"path", "message"} and error["message"] for error in body["errors"])
    return body["errors"]


@pytest.mark.parametrize("payload, path", [
    ('{"note": "a\\u0000b"}', "body.note"),
    ('{"note": "\\udc00"}', "body.note"),
    ('{"\\u0000": 1}', "body"),
    ("[" * 65 + "]" * 65, "body"),
])
def test_a_run_payload_that_cannot_be_stored_is_a_400_naming_body(client, run_url, payload, path):
    found = errors(client.post(run_url, payload, content_type="application/json"), 400)
    assert found[0]["path"].startswith(path)
    assert not WorkflowRun.objects.exists()


def test_a_payload_nested_past_pythons_recursion_limit_is_a_400(client, run_url):
    errors(client.post(run_url, "[" * 100_000 + "]" * 100_000, content_type="application/json"), 400)
    assert not WorkflowRun.objects.exists()


def test_invalid_json_or_nan_to_run_is_a_400_in_the_errors_shape(client, run_url):
    assert "JSON" in errors(client.post(run_url, '{"a": ', content_type="application/json"), 400)[0]["message"]
    errors(client.post(run_url, '{"a": NaN}', content_type="application/json"), 400)
    assert not WorkflowRun.objects.exists()


def test_a_multipart_upload_to_run_is_a_415(client, run_url, tmp_path):
    upload = tmp_path / "data.bin"
    upload.write_bytes(b"\x00\x01binary")
    with upload.open("rb") as handle:
        errors(client.post(run_url, {"file": handle}, format="multipart"), 415)
    assert not WorkflowRun.objects.exists()


def test_a_body_over_the_upload_limit_is_a_413(client, run_url):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        found = errors(client.post(run_url, '{"pad": "' + "x" * 2000 + '"}', content_type="application/json"), 413)
    assert "1,000 bytes" in found[0]["message"]
    assert not WorkflowRun.objects.exists()


def test_an_empty_or_json_body_still_starts_a_run(client, run_url):
    assert client.post(run_url).status_code == 202
    assert client.post(run_url, '{"ok": [1, 2]}', content_type="application/json").status_code == 202
    assert [run.trigger["body"] for run in WorkflowRun.objects.order_by("id")] == [{}, {"ok": [1, 2]}]


def test_an_empty_form_post_starts_a_run_while_form_fields_are_a_415(alice, run_url):
    browser = Client()
    browser.force_login(alice)
    assert browser.post(run_url).status_code == 202  # the test client's empty multipart body
    errors(browser.post(run_url, {"field": "value"}), 415)
    errors(browser.post(run_url, "a=1", content_type="application/x-www-form-urlencoded"), 415)
    assert [run.trigger["body"] for run in WorkflowRun.objects.all()] == [{}]


def test_not_found_method_not_allowed_and_anonymous_answer_the_errors_shape(client, alice):
    run = make_run(make_workflow(alice), "succeeded")
    errors(client.get("/api/workflows/987654/"), 404)
    errors(client.delete(f"/api/runs/{run.id}/"), 405)
    errors(client.put("/api/workflows/validate/", {}, format="json"), 405)
    anonymous = APIClient().get("/api/workflows/")
    errors(anonymous, anonymous.status_code)
    assert anonymous.status_code in (401, 403)
    if anonymous.status_code == 401:
        assert anonymous.has_header("WWW-Authenticate")
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    refused = bad_token.get("/api/workflows/")
    assert "token" in errors(refused, refused.status_code)[0]["message"].lower()


def test_an_api_url_no_view_matches_answers_404_in_the_errors_shape(client):
    for url in ("/api/workflows/%C2%84/", "/api/no-such-thing/", "/hooks/"):
        found = errors(client.get(url), 404)
        assert found[0]["message"].startswith("no such endpoint")


def test_a_page_size_that_is_not_a_whole_number_in_range_is_a_400(client):
    for url in ("/api/workflows/", "/api/runs/"):
        for bad in ("null", "0", "-1", "1.5"):
            found = errors(client.get(url, {"page_size": bad}), 400)
            assert found[0]["path"] == "page_size"
        assert client.get(url, {"page_size": "2"}).status_code == 200


def test_retrying_a_run_that_has_not_failed_is_a_409(client, alice):
    run = make_run(make_workflow(alice), "queued")
    found = errors(client.post(f"/api/runs/{run.id}/retry/"), 409)
    assert "only failed or cancelled runs" in found[0]["message"]


def test_a_workflow_definition_nested_past_the_recursion_limit_is_a_400(client):
    deep = '{"definition": ' + "[" * 5000 + "]" * 5000 + "}"
    errors(client.post("/api/workflows/", deep, content_type="application/json"), 400)


def test_a_run_filter_given_without_a_value_is_a_400_naming_it(client):
    found = errors(client.get("/api/runs/", {"created_before": ""}), 400)
    assert found[0]["path"] == "created_before"
