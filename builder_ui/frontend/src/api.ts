// Thin client for the Flowforge REST API (SPEC §6). Every call goes through `request`, which
// sends the session cookie and CSRF token and turns non-2xx answers into an ApiError.

import { parseAccounts, type Account } from "./connections";
import type { JsonObject, WorkflowDefinition } from "./definition";

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  format?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  [key: string]: unknown;
}

export interface ActionInfo {
  name: string;
  family: string;
  title?: string;
  description?: string;
  input_schema?: JsonSchema;
  output_schema?: JsonSchema;
}

export interface Workflow {
  id: number;
  name: string;
  definition: WorkflowDefinition | string;
  version?: number;
  enabled?: boolean;
  webhook_url?: string | null;
  created_at?: string;
  updated_at?: string;
}

export interface FieldError {
  path: string;
  message: string;
}

export const FINAL_RUN_STATES = ["succeeded", "failed", "cancelled"];
export const FINAL_TASK_STATES = ["succeeded", "failed", "skipped", "cancelled"];

export interface TaskRun {
  task_id: string;
  /** Null on a task's own row; 0..n-1 on the rows of a for_each task's items (SPEC §6). */
  item_index?: number | null;
  status: string;
  attempt?: number;
  input?: unknown;
  inputs?: unknown;
  output?: unknown;
  error?: string | null;
  logs?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  /** While `waiting`: when a flow.wait wakes up, or an approval times out. */
  resume_at?: string | null;
}

export interface Run {
  id: number;
  workflow?: number;
  status: string;
  trigger?: unknown;
  created_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
  tasks: TaskRun[];
}

/** A task's own rows, by task id: the rows of for_each items are listed after them and must not replace them. */
export function taskRowsById(tasks: TaskRun[]): Map<string, TaskRun> {
  return new Map(tasks.filter((t) => t.item_index === undefined || t.item_index === null).map((t) => [t.task_id, t]));
}

/** How many items of each for_each task there are and how many have finished. */
export function itemProgress(tasks: TaskRun[]): Map<string, { done: number; total: number }> {
  const out = new Map<string, { done: number; total: number }>();
  for (const t of tasks) {
    if (t.item_index === undefined || t.item_index === null) continue;
    const entry = out.get(t.task_id) ?? { done: 0, total: 0 };
    entry.total += 1;
    if (FINAL_TASK_STATES.includes(t.status)) entry.done += 1;
    out.set(t.task_id, entry);
  }
  return out;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors: FieldError[] = [],
    readonly body: unknown = null,
  ) {
    super(message);
  }
}

export interface ApiClient {
  listActions(): Promise<ActionInfo[]>;
  getWorkflow(id: string | number): Promise<Workflow>;
  createWorkflow(body: { name: string; definition: WorkflowDefinition }): Promise<Workflow>;
  updateWorkflow(
    id: string | number,
    body: { name: string; definition: WorkflowDefinition; version?: number },
  ): Promise<Workflow>;
  runWorkflow(id: string | number, payload?: unknown): Promise<{ run_id: number }>;
  getRun(runId: number): Promise<Run>;
  /** Names in the caller's own vault (never values). */
  listSecretNames(): Promise<string[]>;
  /** The caller's connected accounts (never tokens). */
  listConnections(): Promise<Account[]>;
}

/** Pull `[{path, message}]` out of whatever a 4xx body looks like (contract shape or DRF's default). */
export function errorsFromBody(body: unknown): FieldError[] {
  if (!body || typeof body !== "object") return [];
  const obj = body as JsonObject;
  if (Array.isArray(obj.errors)) {
    return obj.errors.map((e) =>
      e && typeof e === "object"
        ? { path: String((e as JsonObject).path ?? ""), message: String((e as JsonObject).message ?? e) }
        : { path: "", message: String(e) },
    );
  }
  if (typeof obj.detail === "string") return [{ path: "", message: obj.detail }];
  // DRF serializer errors: {"field": ["msg", ...]}
  const out: FieldError[] = [];
  for (const [path, value] of Object.entries(obj)) {
    for (const message of Array.isArray(value) ? value : [value]) {
      out.push({ path: path === "non_field_errors" ? "" : path, message: String(message) });
    }
  }
  return out;
}

export function createApi(base: string, csrfToken: string, fetchImpl: typeof fetch = globalThis.fetch.bind(globalThis)): ApiClient {
  const root = base.endsWith("/") ? base : `${base}/`;

  async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrfToken) headers["X-CSRFToken"] = csrfToken;
    let response: Response;
    try {
      response = await fetchImpl(root + path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, `Network error: ${(err as Error).message}`);
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      const errors = errorsFromBody(data);
      const message = errors.length
        ? errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ")
        : `${method} ${path} failed with HTTP ${response.status}`;
      throw new ApiError(response.status, message, errors, data);
    }
    return data as T;
  }

  return {
    async listActions() {
      const data = await request<ActionInfo[] | { results: ActionInfo[] }>("GET", "actions/");
      return Array.isArray(data) ? data : (data?.results ?? []);
    },
    getWorkflow: (id) => request("GET", `workflows/${id}/`),
    createWorkflow: (body) => request("POST", "workflows/", body),
    updateWorkflow: (id, body) => request("PUT", `workflows/${id}/`, body),
    runWorkflow: (id, payload) => request("POST", `workflows/${id}/run/`, payload ?? {}),
    getRun: (runId) => request("GET", `runs/${runId}/`),
    async listSecretNames() {
      const data = await request<unknown>("GET", "secrets/");
      const list = Array.isArray(data) ? data : ((data as { results?: unknown[] } | null)?.results ?? []);
      return list
        .map((s) => (s && typeof s === "object" ? (s as JsonObject).name : s))
        .filter((name): name is string => typeof name === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name));
    },
    listConnections: async () => parseAccounts(await request<unknown>("GET", "connections/")),
  };
}
