"""A workflow's DAG as a server-rendered inline SVG: one column per plan level, arrows for dependencies.

No JavaScript library: the admin shows the picture as plain markup, and the run page recolours the boxes by
their `ff-status-*` class while a run progresses.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .graph import plan_levels

BOX_W, BOX_H = 176, 46
COL_GAP, ROW_GAP, PAD = 64, 18, 12
MAX_LABEL = 22


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    tallest = max(len(level) for level in levels)
    height = PAD * 2 + tallest * BOX_H + (tallest - 1) * ROW_GAP
    width = PAD * 2 + len(levels) * BOX_W + (len(levels) - 1) * COL_GAP
    position: dict[str, tuple[int, int]] = {}
    for column, level in enumerate(levels):
        offset = (tallest - len(level)) * (BOX_H + ROW_GAP) // 2
        for row, task in enumerate(level):
            position[task] = (PAD + column * (BOX_W + COL_GAP), PAD + offset + row * (BOX_H + ROW_GAP))

    parts = [
        f'<svg class="ff-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Workflow graph">',
        '<defs><marker id="ff-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a6"/></marker></defs>',
    ]
    for task, deps in depends_on.items():
        x2, y2 = position[task]
        for dep in deps:
            if dep not in position:
                continue
            x1, y1 = position[dep]
            sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H // 2, x2 - 2, y2 + BOX_H // 2
            bend = (ex - sx) // 2
            parts.append(
                f'<path class="ff-edge" d="M {sx} {sy} C {sx + bend} {sy}, {ex - bend} {ey}, {ex} {ey}" '
                f'fill="none" stroke="#8a94a6" stroke-width="1.5" marker-end="url(#ff-arrow)">'
                f"<title>{escape(dep)} → {escape(task)}</title></path>"
            )
    for task, (x, y) in position.items():
        status = statuses.get(task, "")
        subtitle = subtitles.get(task, "")
        label = escape(_short(task))
        parts.append(
            f'<g class="ff-node ff-status-{escape(status or "none")}" data-task="{escape(task)}">'
            f"<title>{escape(task)}{' — ' + escape(subtitle) if subtitle else ''}"
            f"{' (' + escape(status) + ')' if status else ''}</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="7" ry="7"/>'
            f'<text x="{x + 10}" y="{y + 19}" class="ff-node-id">{label}</text>'
            f'<text x="{x + 10}" y="{y + 36}" class="ff-node-sub">{escape(_short(subtitle, 28))}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
