"""docker-compose.yml, Dockerfile and .env.example describe a deployable, closed-by-default stack."""
import re

import pytest
import yaml

from automation.testing import ROOT


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_of(service: dict) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_compose_defines_web_workers_beat_postgres_and_redis(compose):
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(compose["services"])


def test_web_runs_gunicorn_with_four_workers_and_production_settings(compose):
    web = compose["services"]["web"]
    assert re.search(r"gunicorn automation\.wsgi:application .*--workers 4", command_of(web))
    assert web["environment"]["DJANGO_SETTINGS_MODULE"] == "automation.settings_production"
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_workers_scale_and_beat_uses_the_database_scheduler(compose):
    worker, beat = compose["services"]["worker"], compose["services"]["beat"]
    assert "celery -A automation worker" in command_of(worker)
    assert "replicas" in worker["deploy"]
    assert command_of(beat).startswith("celery -A automation beat")
    assert "django_celery_beat.schedulers:DatabaseScheduler" in command_of(beat)


def test_every_app_service_reads_its_configuration_from_the_environment(compose):
    for name in ("web", "worker", "beat"):
        service = compose["services"][name]
        assert service["env_file"] == ".env"
        assert service["environment"]["CELERY_BROKER_URL"].startswith("redis://:${REDIS_PASSWORD")
        assert service["environment"]["CELERY_BROKER_URL"].endswith("@redis:6379/0")
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")


def test_redis_requires_a_password_and_is_not_published_to_the_host(compose):
    redis = compose["services"]["redis"]
    assert "ports" not in redis
    assert "--requirepass" in command_of(redis)
    assert "REDIS_PASSWORD" in redis["environment"]


def test_postgres_keeps_its_data_in_a_volume_and_is_not_published(compose):
    postgres = compose["services"]["postgres"]
    assert "ports" not in postgres
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pgdata" in compose["volumes"]


def test_dockerfile_installs_the_requirements_and_runs_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")


def test_env_example_names_every_secret_without_a_value():
    values = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    for secret in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "FIELD_ENCRYPTION_SALT"):
        assert secret in values and values[secret] == "", secret


def test_the_env_file_and_virtualenv_stay_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and ".git" in ignored
