"""GET /api/actions/: every action with what the builder needs to render its form; for signed-in users only."""
from __future__ import annotations

import jsonschema
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from connectors.registry import BUILTIN_ACTIONS

pytestmark = pytest.mark.django_db

BUILT_INS = {"shell.run", "http.request", "file.write", "file.read", "email.send", "transform.jinja",
             "github.create_issue", "github.add_comment", "github.star_repo", "slack.post_message", "sql.query",
             "webhook.send", "flow.wait", "flow.approval", "flow.run_workflow", "flow.respond"}


@pytest.fixture
def user():
    return get_user_model().objects.create_user("operator", password="pw")


def test_lists_every_built_in_action_with_name_family_title_and_input_schema(client, user):
    client.force_login(user)

    response = client.get("/api/actions/")

    assert response.status_code == 200
    actions = {a["name"]: a for a in response.json()}
    assert BUILT_INS <= set(actions)
    assert set(BUILTIN_ACTIONS) == BUILT_INS, "a built-in was added: list it here"
    for name in BUILT_INS:
        action = actions[name]
        assert action["family"] == name.split(".")[0]
        assert action["title"] and action["title"] != name, f"{name} has no title"
        assert action["description"], f"{name} has no description"
        assert action["input_schema"]["type"] == "object"
        jsonschema.Draft202012Validator.check_schema(action["input_schema"])
    assert actions["http.request"]["input_schema"]["required"] == ["url"]
    assert "GET" in actions["http.request"]["input_schema"]["properties"]["method"]["enum"]
    assert actions["shell.run"]["input_schema"]["required"] == ["command"]
    assert actions["github.create_issue"]["family"] == "github"


def test_lists_actions_in_name_order(client, user):
    client.force_login(user)
    names = [a["name"] for a in client.get("/api/actions/").json()]
    assert names == sorted(names)


def test_accepts_a_token(client, user):
    token = Token.objects.create(user=user)
    response = client.get("/api/actions/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_refuses_anonymous_requests(client):
    response = client.get("/api/actions/")
    assert response.status_code in (401, 403)
    assert "input_schema" not in response.content.decode()


def test_refuses_a_wrong_token(client, user):
    response = client.get("/api/actions/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Token'
    assert response.json() == {"errors": [{"path": "", "message": "Invalid token."}]}


def test_a_missing_token_answers_401_naming_the_scheme(client):
    response = client.get("/api/actions/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
