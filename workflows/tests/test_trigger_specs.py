"""`triggers:` parse into typed, frozen specs with their defaults; a webhook's `respond` rules (SPEC §9). No database."""
from __future__ import annotations

import dataclasses

import pytest

from connectors.registry import default_registry
from workflows.definition import InvalidDefinition, compile_definition
from workflows.kinds import TriggerKind, TriggerRule
from workflows.trigger_specs import CronTrigger, ManualTrigger, PollTrigger, WebhookTrigger
from workflows.webhook_trigger import Respond


def compile_triggers(*triggers):
    return compile_definition({"name": "t", "tasks": {"a": {"run": "true"}}, "triggers": list(triggers)},
                              default_registry()).triggers


def problems(*triggers) -> list[dict]:
    with pytest.raises(InvalidDefinition) as raised:
        compile_triggers(*triggers)
    return [p.as_dict() for p in raised.value.problems]


def test_each_trigger_type_becomes_its_frozen_spec_with_the_defaults_filled_in():
    webhook, cron, poll, manual = compile_triggers(
        {"type": "webhook"}, {"type": "cron", "cron": "0 9 * * *"},
        {"type": "poll", "action": "http.request", "inputs": {"url": "https://example.com/feed"}}, {"type": "manual"})

    assert webhook == WebhookTrigger(methods=("POST",), secret=None, signature="generic", rate_limit=None,
                                     respond=Respond.IMMEDIATELY, respond_timeout=10.0)
    assert cron == CronTrigger(cron="0 9 * * *", timezone="UTC", catchup=False, max_catchup=1)
    assert (poll.every, poll.timeout, poll.items_template, poll.key) == (300, 30.0, "{{ output.json }}", None)
    assert isinstance(manual, ManualTrigger)
    with pytest.raises(dataclasses.FrozenInstanceError):
        webhook.respond = Respond.ON_FINISH


def test_a_webhook_can_ask_to_answer_its_caller_when_the_run_finishes():
    (webhook,) = compile_triggers({"type": "webhook", "respond": "on_finish", "respond_timeout": 25,
                                   "methods": ["post", "GET"]})

    assert (webhook.respond, webhook.respond_timeout, webhook.methods) == (Respond.ON_FINISH, 25.0, ("POST", "GET"))


@pytest.mark.parametrize("trigger, expected", [
    ({"respond": "later"}, [{"path": "triggers[0].respond",
                             "message": "'later' is not one of immediately, on_finish"}]),
    ({"respond": "on_finish", "respond_timeout": 45},
     [{"path": "triggers[0].respond_timeout", "message": "must be a number of seconds above 0 and at most 30, got 45"}]),
    ({"respond": "on_finish", "respond_timeout": 0},
     [{"path": "triggers[0].respond_timeout", "message": "must be a number of seconds above 0 and at most 30, got 0"}]),
    ({"respond_timeout": 5}, [{"path": "triggers[0].respond_timeout",
                               "message": "only applies with `respond: on_finish`"}]),
    ({"respnd": "on_finish"}, [{"path": "triggers[0].respnd", "message": "unknown key 'respnd' (did you mean 'respond'?)"}]),
])
def test_a_webhook_respond_setting_the_gateway_could_not_honour_is_refused_naming_its_path(trigger, expected):
    assert problems({"type": "webhook", **trigger}) == expected


def test_an_unknown_trigger_type_lists_the_known_ones():
    assert problems({"type": "email"}) == [
        {"path": "triggers[0].type", "message": "'email' is not one of webhook, cron, poll, manual"}]


def test_a_poll_trigger_names_its_bad_keys_by_path():
    assert problems({"type": "poll", "action": "http.requst", "every": 0, "timeout": "soon"}) == [
        {"path": "triggers[0].every", "message": "must be a number >= 1, got 0"},
        {"path": "triggers[0].timeout", "message": "must be a number >= 0.001, got 'soon'"},
        {"path": "triggers[0].action", "message": "unknown action 'http.requst' (did you mean 'http.request'?)"},
    ]


def test_the_closed_sets_keep_the_spellings_stored_in_existing_runs_and_definitions():
    assert [kind.value for kind in TriggerKind] == [
        "manual", "webhook", "cron", "poll", "retry", "rerun", "cli", "child", "failure_handler"]
    assert [rule.value for rule in TriggerRule] == ["all_success", "all_done", "one_failed", "one_success"]
