"""Bad input is refused with a clear error, through the real engine: definitions at save time (API), inputs at
run time (`LocalRunner`, the CLI's engine, with the real actions), and once more on a Celery worker."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
import urllib3.util.connection
from django.conf import settings
from django.contrib.auth import get_user_model

from automation.testing import wait_for_run
from connectors.base import ActionConfig
from connectors.registry import default_registry
from runs.local import LocalRunner
from runs.models import TaskRun
from workflows.definition import InvalidDefinition, compile_definition

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "examples"
SSTI = "{{ ''.__class__.__mro__ }}"
COULD_NOT_RENDER = "could not run: template error: "
INVALID_INPUTS = "could not run: invalid inputs: "


class Quiet:
    def plan(self, levels): pass
    def task_started(self, task_id, attempt): pass
    def task_finished(self, task_id, result, will_retry): pass
    def task_skipped(self, task_id, reason): pass


def run_locally(tasks: dict, *, trigger: dict | None = None, allow_private: bool = False):
    """Compile `tasks` as a definition and run it in-process under production policy (private addresses refused)."""
    registry = default_registry()
    spec = compile_definition({"name": "bad input", "tasks": tasks}, registry)
    config = ActionConfig(files_root=Path(settings.AUTOMATION_FILES_ROOT), allow_shell=True,
                          http_allow_private=allow_private)
    return LocalRunner(spec, registry=registry, config=config, reporter=Quiet(), trigger=trigger or {}).run()


@pytest.fixture
def api(client, db):
    client.force_login(get_user_model().objects.create_user("operator", password="pw"))
    return client


def save_errors(api, definition) -> list[dict]:
    response = api.post("/api/workflows/", {"definition": definition}, content_type="application/json")
    assert response.status_code == 400, response.content
    return response.json()["errors"]


# --- refused when the definition is saved --------------------------------------------------------------------


def test_an_unknown_action_is_refused_with_its_path(api):
    assert save_errors(api, {"name": "x", "tasks": {"notify": {"action": "teleport.beam", "inputs": {}}}}) == [
        {"path": "tasks.notify.action", "message": "unknown action 'teleport.beam'"}]


def test_the_shared_unknown_action_example_is_refused():
    with pytest.raises(InvalidDefinition) as refused:
        compile_definition((EXAMPLES / "invalid-unknown-action.yaml").read_text(), default_registry())
    assert any(p.path.endswith(".action") and "unknown action" in p.message for p in refused.value.problems)


def test_an_input_outside_the_schema_is_refused_with_its_path(api):
    errors = save_errors(api, {"name": "x", "tasks": {
        "fetch": {"action": "http.request", "inputs": {"method": "GETT", "url": "https://example.com/"}}}})
    assert errors == [{"path": "tasks.fetch.inputs.method",
                       "message": "'GETT' is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"}]


def test_missing_and_unknown_inputs_are_refused(api):
    errors = save_errors(api, {"name": "x", "tasks": {
        "fetch": {"action": "http.request", "inputs": {"method": "GET", "uri": "https://example.com/"}}}})
    assert {e["path"] for e in errors} == {"tasks.fetch.inputs"}
    assert any("'url' is a required property" in e["message"] for e in errors)


def test_a_template_that_does_not_parse_is_refused(api):
    errors = save_errors(api, {"name": "x", "tasks": {
        "t": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.name "}}}})
    assert errors[0]["path"] == "tasks.t.inputs.value"
    assert errors[0]["message"].startswith("template syntax error")


# --- refused when the task runs ------------------------------------------------------------------------------


def test_a_templated_value_of_the_wrong_type_fails_the_task_before_the_action_runs(http_server):
    result = run_locally({"fetch": {"action": "http.request", "inputs": {
        "url": http_server.url("/json"), "timeout": "{{ trigger.body.timeout }}"}}},
        trigger={"body": {"timeout": "soon"}}, allow_private=True)

    assert result.status == "failed"
    assert result.tasks["fetch"].error == INVALID_INPUTS + "inputs.timeout: 'soon' is not of type 'number'"
    assert http_server.seen == []


@pytest.mark.parametrize("template", [
    SSTI,
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ cycler.__init__.__globals__.os.system('id') }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self.__init__.__globals__ }}",
])
def test_a_template_reaching_for_python_internals_fails_safely_in_the_sandbox(template):
    result = run_locally({"render": {"action": "transform.jinja", "inputs": {"value": template}}})

    task = result.tasks["render"]
    assert result.status == "failed"
    assert task.error.startswith(COULD_NOT_RENDER + "inputs.value: refused by the sandbox: access to attribute '__"),\
        task.error
    assert task.error.endswith("is unsafe.")
    assert task.attempt == 1 and task.output == {}


def test_a_template_injected_through_the_payload_is_data_not_code():
    result = run_locally({"render": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.name }}"}}},
                         trigger={"body": {"name": SSTI}})
    assert result.status == "succeeded"
    assert result.tasks["render"].output == {"value": SSTI}


@pytest.mark.parametrize("url, reason", [
    ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254 is a link-local address"),
    ("http://[::ffff:169.254.169.254]/", "link-local address"),
    ("http://localhost:{port}/json", "loopback address"),
    ("http://2130706433:{port}/json", "loopback address"),  # 127.0.0.1 spelled as one number
])
def test_requests_to_private_addresses_are_refused_before_connecting(url, reason, http_server, connections):
    result = run_locally({"fetch": {"action": "http.request", "inputs": {"url": url.format(port=http_server.port)}}})

    task = result.tasks["fetch"]
    assert result.status == "failed"
    assert task.error.startswith("refused: ")
    assert reason in task.error and "set AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow" in task.error
    assert task.attempt == 1, "a refused destination is not worth a retry"
    assert connections == [] and http_server.seen == []


def test_the_local_test_server_is_refused_too(http_server, connections):
    result = run_locally({"fetch": {"action": "http.request", "inputs": {"url": http_server.url("/json")},
                                    "retries": 2}})
    assert result.tasks["fetch"].error == (
        "refused: 127.0.0.1 is a loopback address (set AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow)")
    assert result.tasks["fetch"].attempt == 1
    assert connections == []


@pytest.mark.parametrize("target", ["http://127.0.0.1/admin", "http://169.254.169.254/latest/meta-data/"])
def test_a_public_server_redirecting_to_a_private_address_is_refused_at_the_redirect(target, http_server,
                                                                                     monkeypatch):
    """The first hop goes to a public address (routed, by this test, to the local server); the redirect it
    answers with must be checked again and refused before any connection to the target."""
    public = "93.184.215.14"
    made = []
    real = urllib3.util.connection.create_connection

    def route_public_to_local(address, *args, **kwargs):
        made.append(address)
        assert address == (public, http_server.port), f"tried to connect to {address}"
        return real(("127.0.0.1", http_server.port), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", route_public_to_local)
    url = f"http://{public}:{http_server.port}/redirect?to={quote(target, safe='')}"

    result = run_locally({"fetch": {"action": "http.request", "inputs": {"url": url}}})

    task = result.tasks["fetch"]
    assert result.status == "failed"
    host = target.split("/")[2]
    assert task.error.startswith(f"refused: {host} is a ")
    assert [seen.path for seen in http_server.seen] == [url.split(str(http_server.port), 1)[1]]
    assert made == [(public, http_server.port)]


@pytest.mark.parametrize("path, message", [
    ("../../etc/x", "path '../../etc/x' escapes the files root"),
    ("/etc/x", "path '/etc/x' is absolute; give a path relative to the files root"),
    ("reports/../../x", "path 'reports/../../x' escapes the files root"),
])
def test_writing_outside_the_files_root_is_refused(path, message):
    root = Path(settings.AUTOMATION_FILES_ROOT)

    result = run_locally({"write": {"action": "file.write", "inputs": {"path": path, "content": "pwned"}}})

    assert result.status == "failed"
    assert result.tasks["write"].error == message
    assert not (root.parent.parent / "etc" / "x").exists() and not (root.parent / "x").exists()


def test_a_templated_path_climbing_out_of_the_root_is_refused_too():
    result = run_locally({"write": {"action": "file.write", "inputs": {
        "path": "uploads/{{ trigger.body.name }}", "content": "pwned"}}},
        trigger={"body": {"name": "../../../etc/x"}})
    assert result.tasks["write"].error == "path 'uploads/../../../etc/x' escapes the files root"


def test_a_missing_value_names_the_expression_and_the_input():
    result = run_locally({
        "fetch_user": {"action": "transform.jinja", "inputs": {"value": {"name": "Ada"}}},
        "greet": {"action": "transform.jinja", "depends_on": ["fetch_user"],
                  "inputs": {"value": {"subject": "Hello {{ steps.fetch_user.output.value.nme }}"}}},
        "greet_alias": {"action": "transform.jinja", "depends_on": ["fetch_user"],
                        "inputs": {"value": "{{ steps.fetch_user.output.nme }}"}},
    })

    assert result.status == "failed"
    assert result.tasks["greet"].error == (COULD_NOT_RENDER
                                           + "inputs.value.subject: steps.fetch_user.output.value.nme is undefined")
    assert result.tasks["greet_alias"].error == (COULD_NOT_RENDER
                                                 + "inputs.value: steps.fetch_user.output.nme is undefined")


@pytest.mark.parametrize("name", ["x; touch {pwn}", "$(touch {pwn})", "`touch {pwn}`", "x' && touch '{pwn}",
                                  "x\ntouch {pwn}"])
def test_a_payload_value_in_a_shell_command_stays_one_argument(name, tmp_path):
    pwn = tmp_path / "pwn"
    name = name.format(pwn=pwn)

    result = run_locally({"greet": {"run": "printf '%s\\n' hello {{ trigger.body.name }}"}},
                         trigger={"body": {"name": name}})

    assert result.status == "succeeded", result.tasks["greet"].error
    assert not pwn.exists(), "the payload ran as a command"
    assert result.tasks["greet"].output["stdout"] == f"hello\n{name}\n"


# --- and on a worker -----------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_refuses_the_same_bad_input_with_the_same_messages(api, start_worker, http_server, tmp_path):
    start_worker("w1", AUTOMATION_HTTP_ALLOW_PRIVATE="0")
    pwn = tmp_path / "pwn"
    created = api.post("/api/workflows/", {"definition": {"name": "bad input on a worker", "tasks": {
        "loopback": {"action": "http.request", "inputs": {"url": http_server.url("/json")}},
        "metadata": {"action": "http.request", "inputs": {"url": "http://169.254.169.254/latest/meta-data/"}},
        "wrong_type": {"action": "http.request", "inputs": {"url": "https://example.com/",
                                                            "timeout": "{{ trigger.body.timeout }}"}},
        "ssti": {"action": "transform.jinja", "inputs": {"value": SSTI}},
        "escape": {"action": "file.write", "inputs": {"path": "../../etc/x", "content": "pwned"}},
        "missing": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.nme }}"}},
        "shell": {"run": "echo hello {{ trigger.body.name }}"},
    }}}, content_type="application/json")
    assert created.status_code == 201, created.json()
    body = {"timeout": "soon", "name": f"x; touch {pwn}"}

    run = wait_for_run(api.post(f"/api/workflows/{created.json()['id']}/run/", body,
                                content_type="application/json").json()["run_id"])

    errors = {t.task_id: t.error for t in TaskRun.objects.filter(run=run)}
    assert run.status == "failed"
    assert errors == {
        "loopback": "refused: 127.0.0.1 is a loopback address (set AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow)",
        "metadata": "refused: 169.254.169.254 is a link-local address (set AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow)",
        "wrong_type": INVALID_INPUTS + "inputs.timeout: 'soon' is not of type 'number'",
        "ssti": COULD_NOT_RENDER
                + "inputs.value: refused by the sandbox: access to attribute '__class__' of 'str' object is unsafe.",
        "escape": "path '../../etc/x' escapes the files root",
        "missing": COULD_NOT_RENDER + "inputs.value: trigger.body.nme is undefined",
        "shell": "",
    }
    assert http_server.seen == []
    assert not pwn.exists()
    assert TaskRun.objects.get(run=run, task_id="shell").output["stdout"] == f"hello x; touch {pwn}\n"
