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


def test_a_long_cycle_is_found_without_exhausting_the_stack():
    chain = {f"t{i}": (f"t{i - 1}",) for i in range(1, 5000)}
    chain["t0"] = ("t4999",)
    cycle = find_cycle(chain)
    assert cycle[0] == cycle[-1] and len(cycle) == 5001


def test_a_deep_chain_without_a_cycle_is_planned_in_linear_time():
    chain = {"t0": ()} | {f"t{i}": (f"t{i - 1}",) for i in range(1, 50_000)}
    assert find_cycle(chain) is None
    levels = plan_levels(chain)
    assert len(levels) == 50_000 and levels[-1] == ["t49999"]


def test_each_level_keeps_definition_order_whatever_the_dependency_order():
    graph = {"z": (), "b": ("z", "z"), "a": (), "m": ("a",), "c": ("m", "b")}
    assert plan_levels(graph) == [["z", "a"], ["b", "m"], ["c"]]


def test_planning_a_cycle_or_an_unknown_dependency_is_refused():
    for graph in ({"a": ("b",), "b": ("a",)}, {"a": ("ghost",)}):
        try:
            plan_levels(graph)
        except ValueError:
            continue
        raise AssertionError(f"{graph} was planned")
