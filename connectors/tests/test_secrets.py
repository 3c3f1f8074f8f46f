"""The secrets vault on PostgreSQL: ciphertext at rest, key rotation through SECRET_KEY_FALLBACKS, and secrets
used by a real worker masked as *** in every stored row (checked with raw SQL, not through the models)."""
from __future__ import annotations

from functools import partial

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.signals import setting_changed
from django.db import connection
from encrypted_fields.fields import EncryptedFieldMixin

from automation.testing import wait_for_run
from connectors.base import ActionConfig
from connectors.fields import UndecryptableValue
from connectors.models import Secret
from connectors.registry import default_registry
from connectors.secrets import SecretUndecryptable, secret_value, secrets_reencrypt
from runs.executor import RecordingSecrets, execute_attempt, template_context
from workflows.definition import compile_definition

TOKEN = "tok-5f3a9c2e-d41d-8cd9-8f00-b204e9800998"
KEY_A = "rotation-test-key-A-" + "a" * 40
KEY_B = "rotation-test-key-B-" + "b" * 40
KEY_SETTINGS = {"SECRET_KEY", "SECRET_KEY_FALLBACKS", "SALT_KEY"}
COULD_NOT_RENDER = "could not run: template error: "


def raw_value(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM connectors_secret WHERE name = %s", [name])
        return cursor.fetchone()[0]


def _forget_derived_keys(*, setting: str, **kwargs) -> None:
    # The library derives its Fernet keys once per field (cached_property `keys` and `f`); a running process
    # only picks up a new SECRET_KEY when restarted, so a test that changes it must drop the cache.
    if setting not in KEY_SETTINGS:
        return
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, EncryptedFieldMixin):
                field.__dict__.pop("keys", None)
                field.__dict__.pop("f", None)


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("vault-owner", password="pw")


@pytest.fixture
def keys(settings):
    """Change SECRET_KEY / SECRET_KEY_FALLBACKS through `keys(A, fallbacks=[...])`; derived keys follow."""
    setting_changed.connect(_forget_derived_keys)

    def use(secret_key: str, *, fallbacks: list[str] | None = None) -> None:
        settings.SECRET_KEY = secret_key
        settings.SECRET_KEY_FALLBACKS = fallbacks or []

    yield use
    setting_changed.disconnect(_forget_derived_keys)
    # `settings` restores the real keys after this teardown; the cache is dropped now and derived again, from
    # the restored keys, on next use.
    _forget_derived_keys(setting="SECRET_KEY")


# --- at rest -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_column_holds_a_fernet_token_never_the_plaintext(owner):
    Secret.objects.create(owner=owner, name="API_TOKEN", value=TOKEN)

    stored = raw_value("API_TOKEN")
    assert TOKEN not in stored
    assert stored.startswith("gAAAAA")  # Fernet, version byte 0x80
    assert Secret.objects.get(name="API_TOKEN").value == TOKEN
    assert secret_value("API_TOKEN", owner_id=owner.id) == TOKEN


@pytest.mark.django_db
def test_an_updated_value_is_encrypted_too(owner):
    Secret.objects.create(owner=owner, name="API_TOKEN", value="first-value")
    Secret.objects.filter(name="API_TOKEN").update(value=TOKEN)
    secret = Secret.objects.get(name="API_TOKEN")
    secret.description = "changed"
    secret.save()

    assert TOKEN not in raw_value("API_TOKEN")
    assert secret_value("API_TOKEN", owner_id=owner.id) == TOKEN


@pytest.mark.django_db
def test_the_same_value_encrypts_differently_each_time(owner):
    Secret.objects.create(owner=owner, name="ONE", value=TOKEN)
    Secret.objects.create(owner=owner, name="TWO", value=TOKEN)
    assert raw_value("ONE") != raw_value("TWO")


@pytest.mark.django_db
def test_an_unknown_secret_is_none(owner):
    assert secret_value("NOPE", owner_id=owner.id) is None


# --- key rotation --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_secret_written_under_the_old_key_decrypts_after_rotation_through_the_fallbacks(keys, owner):
    keys(KEY_A)
    Secret.objects.create(owner=owner, name="API_TOKEN", value=TOKEN)
    written = raw_value("API_TOKEN")

    keys(KEY_B, fallbacks=[KEY_A])

    assert secret_value("API_TOKEN", owner_id=owner.id) == TOKEN
    assert Secret.objects.get(name="API_TOKEN").value == TOKEN
    assert raw_value("API_TOKEN") == written, "reading must not rewrite the row"


@pytest.mark.django_db
def test_a_secret_no_key_decrypts_fails_loudly_instead_of_yielding_the_ciphertext(keys, owner):
    keys(KEY_A)
    Secret.objects.create(owner=owner, name="API_TOKEN", value=TOKEN)

    keys(KEY_B)  # the old key dropped without re-encrypting first

    with pytest.raises(SecretUndecryptable, match="secret 'API_TOKEN' cannot be decrypted with SECRET_KEY"):
        secret_value("API_TOKEN", owner_id=owner.id)


@pytest.mark.django_db
def test_reading_a_row_no_key_decrypts_raises_instead_of_yielding_the_ciphertext(keys, owner):
    keys(KEY_A)
    Secret.objects.create(owner=owner, name="API_TOKEN", value=TOKEN)
    keys(KEY_B)

    with pytest.raises(UndecryptableValue, match="Secret.value cannot be decrypted with SECRET_KEY"):
        Secret.objects.get(name="API_TOKEN")
    with pytest.raises(SecretUndecryptable, match="secret 'API_TOKEN' cannot be decrypted"):
        secrets_reencrypt()
    assert Secret.objects.defer("value").get(name="API_TOKEN").name == "API_TOKEN"  # names still list


@pytest.mark.django_db
def test_saving_after_rotation_reencrypts_under_the_new_key(keys, owner):
    keys(KEY_A)
    Secret.objects.create(owner=owner, name="API_TOKEN", value=TOKEN)
    under_a = raw_value("API_TOKEN")

    keys(KEY_B, fallbacks=[KEY_A])
    Secret.objects.get(name="API_TOKEN").save()
    keys(KEY_B)  # the fallback is gone: only the new key is left

    assert raw_value("API_TOKEN") != under_a
    assert TOKEN not in raw_value("API_TOKEN")
    assert secret_value("API_TOKEN", owner_id=owner.id) == TOKEN


@pytest.mark.django_db
def test_reencrypt_moves_every_secret_to_the_new_key(keys, owner):
    keys(KEY_A)
    Secret.objects.create(owner=owner, name="API_TOKEN", value=TOKEN)
    Secret.objects.create(owner=owner, name="OTHER", value="other-value")

    keys(KEY_B, fallbacks=[KEY_A])
    assert secrets_reencrypt() == 2
    keys(KEY_B)

    assert secret_value("API_TOKEN", owner_id=owner.id) == TOKEN
    assert secret_value("OTHER", owner_id=owner.id) == "other-value"
    keys(KEY_A)  # and the old key alone no longer opens them
    with pytest.raises(SecretUndecryptable):
        secret_value("OTHER", owner_id=owner.id)


@pytest.mark.django_db
def test_a_task_using_a_secret_no_key_decrypts_fails_with_a_clear_message(keys, owner):
    keys(KEY_A)
    Secret.objects.create(owner=owner, name="API_TOKEN", value=TOKEN)
    ciphertext = raw_value("API_TOKEN")
    keys(KEY_B)
    spec = compile_definition({"name": "t", "tasks": {"call": {"action": "http.request", "inputs": {
        "url": "http://127.0.0.1:9/", "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"}}}}},
        default_registry())

    result = execute_attempt(
        spec.tasks["call"], registry=default_registry(), config=ActionConfig(), run_id=1,
        template_context=template_context(trigger={}, task_results={}, run={"id": 1},
                                          secrets=RecordingSecrets(partial(secret_value, owner_id=owner.id))))

    assert result.status == "failed"
    assert result.error.startswith(
        COULD_NOT_RENDER + "inputs.headers.Authorization: SecretUndecryptable: secret 'API_TOKEN' cannot")
    assert ciphertext not in result.error and ciphertext not in str(result.inputs)


@pytest.mark.django_db
def test_a_missing_secret_names_itself(owner):
    spec = compile_definition({"name": "t", "tasks": {"show": {"action": "transform.jinja", "inputs": {
        "value": "{{ secrets.NOT_THERE }}"}}}}, default_registry())

    result = execute_attempt(
        spec.tasks["show"], registry=default_registry(), config=ActionConfig(), run_id=1,
        template_context=template_context(trigger={}, task_results={}, run={"id": 1},
                                          secrets=RecordingSecrets(partial(secret_value, owner_id=owner.id))))

    assert result.error == COULD_NOT_RENDER + "inputs.value: secrets.NOT_THERE is undefined"


# --- masked end to end, on a worker --------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_secret_sent_in_a_header_is_stored_nowhere_in_clear(client, start_worker, http_server, owner):
    worker = start_worker("w1")
    Secret.objects.create(owner=owner, name="API_TOKEN", value=TOKEN)
    client.force_login(owner)
    definition = {"name": "uses a secret", "tasks": {
        "call_api": {"action": "http.request", "inputs": {
            "url": http_server.url("/echo"), "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"}}},
        "echo_token": {"run": "echo token={{ secrets.API_TOKEN }}"},
        "fail_with_token": {"run": "echo {{ secrets.API_TOKEN }} >&2; exit 3"},
        "reuse_output": {"action": "transform.jinja", "depends_on": ["call_api"],
                         "inputs": {"value": "{{ steps.call_api.output.json.headers.Authorization }}"}},
    }}
    created = client.post("/api/workflows/", {"definition": definition}, content_type="application/json")
    assert created.status_code == 201, created.json()
    started = client.post(f"/api/workflows/{created.json()['id']}/run/", {}, content_type="application/json")

    run = wait_for_run(started.json()["run_id"])

    # The secret really was used: the server received it in clear.
    assert [seen.headers["Authorization"] for seen in http_server.seen] == [f"Bearer {TOKEN}"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT task_id, status, output::text, logs, error, inputs::text, attempts::text "
                       "FROM runs_taskrun WHERE run_id = %s", [run.id])
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute("SELECT row_to_json(t)::text FROM runs_taskrun t WHERE run_id = %s", [run.id])
        whole_task_rows = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT row_to_json(r)::text FROM runs_workflowrun r WHERE id = %s", [run.id])
        whole_run_row = cursor.fetchone()[0]

    assert {task: row[0] for task, row in rows.items()} == {
        "call_api": "succeeded", "echo_token": "succeeded", "fail_with_token": "failed", "reuse_output": "succeeded"}
    for text in [*whole_task_rows, whole_run_row, *(c for row in rows.values() for c in row)]:
        assert TOKEN not in text
    assert TOKEN not in worker.log()

    status, output, logs, error, inputs, attempts = rows["call_api"]
    assert '"Authorization": "Bearer ***"' in inputs  # what was sent, as stored
    assert '"Authorization": "Bearer ***"' in output  # what the server echoed back
    status, output, logs, error, inputs, attempts = rows["echo_token"]
    assert "token=***" in output and logs == "token=***" and '"command": "echo token=***"' in inputs
    status, output, logs, error, inputs, attempts = rows["fail_with_token"]
    assert error == "exit code 3: ***" and "exit code 3: ***" in attempts and "[stderr] ***" in logs
    assert '"value": "Bearer ***"' in rows["reuse_output"][1]
