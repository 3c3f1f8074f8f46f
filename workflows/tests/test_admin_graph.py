"""The admin's DAG picture: edges go around the boxes, nothing falls outside the viewBox, long ids are cut."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from workflows.admin_graph import dag_svg

SVG = "{http://www.w3.org/2000/svg}"
LONG = "collect_the_numbers_from_all_the_regional_databases"
# task_E depends on task_A two columns away: a straight arrow would cross task_B/task_C's column.
GRAPH = {
    "task_A": [], "task_B": ["task_A"], "task_C": ["task_B"], "task_D": ["task_A"],
    "task_E": ["task_C", "task_D", "task_A"], LONG: [], "audit": [LONG, "task_E"],
}


def parse(svg: str):
    root = ET.fromstring(svg)
    boxes = {g.get("data-task"): tuple(float(g.find(f"{SVG}rect").get(k)) for k in ("x", "y", "width", "height"))
             for g in root.iter(f"{SVG}g")}
    edges = [(p.get("data-from"), p.get("data-to"), p.get("d")) for p in root.iter(f"{SVG}path")
             if p.get("class") == "ff-edge"]
    return root, boxes, edges


def sample(d: str, steps: int = 40) -> list[tuple[float, float]]:
    """Points along an SVG path made of M, L and C commands."""
    tokens = re.findall(r"[MLC]|-?\d+(?:\.\d+)?", d)
    points, current, index = [], (0.0, 0.0), 0
    while index < len(tokens):
        command = tokens[index]
        if command in "ML":
            current = (float(tokens[index + 1]), float(tokens[index + 2]))
            if command == "L":
                start = points[-1]
                points += [(start[0] + (current[0] - start[0]) * t / steps, start[1]) for t in range(steps + 1)]
            points.append(current)
            index += 3
        else:
            p1, p2, p3 = [(float(tokens[index + k]), float(tokens[index + k + 1])) for k in (1, 3, 5)]
            p0 = current
            for step in range(steps + 1):
                t = step / steps
                points.append(tuple((1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t ** 2 * c + t ** 3 * e
                                    for a, b, c, e in zip(p0, p1, p2, p3)))
            current = p3
            index += 7
    return points


def inside(point, box, margin: float = 1.0) -> bool:
    x, y, w, h = box
    return x + margin < point[0] < x + w - margin and y + margin < point[1] < y + h - margin


def test_edges_go_around_the_boxes_they_do_not_connect():
    _, boxes, edges = parse(dag_svg(GRAPH))
    assert len(edges) == 8
    for source, target, d in edges:
        for task, box in boxes.items():
            if task in (source, target):
                continue
            crossing = [p for p in sample(d) if inside(p, box)]
            assert not crossing, f"{source} → {target} crosses {task} at {crossing[0]}"


def test_every_box_and_edge_lies_inside_the_view_box():
    root, boxes, edges = parse(dag_svg(GRAPH))
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    for x, y, w, h in boxes.values():
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
    for _, _, d in edges:
        assert all(0 <= x <= width and 0 <= y <= height for x, y in sample(d))


def test_a_long_task_id_is_cut_to_the_box_and_given_whole_in_the_tooltip():
    root, boxes, _ = parse(dag_svg(GRAPH, subtitles={LONG: "shell.run"}))
    node = next(g for g in root.iter(f"{SVG}g") if g.get("data-task") == LONG)
    shown = node.find(f"{SVG}text").text
    assert shown.endswith("…") and LONG.startswith(shown[:-1])
    assert len(shown) * 7.9 + 20 <= boxes[LONG][2] + 8  # the text fits its box
    assert node.find(f"{SVG}title").text.startswith(LONG)


def test_the_picture_scales_to_its_container():
    svg = dag_svg(GRAPH)
    assert re.search(r'<svg class="ff-graph"[^>]* viewBox="0 0 \d+ \d+"', svg)
