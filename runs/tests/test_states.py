from runs.states import RunStatus, TaskStatus, advance, retry_delay, rule_decision, run_outcome

S, F, K, P, R = "succeeded", "failed", "skipped", "pending", "running"
PIPELINE = {"task_A": (), "task_B": ("task_A",), "task_C": ("task_B",), "task_D": ("task_A",),
            "task_E": ("task_C", "task_D")}


def test_trigger_rules():
    assert rule_decision("all_success", [S, S]) == "run"
    assert rule_decision("all_success", [S, R]) == "wait"
    assert rule_decision("all_success", [F, R]) == "skip"
    assert rule_decision("all_done", [F, K]) == "run"
    assert rule_decision("all_done", [F, R]) == "wait"
    assert rule_decision("one_failed", [F, R]) == "run"
    assert rule_decision("one_failed", [S, S]) == "skip"
    assert rule_decision("one_success", [S, R]) == "run"
    assert rule_decision("one_success", [F, K]) == "skip"


def test_failure_skips_what_can_no_longer_run_and_all_done_still_runs():
    rules = {t: "all_success" for t in PIPELINE} | {"task_E": "all_done"}
    decided = advance(PIPELINE, rules, {"task_A": S, "task_B": F, "task_C": P, "task_D": S, "task_E": P})
    assert decided.to_skip == ["task_C"]
    assert decided.to_queue == ["task_E"]


def test_skips_propagate_through_the_graph():
    rules = {t: "all_success" for t in PIPELINE}
    decided = advance(PIPELINE, rules, {"task_A": F, "task_B": P, "task_C": P, "task_D": P, "task_E": P})
    assert sorted(decided.to_skip) == ["task_B", "task_C", "task_D", "task_E"]


def test_run_fails_when_any_task_failed_even_if_handled():
    assert run_outcome({"a": F, "b": S}) == RunStatus.FAILED
    assert run_outcome({"a": S, "b": K}) == RunStatus.SUCCEEDED
    assert run_outcome({"a": S, "b": R}) is None
    assert run_outcome({"a": S, "b": TaskStatus.CANCELLED}) == RunStatus.CANCELLED


def test_backoff_grows_exponentially():
    assert [retry_delay(2, attempt) for attempt in (1, 2, 3)] == [2, 4, 8]


def test_a_skipped_task_names_the_upstream_task_that_failed():
    rules = {t: "all_success" for t in PIPELINE}
    decided = advance(PIPELINE, rules, {"task_A": S, "task_B": F, "task_C": P, "task_D": S, "task_E": P})
    assert decided.skip_reasons == {"task_C": "upstream task_B failed", "task_E": "upstream task_C skipped"}


def test_a_skip_by_trigger_rule_says_which_rule_was_not_met():
    graph = {"a": (), "on_failure": ("a",), "on_success": ("a",)}
    rules = {"a": "all_success", "on_failure": "one_failed", "on_success": "one_success"}
    assert advance(graph, rules, {"a": S, "on_failure": P, "on_success": P}).skip_reasons == {
        "on_failure": "no upstream task failed"}
    assert advance(graph, rules, {"a": F, "on_failure": P, "on_success": P}).skip_reasons == {
        "on_success": "no upstream task succeeded"}
