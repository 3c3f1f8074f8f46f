"""AUTOMATION_HTTP_ALLOWED_NETWORKS: read and checked at start-up, handed to the actions by action_config, and
obeyed by http.request in-process and on a real worker; 169.254.169.254 and other private addresses stay refused."""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model

from automation.env import env_networks
from automation.testing import ROOT, wait_for_run
from connectors.base import ActionContext, ActionError
from connectors.http.actions import HttpRequest
from connectors.platform import action_config
from runs.models import TaskRun


def settings_load_error(value: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "automation.settings", "AUTOMATION_HTTP_ALLOWED_NETWORKS": value}
    return subprocess.run([sys.executable, "-c", "import automation.settings"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_setting_is_read_as_a_list_of_networks(monkeypatch):
    monkeypatch.setenv("AUTOMATION_HTTP_ALLOWED_NETWORKS", " 127.0.0.0/8, 10.1.2.3 ,fd00:1::/64,")

    assert env_networks("AUTOMATION_HTTP_ALLOWED_NETWORKS") == (
        ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.1.2.3/32"), ipaddress.ip_network("fd00:1::/64"))


def test_an_unset_or_empty_setting_allows_no_network(monkeypatch):
    monkeypatch.delenv("AUTOMATION_HTTP_ALLOWED_NETWORKS", raising=False)
    assert env_networks("AUTOMATION_HTTP_ALLOWED_NETWORKS") == ()
    monkeypatch.setenv("AUTOMATION_HTTP_ALLOWED_NETWORKS", "")
    assert env_networks("AUTOMATION_HTTP_ALLOWED_NETWORKS") == ()


@pytest.mark.parametrize(
    "value, message",
    [
        ("10.0.0.1/8", "AUTOMATION_HTTP_ALLOWED_NETWORKS: '10.0.0.1/8' is not a network in CIDR notation "
                       "(10.0.0.1/8 has host bits set)"),
        ("127.0.0.0/8,intranet", "AUTOMATION_HTTP_ALLOWED_NETWORKS: 'intranet' is not a network in CIDR notation"),
        ("10.0.0.0/33", "AUTOMATION_HTTP_ALLOWED_NETWORKS: '10.0.0.0/33' is not a network in CIDR notation"),
    ],
)
def test_a_bad_cidr_stops_the_settings_from_loading_with_a_message_naming_it(value, message):
    loaded = settings_load_error(value)

    assert loaded.returncode != 0
    assert f"ValueError: {message}" in loaded.stderr


def test_http_request_reaches_an_allowed_network_through_action_config(settings, http_server, connections):
    settings.AUTOMATION_HTTP_ALLOW_PRIVATE = False
    settings.AUTOMATION_HTTP_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    context = ActionContext(run_id=1, task_id="t", config=action_config())

    output = HttpRequest().execute({"url": http_server.url("/json")}, context)
    assert output["json"] == {"hello": "world", "n": 1}
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::ffff:169.254.169.254]/"):
        with pytest.raises(ActionError, match=r"^refused: "):
            HttpRequest().execute({"url": url}, context)

    assert connections == [("127.0.0.1", http_server.port)]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_reaches_the_allowed_network_and_still_refuses_metadata_and_private_addresses(
        client, start_worker, http_server):
    start_worker("w1", AUTOMATION_HTTP_ALLOW_PRIVATE="0", AUTOMATION_HTTP_ALLOWED_NETWORKS="127.0.0.0/8")
    client.force_login(get_user_model().objects.create_user("operator", password="pw"))
    mapped = f"http://[::ffff:127.0.0.1]:{http_server.port}/json"
    created = client.post("/api/workflows/", {"definition": {"name": "allowed networks", "tasks": {
        "internal": {"action": "http.request", "inputs": {"url": http_server.url("/json")}},
        "internal_mapped": {"action": "http.request", "inputs": {"url": mapped}},
        "metadata": {"action": "http.request", "inputs": {"url": "http://169.254.169.254/latest/meta-data/"}},
        "metadata_mapped": {"action": "http.request", "inputs": {"url": "http://[::ffff:169.254.169.254]/"}},
        "private": {"action": "http.request", "inputs": {"url": "http://10.0.0.1/"}},
    }}}, content_type="application/json")
    assert created.status_code == 201, created.json()

    run = wait_for_run(client.post(f"/api/workflows/{created.json()['id']}/run/").json()["run_id"])

    tasks = {t.task_id: t for t in TaskRun.objects.filter(run=run)}
    assert tasks["internal"].status == "succeeded", tasks["internal"].error
    assert tasks["internal"].output["json"] == {"hello": "world", "n": 1}
    assert tasks["internal_mapped"].status == "succeeded", tasks["internal_mapped"].error
    hint = "(set AUTOMATION_HTTP_ALLOW_PRIVATE=1 to allow)"
    assert {name: tasks[name].error for name in ("metadata", "metadata_mapped", "private")} == {
        "metadata": f"refused: 169.254.169.254 is a link-local address {hint}",
        "metadata_mapped": "refused: ::ffff:169.254.169.254 is a link-local address in IPv6 form (169.254.169.254) "
                           + hint,
        "private": f"refused: 10.0.0.1 is a private address {hint}",
    }
    assert len(http_server.seen) == 2
