"""Validation messages suggest the closest known name for a misspelt key, action or input."""
import pytest

from connectors.registry import default_registry
from workflows.definition import InvalidDefinition, compile_definition


def messages(definition: dict) -> dict[str, str]:
    with pytest.raises(InvalidDefinition) as caught:
        compile_definition(definition, default_registry())
    return {p.path: p.message for p in caught.value.problems}


def test_a_misspelt_action_suggests_the_known_one():
    found = messages({"name": "x", "tasks": {"fetch": {"action": "http.requst", "inputs": {"url": "http://x"}}}})
    assert found["tasks.fetch.action"] == "unknown action 'http.requst' (did you mean 'http.request'?)"


def test_misspelt_keys_suggest_the_known_ones_at_every_level():
    found = messages({"name": "x", "tirggers": [], "tasks": {"a": {"run": "echo a", "dependson": []}}})
    assert found["tirggers"] == "unknown key 'tirggers' (did you mean 'triggers'?)"
    assert found["tasks.a.dependson"] == "unknown key 'dependson' (did you mean 'depends_on'?)"
    found = messages({"name": "x", "tasks": {"a": {"run": "echo a"}},
                      "triggers": [{"type": "cron", "cron": "0 9 * * *", "timzone": "UTC"}]})
    assert found["triggers[0].timzone"] == "unknown key 'timzone' (did you mean 'timezone'?)"


def test_a_misspelt_input_suggests_the_actions_input():
    found = messages({"name": "x", "tasks": {"a": {"action": "http.request",
                                                   "inputs": {"url": "http://x", "methd": "GET"}}}})
    assert found["tasks.a.inputs"].endswith("(did you mean 'method'?)")


def test_a_poll_trigger_with_a_misspelt_action_gets_a_suggestion():
    found = messages({"name": "x", "tasks": {"a": {"run": "echo a"}},
                      "triggers": [{"type": "poll", "action": "http.reqest", "every": 60}]})
    assert found["triggers[0].action"] == "unknown action 'http.reqest' (did you mean 'http.request'?)"


def test_a_name_nothing_like_a_known_one_gets_no_guess():
    found = messages({"name": "x", "tasks": {"a": {"action": "zzz.qqq"}}})
    assert found["tasks.a.action"] == "unknown action 'zzz.qqq'"
