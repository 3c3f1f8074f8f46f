import { describe, expect, it } from "vitest";
import { filterSuggestions, insertExpression, openExpression, suggestionsForTask, templateSuggestions } from "../src/completions";

describe("template completion", () => {
  const all = templateSuggestions([
    {
      id: "fetch_user",
      action: {
        name: "http.request",
        family: "http",
        output_schema: { type: "object", properties: { status: {}, json: {} } },
      },
    },
  ]);

  it("offers trigger data and upstream outputs", () => {
    expect(all).toContain("trigger.body");
    expect(all).toContain("steps.fetch_user.output");
    expect(all).toContain("steps.fetch_user.output.json");
  });

  it("detects an unclosed expression at the caret", () => {
    expect(openExpression("Hi {{ steps.fe", 14)).toEqual({ start: 3, query: "steps.fe" });
    expect(openExpression("Hi {{ x }} there", 16)).toBeNull();
  });

  it("filters by prefix first", () => {
    expect(filterSuggestions(all, "steps.fetch_user.output.j")).toEqual(["steps.fetch_user.output.json"]);
  });

  it("inserts a closed expression, swallowing an existing closing brace", () => {
    expect(insertExpression("a {{ tri }} b", 8, 2, "trigger.body")).toEqual({
      text: "a {{ trigger.body }} b",
      caret: 20,
    });
  });
});

describe("completion from a graph", () => {
  const task = (id: string, action: string) => ({ id, type: "task" as const, position: { x: 0, y: 0 }, data: { action, inputs: {} } });
  const nodes = [task("fetch", "http.request"), task("clean", "transform.jinja"), task("use", "file.write"), task("other", "shell.run")];
  const edges = [
    { id: "fetch->clean", source: "fetch", target: "clean" },
    { id: "clean->use", source: "clean", target: "use" },
  ];
  const actions = new Map([
    ["http.request", { name: "http.request", family: "http", output_schema: { type: "object", properties: { status: {}, json: {} } } }],
  ]);

  it("offers every upstream task's output and status, and nothing of unrelated tasks", () => {
    const offered = suggestionsForTask({ nodes, edges }, "use", actions);
    expect(offered).toEqual(expect.arrayContaining([
      "steps.fetch.output", "steps.fetch.output.json", "steps.fetch.status", "steps.clean.output", "steps.clean.status",
    ]));
    expect(offered.some((s) => s.startsWith("steps.other") || s.startsWith("steps.use"))).toBe(false);
  });

  it("offers trigger, run and the caller's secrets by name", () => {
    const offered = suggestionsForTask({ nodes, edges }, "fetch", actions, ["SLACK_TOKEN", "API_KEY"]);
    expect(offered).toEqual(expect.arrayContaining(["trigger.body", "trigger.headers", "run.id", "run.started_at"]));
    expect(offered.filter((s) => s.startsWith("secrets."))).toEqual(["secrets.API_KEY", "secrets.SLACK_TOKEN"]);
    expect(offered.some((s) => s.startsWith("steps."))).toBe(false);
  });

  it("finds the secrets while typing {{ sec", () => {
    const offered = suggestionsForTask({ nodes, edges }, "use", actions, ["API_KEY"]);
    const open = openExpression("Bearer {{ sec", 13)!;
    expect(filterSuggestions(offered, open.query)).toEqual(["secrets.API_KEY"]);
  });
});

describe("completion inside a for_each task", () => {
  const task = (id: string, action: string, extra: Record<string, unknown> = {}) => ({
    id, type: "task" as const, position: { x: 0, y: 0 }, data: { action, inputs: {}, ...extra },
  });
  const nodes = [
    task("users", "transform.jinja"),
    task("ask", "flow.approval"),
    task("greet", "http.request", { for_each: "{{ steps.users.output }}" }),
    task("report", "file.write"),
  ];
  const edges = [
    { id: "users->ask", source: "users", target: "ask" },
    { id: "ask->greet", source: "ask", target: "greet" },
    { id: "greet->report", source: "greet", target: "report" },
  ];
  const actions = new Map<string, { name: string; family: string }>();

  it("offers item and index first in the mapped task's templates", () => {
    const offered = suggestionsForTask({ nodes, edges }, "greet", actions);
    expect(offered.slice(0, 2)).toEqual(["item", "index"]);
    expect(filterSuggestions(offered, openExpression("{{ it", 5)!.query)[0]).toBe("item");
  });

  it("does not offer item or index in a task without for_each", () => {
    for (const id of ["users", "report"]) {
      const offered = suggestionsForTask({ nodes, edges }, id, actions);
      expect(offered).not.toContain("item");
      expect(offered).not.toContain("index");
    }
  });

  it("offers the idempotency key in every task", () => {
    for (const id of ["users", "ask", "greet", "report", null]) {
      expect(suggestionsForTask({ nodes, edges }, id, actions)).toContain("task.idempotency_key");
    }
  });

  it("offers each approval task's resume URL to every task, upstream of it or not", () => {
    for (const id of ["users", "greet", "report"]) {
      expect(suggestionsForTask({ nodes, edges }, id, actions)).toContain("run.resume_urls.ask");
    }
    const withoutApproval = suggestionsForTask({ nodes: nodes.filter((n) => n.id !== "ask"), edges: [] }, "users", actions);
    expect(withoutApproval.some((s) => s.startsWith("run.resume_urls"))).toBe(false);
  });
});
