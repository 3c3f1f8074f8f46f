"""The production profile passes `check --deploy` cleanly and refuses to start on development secrets."""
import os
import secrets
import subprocess
import sys

from automation.testing import ROOT

DATABASE_URL = "postgres://flowforge:pw@127.0.0.1:5432/flowforge"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    environment.update({"DJANGO_SETTINGS_MODULE": "automation.settings_production", **env})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_reports_no_issue_with_a_random_secret_key():
    result = manage("check", "--deploy", SECRET_KEY=secrets.token_urlsafe(50), DATABASE_URL=DATABASE_URL)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNING" not in output.upper()


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", DATABASE_URL=DATABASE_URL)
    assert result.returncode != 0
    assert "SECRET_KEY must be set in production" in result.stderr


def test_production_refuses_the_development_secret_key():
    result = manage("check", SECRET_KEY="insecure-dev-key-change-me-" + "x" * 40, DATABASE_URL=DATABASE_URL)
    assert result.returncode != 0
    assert "SECRET_KEY is the development default" in result.stderr


def test_production_refuses_a_short_secret_key():
    result = manage("check", SECRET_KEY="too-short", DATABASE_URL=DATABASE_URL)
    assert result.returncode != 0
    assert "at least 50 random characters" in result.stderr


def test_production_refuses_to_fall_back_to_sqlite():
    result = manage("check", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert "DATABASE_URL must be set in production" in result.stderr


def test_production_refuses_debug():
    result = manage("check", SECRET_KEY=secrets.token_urlsafe(50), DATABASE_URL=DATABASE_URL, DEBUG="1")
    assert result.returncode != 0
    assert "DEBUG must be off in production" in result.stderr


def test_production_logs_json_lines_by_default():
    code = ("import logging, json; from django.conf import settings; import django; django.setup(); "
            "logging.getLogger('flowforge.check').warning('hello'); ")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**{k: v for k, v in os.environ.items() if k != "LOG_FORMAT"},
                                 "DJANGO_SETTINGS_MODULE": "automation.settings_production",
                                 "SECRET_KEY": secrets.token_urlsafe(50), "DATABASE_URL": DATABASE_URL})
    assert result.returncode == 0, result.stderr
    import json

    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello" and line["level"] == "WARNING" and line["logger"] == "flowforge.check"
