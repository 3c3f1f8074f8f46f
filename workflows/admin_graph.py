"""A workflow's DAG as a server-rendered inline SVG: one column per plan level, arrows for dependencies.

No JavaScript library: the admin shows the picture as plain markup, and the run page recolours the boxes by
their `ff-status-*` class while a run progresses.

Layout (a small Sugiyama): an edge that skips columns gets a waypoint in every column it crosses, and each
waypoint takes a thin slot of its own in that column, so the edge runs past the boxes, never through them.
Between two columns an edge is a cubic curve whose x stays inside the gap. Rows are ordered by the barycentre
of their neighbours to untangle crossings. The viewBox covers every box and edge; long ids are cut with "…"
and given whole in the box's tooltip.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .graph import plan_levels

BOX_H, MIN_BOX_W, MAX_BOX_W = 46, 150, 230
COL_GAP, ROW_GAP, LANE_H, PAD = 56, 18, 10, 12
ID_CHAR_W, SUB_CHAR_W, TEXT_PAD = 7.9, 6.3, 20  # 13px bold monospace and 11px sans, measured in Chromium
SWEEPS = 4


@dataclass
class _Slot:
    key: str | tuple  # a task id, or (upstream, task, column) for an edge's waypoint
    column: int
    y: float = 0.0
    height: float = BOX_H

    @property
    def is_task(self) -> bool:
        return isinstance(self.key, str)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _box_width(tasks: Sequence[str], subtitles: Mapping[str, str]) -> int:
    widest = max([len(task) * ID_CHAR_W for task in tasks] + [len(subtitles.get(t, "")) * SUB_CHAR_W for t in tasks])
    return int(min(max(widest + TEXT_PAD, MIN_BOX_W), MAX_BOX_W))


def _chains(depends_on: Mapping[str, Sequence[str]], column: Mapping[str, int]) -> list[list]:
    """Every edge as [upstream, waypoint keys..., task]."""
    chains = []
    for task, deps in depends_on.items():
        for dep in dict.fromkeys(deps):
            if dep in column and task in column:
                waypoints = [(dep, task, c) for c in range(column[dep] + 1, column[task])]
                chains.append([dep, *waypoints, task])
    return chains


def _order(columns: list[list], chains: list[list]) -> None:
    """Reorder each column by the mean row of its neighbours, sweeping right then left (in place)."""
    left: dict = {}
    right: dict = {}
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            right.setdefault(a, []).append(b)
            left.setdefault(b, []).append(a)
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        indices = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        for index in indices:
            neighbour_column = columns[index - 1] if forward else columns[index + 1]
            rank = {key: row for row, key in enumerate(neighbour_column)}
            links = left if forward else right

            def barycentre(key, row, links=links, rank=rank):
                rows = [rank[n] for n in links.get(key, []) if n in rank]
                return (sum(rows) / len(rows) if rows else row, row)

            columns[index] = [key for _, key in sorted(
                ((barycentre(key, row), key) for row, key in enumerate(columns[index])), key=lambda item: item[0])]


def _place(columns: list[list]) -> tuple[dict, float]:
    slots: dict = {}
    heights = []
    for index, keys in enumerate(columns):
        column_slots = [_Slot(key, index, height=BOX_H if isinstance(key, str) else LANE_H) for key in keys]
        heights.append(sum(s.height for s in column_slots) + ROW_GAP * max(len(column_slots) - 1, 0))
        slots.update({s.key: s for s in column_slots})
    tallest = max(heights)
    for index, keys in enumerate(columns):
        y = PAD + (tallest - heights[index]) / 2
        for key in keys:
            slots[key].y = y
            y += slots[key].height + ROW_GAP
    return slots, tallest


def _ports(chains: list[list], slots: dict) -> tuple[dict, dict]:
    """Where each edge leaves its upstream box and enters its task's box: spread along the side, in row order."""
    outgoing: dict = {}
    incoming: dict = {}
    for number, chain in enumerate(chains):
        outgoing.setdefault(chain[0], []).append((slots[chain[1]].y, number))
        incoming.setdefault(chain[-1], []).append((slots[chain[-2]].y, number))
    out_y, in_y = {}, {}
    for ports, result in ((outgoing, out_y), (incoming, in_y)):
        for key, edges in ports.items():
            for position, (_, number) in enumerate(sorted(edges)):
                result[number] = slots[key].y + BOX_H * (position + 1) / (len(edges) + 1)
    return out_y, in_y


def _edge_path(chain: list, slots: dict, x_of, width: int, start_y: float, end_y: float) -> str:
    points = [(x_of(slots[chain[0]].column) + width, start_y)]
    for waypoint in chain[1:-1]:
        slot = slots[waypoint]
        y = slot.y + slot.height / 2
        points += [(x_of(slot.column), y), (x_of(slot.column) + width, y)]
    points.append((x_of(slots[chain[-1]].column) - 2, end_y))
    d = [f"M {points[0][0]:.1f} {points[0][1]:.1f}"]
    for index in range(1, len(points)):
        (x1, y1), (x2, y2) = points[index - 1], points[index]
        if index % 2 == 0:  # through a column, along the waypoint's own lane
            d.append(f"L {x2:.1f} {y2:.1f}")
        else:  # across a gap
            bend = (x2 - x1) / 2
            d.append(f"C {x1 + bend:.1f} {y1:.1f}, {x2 - bend:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}")
    return " ".join(d)


def dag_svg(depends_on: Mapping[str, Sequence[str]], *, subtitles: Mapping[str, str] | None = None,
            statuses: Mapping[str, str] | None = None) -> SafeString:
    """The graph of `depends_on` ({task: [upstream, ...]}); `subtitles` (e.g. the action) go under each id."""
    subtitles, statuses = subtitles or {}, statuses or {}
    try:
        levels = plan_levels(depends_on)
    except ValueError:
        return mark_safe('<p class="ff-muted">The graph has a cycle and cannot be drawn.</p>')
    if not levels:
        return mark_safe('<p class="ff-muted">No tasks.</p>')
    column = {task: index for index, level in enumerate(levels) for task in level}
    chains = _chains(depends_on, column)
    columns: list[list] = [list(level) for level in levels]
    for chain in chains:
        for waypoint in chain[1:-1]:
            columns[waypoint[2]].append(waypoint)
    _order(columns, chains)
    slots, tallest = _place(columns)
    box_w = _box_width(list(column), subtitles)

    def x_of(index: int) -> float:
        return PAD + index * (box_w + COL_GAP)

    width = int(PAD * 2 + len(levels) * box_w + (len(levels) - 1) * COL_GAP)
    height = int(PAD * 2 + tallest)
    parts = [
        f'<svg class="ff-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="min-width: {min(width, 720)}px" role="img" '
        f'aria-label="Workflow graph">',
        '<defs><marker id="ff-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a6"/></marker></defs>',
    ]
    out_y, in_y = _ports(chains, slots)
    for number, chain in enumerate(chains):
        d = _edge_path(chain, slots, x_of, box_w, out_y[number], in_y[number])
        parts.append(
            f'<path class="ff-edge" data-from="{escape(chain[0])}" data-to="{escape(chain[-1])}" d="{d}" '
            f'fill="none" stroke="#8a94a6" stroke-width="1.5" marker-end="url(#ff-arrow)">'
            f"<title>{escape(chain[0])} → {escape(chain[-1])}</title></path>"
        )
    id_chars = int((box_w - TEXT_PAD) // ID_CHAR_W)
    sub_chars = int((box_w - TEXT_PAD) // SUB_CHAR_W)
    for task in column:
        x, y = x_of(column[task]), slots[task].y
        status, subtitle = statuses.get(task, ""), subtitles.get(task, "")
        parts.append(
            f'<g class="ff-node ff-status-{escape(status or "none")}" data-task="{escape(task)}">'
            f"<title>{escape(task)}{' — ' + escape(subtitle) if subtitle else ''}"
            f"{' (' + escape(status) + ')' if status else ''}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{BOX_H}" rx="7" ry="7"/>'
            f'<text x="{x + 10:.1f}" y="{y + 19:.1f}" class="ff-node-id">{escape(_short(task, id_chars))}</text>'
            f'<text x="{x + 10:.1f}" y="{y + 36:.1f}" class="ff-node-sub">{escape(_short(subtitle, sub_chars))}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
