// Expressions offered while typing `{{ ... }}` in a template field.

import type { Edge } from "@xyflow/react";
import type { ActionInfo, JsonSchema } from "./api";
import { hasForEach, type TaskNode } from "./definition";
import { ancestorsOf } from "./graph";

const TRIGGER_PATHS = [
  "trigger.body",
  "trigger.headers",
  "trigger.query",
  "trigger.method",
  "trigger.scheduled_at",
  "trigger.item",
  "run.id",
  "run.workflow",
  "run.started_at",
];

function schemaPaths(schema: JsonSchema | undefined, prefix: string, depth: number): string[] {
  if (!schema?.properties || depth === 0) return [];
  const out: string[] = [];
  for (const [key, sub] of Object.entries(schema.properties)) {
    const path = `${prefix}.${key}`;
    out.push(path, ...schemaPaths(sub, path, depth - 1));
  }
  return out;
}

/** Present in every task's context: the key its attempts share (SPEC §10). */
const TASK_PATHS = ["task.idempotency_key"];
/** Present only in the templates of a task with `for_each` (SPEC §9). */
const ITEM_PATHS = ["item", "index"];
/** The action whose task runs get a resume URL that every task of the run can read. */
export const APPROVAL_ACTION = "flow.approval";

export interface TaskScope {
  /** The task has `for_each`, so `item` and `index` exist in its templates. */
  forEach?: boolean;
  /** Ids of the workflow's flow.approval tasks: `run.resume_urls.<id>` exists for each. */
  approvalTasks?: string[];
}

/** Expressions (without braces) usable in a task whose upstream tasks are `upstream`. */
export function templateSuggestions(
  upstream: { id: string; action?: ActionInfo }[],
  secretNames: string[] = [],
  scope: TaskScope = {},
): string[] {
  const out = [...(scope.forEach ? ITEM_PATHS : []), ...TRIGGER_PATHS, ...TASK_PATHS];
  out.push(...(scope.approvalTasks ?? []).map((id) => `run.resume_urls.${id}`));
  for (const { id, action } of upstream) {
    const output = `steps.${id}.output`;
    out.push(output, ...schemaPaths(action?.output_schema, output, 2), `steps.${id}.status`);
  }
  // Secret names are identifiers (connectors/secrets.py NAME_PATTERN), so the dotted form always works.
  out.push(...[...secretNames].sort().map((name) => `secrets.${name}`));
  return out;
}

/** The suggestions for task `taskId` of a graph: only its upstream tasks' results exist when it runs. */
export function suggestionsForTask(
  graph: { nodes: TaskNode[]; edges: Edge[] },
  taskId: string | null,
  actions: Map<string, ActionInfo>,
  secretNames: string[] = [],
): string[] {
  const approvalTasks = graph.nodes.filter((n) => n.data.action === APPROVAL_ACTION).map((n) => n.id);
  const node = taskId ? graph.nodes.find((n) => n.id === taskId) : undefined;
  if (!taskId || !node) return templateSuggestions([], secretNames, { approvalTasks });
  const actionOf = new Map(graph.nodes.map((n) => [n.id, n.data.action]));
  const upstream = ancestorsOf(graph.edges, taskId)
    .filter((id) => actionOf.has(id))
    .map((id) => ({ id, action: actions.get(actionOf.get(id)!) }));
  return templateSuggestions(upstream, secretNames, { forEach: hasForEach(node.data), approvalTasks });
}

/** The partial expression being typed at `caret`, if the caret is inside an unclosed `{{`. */
export function openExpression(text: string, caret: number): { start: number; query: string } | null {
  const before = text.slice(0, caret);
  const match = /\{\{\s*([A-Za-z0-9_.]*)$/.exec(before);
  if (!match) return null;
  return { start: match.index, query: match[1] };
}

export function filterSuggestions(all: string[], query: string, limit = 12): string[] {
  const q = query.toLowerCase();
  const starts = all.filter((s) => s.toLowerCase().startsWith(q));
  const contains = all.filter((s) => !s.toLowerCase().startsWith(q) && s.toLowerCase().includes(q));
  return [...starts, ...contains].slice(0, limit);
}

/** Replace the open expression with `{{ expr }}`, returning the new text and caret position. */
export function insertExpression(
  text: string,
  caret: number,
  start: number,
  expr: string,
): { text: string; caret: number } {
  let after = text.slice(caret);
  const closing = /^[A-Za-z0-9_.]*\s*\}\}/.exec(after);
  if (closing) after = after.slice(closing[0].length);
  const inserted = `{{ ${expr} }}`;
  return { text: text.slice(0, start) + inserted + after, caret: start + inserted.length };
}
