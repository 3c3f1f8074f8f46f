// Conversion between a workflow definition (SPEC §1) and the editor's graph.
//
// Pure functions only: no React, no DOM. `fromDefinition` accepts every shape the backend
// accepts (a: `steps:` list, b/c: `tasks:` mapping, `run:` shorthand); `toDefinition` always
// writes shape (c) with defaults omitted, so the saved document stays small and diffable.

import type { Edge, Node } from "@xyflow/react";

export const TASK_ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const TRIGGER_RULES = ["all_success", "all_done", "one_failed", "one_success"] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

/** Task settings whose value is left out of the saved definition when it equals the default. */
export const TASK_DEFAULTS = {
  retries: 0,
  retry_delay: 1,
  timeout: 300,
  trigger_rule: "all_success",
  queue: "default",
  max_parallel: 10,
} as const;

export type JsonObject = Record<string, unknown>;

export interface TaskData extends Record<string, unknown> {
  action: string;
  inputs: JsonObject;
  retries?: number;
  retry_delay?: number;
  timeout?: number;
  when?: string;
  trigger_rule?: string;
  queue?: string;
  /** A template that yields a list: the task runs once per item, with `item` and `index` (SPEC §9). */
  for_each?: string;
  /** Most items of a for_each running at once. */
  max_parallel?: number;
  /** Keys the editor does not know about, carried through unchanged. */
  extra?: JsonObject;
}

export type TaskNode = Node<TaskData, "task">;

export interface Trigger extends JsonObject {
  type: string;
}

export interface WorkflowMeta {
  name: string;
  triggers: Trigger[];
  /** Workflow-level keys other than name/triggers/tasks (concurrency, enabled, ...). */
  extra: JsonObject;
}

export interface TaskDefinition extends JsonObject {
  action: string;
  inputs?: JsonObject;
  depends_on?: string[];
}

export interface WorkflowDefinition extends JsonObject {
  name?: string;
  triggers?: Trigger[];
  tasks: Record<string, TaskDefinition>;
}

export interface Graph {
  nodes: TaskNode[];
  edges: Edge[];
  meta: WorkflowMeta;
}

const KNOWN_TASK_KEYS = new Set([
  "action",
  "run",
  "inputs",
  "depends_on",
  "retries",
  "retry_delay",
  "timeout",
  "when",
  "trigger_rule",
  "queue",
  "for_each",
  "max_parallel",
]);
const STEP_ONLY_KEYS = new Set(["name", "id"]);
const KNOWN_WORKFLOW_KEYS = new Set(["name", "triggers", "tasks", "steps"]);

export class DefinitionError extends Error {}

/** "Say Hello" -> "say_hello"; always returns a valid task id. */
export function slugify(text: string): string {
  let slug = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  if (!slug) slug = "step";
  if (/^[0-9]/.test(slug)) slug = `_${slug}`;
  return slug;
}

/** First id of the form base, base_2, base_3, ... not in `taken`. */
export function uniqueId(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base}_${n}`;
    if (!used.has(candidate)) return candidate;
  }
}

export function edgeId(source: string, target: string): string {
  return `${source}->${target}`;
}

export function makeEdge(source: string, target: string): Edge {
  return { id: edgeId(source, target), source, target };
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asStringList(value: unknown, path: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value as string[];
  throw new DefinitionError(`${path}: expected a list of task ids`);
}

function taskDataFrom(raw: JsonObject, path: string, skip: Set<string> = new Set()): TaskData {
  let action: string;
  let inputs: JsonObject;
  if (raw.run !== undefined && raw.action === undefined) {
    action = "shell.run";
    inputs = { command: raw.run, ...(isObject(raw.inputs) ? raw.inputs : {}) };
  } else if (typeof raw.action === "string") {
    action = raw.action;
    inputs = isObject(raw.inputs) ? { ...raw.inputs } : {};
  } else {
    throw new DefinitionError(`${path}: needs an 'action' or a 'run' command`);
  }
  const data: TaskData = { action, inputs };
  for (const key of ["retries", "retry_delay", "timeout", "max_parallel"] as const) {
    if (typeof raw[key] === "number") data[key] = raw[key] as number;
  }
  for (const key of ["when", "trigger_rule", "queue", "for_each"] as const) {
    if (typeof raw[key] === "string") data[key] = raw[key] as string;
  }
  const extra: JsonObject = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!KNOWN_TASK_KEYS.has(key) && !skip.has(key)) extra[key] = value;
  }
  if (Object.keys(extra).length) data.extra = extra;
  return data;
}

function taskNode(id: string, data: TaskData): TaskNode {
  return { id, type: "task", position: { x: 0, y: 0 }, data };
}

/** Definition (any accepted shape) -> editor graph. Positions are left at 0; lay out afterwards. */
export function fromDefinition(definition: unknown): Graph {
  const def: JsonObject = isObject(definition) ? definition : {};
  const meta: WorkflowMeta = {
    name: typeof def.name === "string" ? def.name : "",
    triggers: Array.isArray(def.triggers)
      ? def.triggers.filter(isObject).map((t) => ({ ...t }) as Trigger)
      : [],
    extra: {},
  };
  for (const [key, value] of Object.entries(def)) {
    if (!KNOWN_WORKFLOW_KEYS.has(key)) meta.extra[key] = value;
  }

  const nodes: TaskNode[] = [];
  const edges: Edge[] = [];

  if (Array.isArray(def.steps)) {
    // Shape (a): each step depends on the one before it.
    let previous: string | null = null;
    def.steps.forEach((step, index) => {
      const path = `steps.${index}`;
      if (!isObject(step)) throw new DefinitionError(`${path}: expected a mapping`);
      const label =
        typeof step.id === "string" ? step.id : typeof step.name === "string" ? step.name : `step ${index + 1}`;
      const id = uniqueId(
        typeof step.id === "string" && TASK_ID_PATTERN.test(step.id) ? step.id : slugify(label),
        nodes.map((n) => n.id),
      );
      nodes.push(taskNode(id, taskDataFrom(step, path, STEP_ONLY_KEYS)));
      const explicit = asStringList(step.depends_on, `${path}.depends_on`);
      if (previous && !explicit.includes(previous)) edges.push(makeEdge(previous, id));
      previous = id;
    });
    // Explicit depends_on inside steps refer to ids; resolved below like shape (b/c).
    def.steps.forEach((step, index) => {
      const id = nodes[index].id;
      for (const dep of asStringList((step as JsonObject).depends_on, `steps.${index}.depends_on`)) {
        edges.push(makeEdge(dep, id));
      }
    });
    return { nodes, edges, meta };
  }

  if (isObject(def.tasks)) {
    for (const [id, raw] of Object.entries(def.tasks)) {
      const path = `tasks.${id}`;
      if (!isObject(raw)) {
        // `task: "echo hi"` is not in the contract, but is the obvious reading of a bare string.
        if (typeof raw === "string") {
          nodes.push(taskNode(id, { action: "shell.run", inputs: { command: raw } }));
          continue;
        }
        throw new DefinitionError(`${path}: expected a mapping`);
      }
      nodes.push(taskNode(id, taskDataFrom(raw, path)));
      for (const dep of asStringList(raw.depends_on, `${path}.depends_on`)) {
        edges.push(makeEdge(dep, id));
      }
    }
  }
  return { nodes, edges, meta };
}

/** Editor graph -> definition in shape (c): `tasks:` keyed by id, defaults omitted. */
export function toDefinition(nodes: TaskNode[], edges: Edge[], meta: WorkflowMeta): WorkflowDefinition {
  const dependsOn = new Map<string, string[]>();
  for (const edge of edges) {
    const list = dependsOn.get(edge.target) ?? [];
    if (!list.includes(edge.source)) list.push(edge.source);
    dependsOn.set(edge.target, list);
  }

  const tasks: Record<string, TaskDefinition> = {};
  for (const node of nodes) {
    const d = node.data;
    const task: TaskDefinition = { action: d.action };
    const inputs = pruneInputs(d.inputs);
    if (Object.keys(inputs).length) task.inputs = inputs;
    const deps = dependsOn.get(node.id);
    if (deps?.length) task.depends_on = [...deps];
    for (const key of ["retries", "retry_delay", "timeout", "trigger_rule", "queue"] as const) {
      const value = d[key];
      if (value !== undefined && value !== null && value !== "" && value !== TASK_DEFAULTS[key]) {
        task[key] = value;
      }
    }
    if (typeof d.when === "string" && d.when.trim() !== "") task.when = d.when;
    if (hasForEach(d)) {
      task.for_each = d.for_each;
      // max_parallel means nothing without for_each, so it is only written beside it.
      if (typeof d.max_parallel === "number" && d.max_parallel !== TASK_DEFAULTS.max_parallel) {
        task.max_parallel = d.max_parallel;
      }
    }
    if (d.extra) Object.assign(task, d.extra);
    tasks[node.id] = task;
  }

  const definition: WorkflowDefinition = { tasks };
  const out: WorkflowDefinition = {} as WorkflowDefinition;
  if (meta.name) out.name = meta.name;
  Object.assign(out, meta.extra);
  if (meta.triggers.length) out.triggers = meta.triggers.map(pruneTrigger);
  out.tasks = definition.tasks;
  return out;
}

/** The task runs once per item of a list (its templates can use `item` and `index`). */
export function hasForEach(data: Pick<TaskData, "for_each">): data is { for_each: string } {
  return typeof data.for_each === "string" && data.for_each.trim() !== "";
}

/** Drop inputs left empty in the form so they fall back to the action's own defaults. */
function pruneInputs(inputs: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(inputs ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    out[key] = value;
  }
  return out;
}

function pruneTrigger(trigger: Trigger): Trigger {
  const out: Trigger = { type: trigger.type };
  for (const [key, value] of Object.entries(trigger)) {
    if (key === "type" || value === undefined || value === null || value === "") continue;
    if (isObject(value) && Object.keys(value).length === 0) continue;
    out[key] = value;
  }
  return out;
}
