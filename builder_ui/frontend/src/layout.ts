// Automatic left-to-right layout of the task graph with dagre.

import { graphlib, layout } from "@dagrejs/dagre";
import type { Edge } from "@xyflow/react";
import type { TaskNode } from "./definition";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 72;

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
