// Automatic left-to-right layout of the task graph with dagre.

import { graphlib, layout } from "@dagrejs/dagre";
import type { Edge } from "@xyflow/react";
import type { TaskNode } from "./definition";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 60; // .ff-node min-height (border-box): a new node before it is measured

export function layoutNodes(nodes: TaskNode[], edges: Edge[]): TaskNode[] {
  const g = new graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 36, ranksep: 80, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) {
    g.setNode(node.id, {
      width: node.measured?.width ?? NODE_WIDTH,
      height: node.measured?.height ?? NODE_HEIGHT,
    });
  }
  const ids = new Set(nodes.map((n) => n.id));
  for (const edge of edges) {
    if (ids.has(edge.source) && ids.has(edge.target)) g.setEdge(edge.source, edge.target);
  }
  layout(g);
  return nodes.map((node) => {
    const { x, y, width, height } = g.node(node.id);
    return { ...node, position: { x: x - width / 2, y: y - height / 2 } };
  });
}

/**
 * Top-left corner for a new node as close as possible to `center` without overlapping any
 * existing node, searching outward ring by ring on a grid one node apart.
 */
export function freePosition(center: { x: number; y: number }, nodes: TaskNode[]): { x: number; y: number } {
  const stepX = NODE_WIDTH + 40;
  const stepY = NODE_HEIGHT + 30;
  const origin = { x: center.x - NODE_WIDTH / 2, y: center.y - NODE_HEIGHT / 2 };
  const overlaps = (x: number, y: number) =>
    nodes.some((n) => {
      const w = n.measured?.width ?? NODE_WIDTH;
      const h = n.measured?.height ?? NODE_HEIGHT;
      return x < n.position.x + w + 10 && x + NODE_WIDTH + 10 > n.position.x && y < n.position.y + h + 10 && y + NODE_HEIGHT + 10 > n.position.y;
    });
  for (let ring = 0; ring < 12; ring++) {
    const cells: [number, number][] = [];
    for (let dy = -ring; dy <= ring; dy++) {
      for (let dx = -ring; dx <= ring; dx++) {
        if (Math.max(Math.abs(dx), Math.abs(dy)) === ring) cells.push([dx, dy]);
      }
    }
    // Prefer the same row, then to the right (where dependents go), then below.
    cells.sort(([ax, ay], [bx, by]) => Math.abs(ay) - Math.abs(by) || Number(ax < 0) - Number(bx < 0) || by - ay);
    for (const [dx, dy] of cells) {
      const x = origin.x + dx * stepX;
      const y = origin.y + dy * stepY;
      if (!overlaps(x, y)) return { x, y };
    }
  }
  return origin;
}
