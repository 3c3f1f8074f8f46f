"""The seed's workflows end to end on a real worker: an HTTP API read into a file, and a webhook into a file."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.contrib.auth import get_user_model

from automation.testing import wait_for_run
from runs.models import TaskRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "examples"
USERS = {"octocat": {"login": "octocat", "id": 583231, "name": "The Octocat", "email": "octocat@example.org",
                     "public_repos": 8, "site_admin": False, "plan": {"name": "free", "collaborators": 0},
                     "bio": "Ünïcode ✓"}}


class _UserAPI(BaseHTTPRequestHandler):
    """`GET /users/<login>`: the user as JSON, like api.github.com does."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        login = urlsplit(self.path).path.removeprefix("/users/")
        user = USERS.get(login)
        body = json.dumps(user if user else {"message": "Not Found"}).encode()
        self.send_response(200 if user else 404)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def user_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _UserAPI)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def api(client):
    client.force_login(get_user_model().objects.create_user("operator", password="pw"))
    return client


def create_workflow(api, definition) -> dict:
    created = api.post("/api/workflows/", {"definition": definition}, content_type="application/json")
    assert created.status_code == 201, created.json()
    return created.json()


def tasks_of(run_id: int) -> dict[str, TaskRun]:
    return {t.task_id: t for t in TaskRun.objects.filter(run_id=run_id)}


def test_the_seed_workflow_writes_the_served_user_to_a_file(api, start_worker, user_api):
    start_worker("w1")
    definition = yaml.safe_load((EXAMPLES / "workflow-with-actions.yaml").read_text())
    definition["tasks"]["get_user"]["inputs"]["url"] = f"{user_api}/users/octocat"
    # The seed writes the body text; the same data as a native dict is written as indented JSON.
    definition["tasks"]["write_user_json"] = {
        "action": "file.write", "depends_on": ["get_user"],
        "inputs": {"path": "users/{{ tasks.get_user.output.json.login }}.json",
                   "content": "{{ tasks.get_user.output.json }}"}}
    workflow = create_workflow(api, definition)

    run = wait_for_run(api.post(f"/api/workflows/{workflow['id']}/run/").json()["run_id"])

    tasks = tasks_of(run.id)
    assert run.status == "succeeded", {t: (r.status, r.error) for t, r in tasks.items()}
    root = Path(settings.AUTOMATION_FILES_ROOT)
    assert json.loads((root / "user_info.json").read_text()) == USERS["octocat"]
    written = (root / "users" / "octocat.json").read_text(encoding="utf-8")
    assert json.loads(written) == USERS["octocat"]
    # Indented, UTF-8 as is. (Key order is jsonb's: the upstream output went through PostgreSQL.)
    assert written == json.dumps(json.loads(written), indent=2, ensure_ascii=False) + "\n"
    assert '"bio": "Ünïcode ✓"' in written
    assert tasks["write_user_json"].output == {"path": "users/octocat.json", "bytes": len(written.encode())}
    assert tasks["get_user"].output["json"] == USERS["octocat"]
    assert tasks["get_user"].logs.startswith(f"GET {user_api}/users/octocat -> 200")


def test_a_user_the_api_does_not_know_fails_the_fetch_and_skips_the_write(api, start_worker, user_api):
    start_worker("w1")
    workflow = create_workflow(api, {"name": "missing user", "tasks": {
        "get_user": {"action": "http.request", "inputs": {"url": f"{user_api}/users/nobody"}},
        "save": {"action": "file.write", "depends_on": ["get_user"],
                 "inputs": {"path": "nobody.json", "content": "{{ tasks.get_user.output.json }}"}}}})

    run = wait_for_run(api.post(f"/api/workflows/{workflow['id']}/run/").json()["run_id"])

    tasks = tasks_of(run.id)
    assert run.status == "failed"
    assert tasks["get_user"].error.startswith(f"GET {user_api}/users/nobody -> 404")
    assert tasks["get_user"].output["json"] == {"message": "Not Found"}
    assert tasks["save"].status == "skipped"
    assert not (Path(settings.AUTOMATION_FILES_ROOT) / "nobody.json").exists()


def test_a_webhook_payload_is_transformed_and_written_to_a_file_named_by_the_run(api, client, start_worker):
    start_worker("w1")
    workflow = create_workflow(api, (EXAMPLES / "webhook-to-file.yaml").read_text())
    client.logout()  # the webhook needs no session: its token is the credential

    response = client.post(workflow["webhook_url"], {"user": {"name": "Ada"}, "items": [1, 2, 3]},
                           content_type="application/json")

    assert response.status_code == 202, response.content
    run = wait_for_run(response.json()["run_id"])
    assert run.status == "succeeded", {t: (r.status, r.error) for t, r in tasks_of(run.id).items()}
    written = Path(settings.AUTOMATION_FILES_ROOT) / "greetings" / f"{run.id}.txt"
    assert written.read_text() == "Hello Ada, you sent 3 items"
    assert tasks_of(run.id)["save"].output == {"path": f"greetings/{run.id}.txt", "bytes": 27}
