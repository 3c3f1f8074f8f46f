"""http.request against a real local HTTP server."""
from __future__ import annotations

import re
import socket

import jsonschema
import pytest

from connectors.base import ActionError
from connectors.http.actions import HttpRequest
from connectors.registry import ActionRegistry

pytestmark = pytest.mark.usefixtures("connections")


@pytest.fixture
def run(make_context):
    def run(inputs, *, allow_private=True, timeout=300.0):
        context = make_context(http_allow_private=allow_private)
        context.timeout = timeout
        jsonschema.validate(inputs, HttpRequest.input_schema, cls=jsonschema.Draft202012Validator)
        return HttpRequest().execute(inputs, context)

    return run


def test_is_registered_under_its_name():
    assert ActionRegistry(use_entry_points=False).get_class("http.request") is HttpRequest


def test_get_returns_status_headers_body_and_parsed_json(run, http_server, log_lines):
    output = run({"url": http_server.url("/json")})

    assert output["status"] == 200
    assert output["json"] == {"hello": "world", "n": 1}
    assert output["body"] == '{"hello": "world", "n": 1}'
    assert output["headers"]["Content-Type"] == "application/json"
    assert isinstance(output["headers"], dict)
    assert re.fullmatch(rf"GET http://127\.0\.0\.1:{http_server.port}/json -> 200 \(\d+ ms\)", log_lines[0])


def test_json_is_null_when_the_response_is_not_json(run, http_server):
    output = run({"url": http_server.url("/text")})
    assert output["body"] == "plain text ✓"
    assert output["json"] is None


def test_json_is_null_when_a_json_response_does_not_parse(run, http_server):
    assert run({"url": http_server.url("/broken-json")})["json"] is None


def test_posts_json_with_params_and_headers(run, http_server):
    output = run({
        "method": "POST",
        "url": http_server.url("/echo"),
        "params": {"q": "x y", "flag": True, "tag": ["a", "b"], "n": 3},
        "headers": {"X-Api-Key": "k"},
        "json": {"name": "Ada", "tags": [1, 2]},
    })

    echoed = output["json"]
    assert echoed["method"] == "POST"
    assert echoed["query"] == {"q": ["x y"], "flag": ["true"], "tag": ["a", "b"], "n": ["3"]}
    assert echoed["headers"]["X-Api-Key"] == "k"
    assert echoed["headers"]["Content-Type"] == "application/json"
    assert echoed["body"] == '{"name": "Ada", "tags": [1, 2]}'


def test_sends_a_raw_body(run, http_server):
    output = run({"method": "PUT", "url": http_server.url("/echo"), "body": "héllo",
                  "headers": {"Content-Type": "text/plain"}})
    assert output["json"]["body"] == "héllo"
    assert output["json"]["headers"]["Content-Type"] == "text/plain"


def test_head_has_an_empty_body(run, http_server):
    output = run({"method": "HEAD", "url": http_server.url("/json")})
    assert (output["status"], output["body"], output["json"]) == (200, "", None)


def test_follows_redirects(run, http_server):
    output = run({"url": http_server.url("/chain/2")})
    assert output["body"] == "end of chain"
    assert output["url"] == http_server.url("/chain/0")


def test_a_client_error_fails_permanently_with_the_output_attached(run, http_server, log_lines):
    with pytest.raises(ActionError) as caught:
        run({"url": http_server.url("/status/404")})

    error = caught.value
    assert str(error) == f"GET {http_server.url('/status/404')} -> 404 Not Found, expected 2xx: status 404 body"
    assert error.retryable is False
    assert error.output["status"] == 404
    assert error.output["body"] == "status 404 body"
    assert log_lines[0].startswith(f"GET {http_server.url('/status/404')} -> 404 (")


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_server_errors_and_throttling_are_retryable(run, http_server, status):
    with pytest.raises(ActionError, match=f"-> {status}") as caught:
        run({"url": http_server.url(f"/status/{status}")})
    assert caught.value.retryable is True
    assert caught.value.output["status"] == status


def test_problem_json_is_parsed_into_the_error_output(run, http_server):
    with pytest.raises(ActionError) as caught:
        run({"url": http_server.url("/problem")})
    assert caught.value.output["json"] == {"title": "bad"}
    assert caught.value.retryable is False


def test_expected_status_accepts_one_code_or_a_list(run, http_server):
    assert run({"url": http_server.url("/status/404"), "expected_status": 404})["status"] == 404
    assert run({"url": http_server.url("/status/201"), "expected_status": [200, 201]})["status"] == 201
    with pytest.raises(ActionError, match="-> 200 OK, expected 201 or 202") as caught:
        run({"url": http_server.url("/json"), "expected_status": [201, 202]})
    assert caught.value.retryable is False


def test_a_long_body_is_cut_short_in_the_message(run, http_server):
    with pytest.raises(ActionError) as caught:
        run({"url": http_server.url("/big?bytes=5000"), "expected_status": 201})
    assert len(str(caught.value)) < 400
    assert len(caught.value.output["body"]) == 5000


def test_a_timeout_is_retryable(run, http_server, log_lines):
    with pytest.raises(ActionError, match="timed out") as caught:
        run({"url": http_server.url("/slow?seconds=3"), "timeout": 0.3})
    assert caught.value.retryable is True
    assert "-> failed: timed out" in log_lines[0]


def test_the_task_timeout_caps_the_request_timeout(run, http_server):
    with pytest.raises(ActionError, match=r"timed out after 0\.2s"):
        run({"url": http_server.url("/slow?seconds=3"), "timeout": 30}, timeout=0.2)


def test_a_refused_connection_is_retryable(run):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ActionError, match="Connection refused") as caught:
        run({"url": f"http://127.0.0.1:{port}/"})
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://localhost/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
     "http://[::ffff:169.254.169.254]/", "http://2130706433/", "http://10.0.0.1/"],
)
def test_refuses_private_addresses_unless_the_operator_allows_them(run, url, connections):
    with pytest.raises(ActionError, match=r"refused: .*\(set AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow\)") as caught:
        run({"url": url}, allow_private=False)
    assert caught.value.retryable is False
    assert connections == []


def test_refuses_the_local_server_when_private_is_not_allowed(run, http_server, connections):
    with pytest.raises(ActionError, match="loopback"):
        run({"url": http_server.url("/json")}, allow_private=False)
    assert connections == []
    assert http_server.seen == []


def test_refuses_file_urls(make_context, connections):
    with pytest.raises(ActionError, match="scheme file:// is not allowed") as caught:
        HttpRequest().execute({"url": "file:///etc/passwd"}, make_context(http_allow_private=True))
    assert caught.value.retryable is False


def test_credentials_in_the_url_stay_out_of_the_log(run, http_server, log_lines):
    run({"url": f"http://user:hunter2@127.0.0.1:{http_server.port}/json"})
    assert "hunter2" not in log_lines[0]


# --- the input schema the builder renders ----------------------------------------------------------------------


def validator():
    return jsonschema.Draft202012Validator(HttpRequest.input_schema)


def test_the_input_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(HttpRequest.input_schema)


@pytest.mark.parametrize(
    "inputs",
    [
        {"url": "https://example.com", "method": "GET", "timeout": 5, "expected_status": 204},
        {"url": "https://example.com", "method": "POST", "json": [1, 2], "expected_status": [200, 201]},
        {"url": "https://example.com", "json": None},
        {"url": "https://example.com", "headers": {"A": "b"}, "params": {"a": 1, "b": ["x", 2], "c": False}},
    ],
)
def test_the_schema_accepts_well_formed_inputs(inputs):
    assert list(validator().iter_errors(inputs)) == []


@pytest.mark.parametrize(
    "inputs",
    [
        {},
        {"url": ""},
        {"url": "https://example.com", "method": "FETCH"},
        {"url": "https://example.com", "json": {}, "body": "x"},
        {"url": "https://example.com", "headers": {"A": 1}},
        {"url": "https://example.com", "params": {"a": {"nested": 1}}},
        {"url": "https://example.com", "timeout": 0},
        {"url": "https://example.com", "expected_status": "200"},
        {"url": "https://example.com", "expected_status": [99]},
        {"url": "https://example.com", "expected_status": []},
        {"url": "https://example.com", "verify": False},
    ],
)
def test_the_schema_rejects_malformed_inputs(inputs):
    assert list(validator().iter_errors(inputs)) != []


def test_every_property_is_described():
    assert all(prop.get("description") for prop in HttpRequest.input_schema["properties"].values())
