"""docker-compose.yml, Dockerfile and .env.example describe a deployable, closed-by-default stack."""
import os
import re
import subprocess

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


def test_web_runs_gunicorn_with_four_workers_unless_web_workers_says_and_production_settings(compose):
    web = compose["services"]["web"]
    assert re.search(r"gunicorn automation\.wsgi:application .*--workers \$\$\{WEB_WORKERS:-4\}", command_of(web))
    assert web["environment"]["DJANGO_SETTINGS_MODULE"] == "automation.settings_production"
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_workers_scale_and_beat_uses_the_database_scheduler(compose):
    worker, beat = compose["services"]["worker"], compose["services"]["beat"]
    assert "celery -A automation worker" in command_of(worker)
    assert "replicas" in worker["deploy"]
    assert command_of(beat).startswith("celery -A automation beat")
    assert "django_celery_beat.schedulers:DatabaseScheduler" in command_of(beat)


def expand(service: dict, env: dict) -> list[str]:
    """The argv a service's `sh -c` command execs, as the container's shell would expand it under `env`."""
    shell, flag, script = service["command"]
    assert (shell, flag) == ("sh", "-c") and script.startswith("exec ")
    script = "printf '%s\\n' " + script.removeprefix("exec ").replace("$$", "$")  # compose turns $$ into $
    return subprocess.run([shell, flag, script], env=env, capture_output=True, text=True, check=True).stdout.split()


def test_a_worker_runs_one_pool_process_per_cpu_unless_worker_concurrency_says_otherwise(compose):
    worker, web = compose["services"]["worker"], compose["services"]["web"]
    argv = expand(worker, {"PATH": os.environ["PATH"]})
    assert argv[argv.index("-c") + 1] == str(len(os.sched_getaffinity(0)))
    argv = expand(worker, {"PATH": os.environ["PATH"], "WORKER_CONCURRENCY": "7"})
    assert argv[argv.index("-c") + 1] == "7"
    argv = expand(web, {"PATH": os.environ["PATH"], "WEB_WORKERS": "3"})
    assert argv[argv.index("--workers") + 1] == "3" and "*" in argv


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
