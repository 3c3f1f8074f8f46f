import { describe, expect, it } from "vitest";
import { ApiError, createApi, errorsFromBody, itemProgress, taskRowsById } from "../src/api";

type Call = { url: string; init: RequestInit };

function fakeFetch(status: number, body: unknown, calls: Call[]): typeof fetch {
  return (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(body === undefined ? "" : JSON.stringify(body), { status });
  }) as unknown as typeof fetch;
}

describe("api client", () => {
  it("accepts the action list bare or wrapped in results", async () => {
    const action = { name: "shell.run", family: "shell" };
    expect(await createApi("/api/", "t", fakeFetch(200, [action], [])).listActions()).toEqual([action]);
    expect(await createApi("/api/", "t", fakeFetch(200, { results: [action] }, [])).listActions()).toEqual([action]);
  });

  it("sends the CSRF token and JSON body on writes", async () => {
    const calls: Call[] = [];
    await createApi("/api", "tok", fakeFetch(200, { id: 3 }, calls)).updateWorkflow(3, {
      name: "n",
      definition: { tasks: {} },
      version: 2,
    });
    expect(calls[0].url).toBe("/api/workflows/3/");
    expect(calls[0].init.method).toBe("PUT");
    expect((calls[0].init.headers as Record<string, string>)["X-CSRFToken"]).toBe("tok");
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ name: "n", definition: { tasks: {} }, version: 2 });
  });

  it("turns a 400 into path-named errors", async () => {
    const body = { errors: [{ path: "tasks.b.depends_on", message: "unknown task 'z'" }] };
    const err = await createApi("/api/", "t", fakeFetch(400, body, []))
      .createWorkflow({ name: "n", definition: { tasks: {} } })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.errors).toEqual(body.errors);
  });
});

describe("errorsFromBody", () => {
  it("reads DRF's default error shapes too", () => {
    expect(errorsFromBody({ detail: "Not found." })).toEqual([{ path: "", message: "Not found." }]);
    expect(errorsFromBody({ name: ["This field is required."] })).toEqual([
      { path: "name", message: "This field is required." },
    ]);
  });
});

describe("a run with for_each items", () => {
  const tasks = [
    { task_id: "list", item_index: null, status: "succeeded" },
    { task_id: "greet", item_index: null, status: "waiting" },
    { task_id: "greet", item_index: 0, status: "succeeded" },
    { task_id: "greet", item_index: 1, status: "failed" },
    { task_id: "greet", item_index: 2, status: "running" },
  ];

  it("colours each node from the task's own row, not from its last item", () => {
    const rows = taskRowsById(tasks);
    expect(rows.get("greet")!.status).toBe("waiting");
    expect(rows.get("list")!.status).toBe("succeeded");
    expect(taskRowsById([{ task_id: "old", status: "running" }]).get("old")!.status).toBe("running");
  });

  it("counts finished items per task", () => {
    expect(itemProgress(tasks).get("greet")).toEqual({ done: 2, total: 3 });
    expect(itemProgress(tasks).has("list")).toBe(false);
  });
});
