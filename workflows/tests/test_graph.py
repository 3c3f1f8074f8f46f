from workflows.graph import downstream_of, find_cycle, format_plan, plan_levels

PIPELINE = {"task_A": (), "task_B": ("task_A",), "task_C": ("task_B",), "task_D": ("task_A",),
            "task_E": ("task_C", "task_D")}


def test_levelled_plan_of_the_data_pipeline():
    assert format_plan(plan_levels(PIPELINE)) == "task_A -> [task_B, task_D] -> task_C -> task_E"


def test_cycle_is_listed_in_execution_order():
    assert find_cycle({"a": ("c",), "b": ("a",), "c": ("b",)}) == ["a", "b", "c", "a"]


def test_acyclic_graph_has_no_cycle():
    assert find_cycle(PIPELINE) is None


def test_downstream_includes_the_root_and_all_dependents():
    assert downstream_of(PIPELINE, {"task_B"}) == {"task_B", "task_C", "task_E"}
