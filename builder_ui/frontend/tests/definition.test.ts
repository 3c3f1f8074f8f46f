import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  fromDefinition,
  slugify,
  toDefinition,
  uniqueId,
  type WorkflowDefinition,
} from "../src/definition";

const here = resolve(__dirname);
const candidates = [
  process.env.FLOWFORGE_EXAMPLES_DIR,
  resolve(here, "../../../../shared/examples"), // CI: shared/ beside the clone
  resolve(here, "../../../shared/examples"),
  "/work/shared/examples",
].filter((p): p is string => !!p);
const examplesDir = candidates.find((p) => existsSync(p));

// Written independently of src/definition.ts: what the contract says each example means.
type Plain = Record<string, any>;
const DEFAULTS: Plain = {
  retries: 0, retry_delay: 1, timeout: 300, trigger_rule: "all_success", queue: "default", max_parallel: 10,
};

function normaliseTask(raw: Plain): Plain {
  const out: Plain = {};
  if (raw.run !== undefined) {
    out.action = "shell.run";
    out.inputs = { command: raw.run, ...(raw.inputs ?? {}) };
  } else {
    out.action = raw.action;
    if (raw.inputs && Object.keys(raw.inputs).length) out.inputs = raw.inputs;
  }
  const deps = raw.depends_on ?? [];
  if (deps.length) out.depends_on = [...deps].sort();
  for (const [k, v] of Object.entries(raw)) {
    if (["run", "action", "inputs", "depends_on", "name"].includes(k)) continue;
    if (DEFAULTS[k] === v) continue;
    out[k] = v;
  }
  return out;
}

function normalise(def: Plain): Plain {
  const tasks: Plain = {};
  if (Array.isArray(def.steps)) {
    let previous: string | null = null;
    for (const step of def.steps) {
      const id = step.name.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "");
      tasks[id] = normaliseTask({ ...step, depends_on: previous ? [previous] : [] });
      previous = id;
    }
  } else {
    for (const [id, raw] of Object.entries(def.tasks as Plain)) tasks[id] = normaliseTask(raw);
  }
  const out: Plain = { name: def.name, tasks };
  if (def.triggers?.length) out.triggers = def.triggers;
  return out;
}

function roundTrip(def: unknown): WorkflowDefinition {
  const { nodes, edges, meta } = fromDefinition(def);
  return toDefinition(nodes, edges, meta);
}

describe("round-trip of the shared examples", () => {
  it("finds the examples directory", () => {
    expect(examplesDir, `examples not found in ${candidates.join(", ")}`).toBeTruthy();
  });

  const files = examplesDir
    ? readdirSync(examplesDir).filter(
        (f) => /\.ya?ml$/.test(f) && !f.startsWith("invalid-") && f !== "schedule.yaml",
      )
    : [];

  it("covers every valid example", () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  for (const file of files) {
    it(`${file} keeps its tasks, actions, inputs and dependencies`, () => {
      const original = parse(readFileSync(join(examplesDir!, file), "utf8"));
      const saved = roundTrip(original);
      expect(normalise(saved)).toEqual(normalise(original));
      // Saved output is already in canonical shape (c), and stable under a second trip.
      expect(roundTrip(saved)).toEqual(saved);
      expect(saved.steps).toBeUndefined();
      for (const task of Object.values(saved.tasks)) expect(task.run).toBeUndefined();
    });
  }
});

describe("fromDefinition", () => {
  it("expands the run shorthand into shell.run", () => {
    const { nodes } = fromDefinition({ name: "x", tasks: { a: { run: "date" } } });
    expect(nodes[0].data).toEqual({ action: "shell.run", inputs: { command: "date" } });
  });

  it("chains steps in order with slugified ids", () => {
    const { nodes, edges } = fromDefinition({
      name: "s",
      steps: [
        { name: "Say Hello", run: "echo hi" },
        { name: "Say Hello", run: "echo again" },
        { name: "3 Things!", action: "transform.jinja", inputs: { value: "x" } },
      ],
    });
    expect(nodes.map((n) => n.id)).toEqual(["say_hello", "say_hello_2", "_3_things"]);
    expect(edges.map((e) => [e.source, e.target])).toEqual([
      ["say_hello", "say_hello_2"],
      ["say_hello_2", "_3_things"],
    ]);
  });

  it("keeps workflow settings and unknown task keys", () => {
    const def = {
      name: "w",
      concurrency: 2,
      enabled: false,
      triggers: [{ type: "cron", cron: "0 9 * * 1-5", timezone: "Europe/Berlin" }],
      tasks: { a: { action: "http.request", inputs: { url: "u" }, retries: 3, queue: "heavy", custom: 1 } },
    };
    expect(roundTrip(def)).toEqual(def);
  });

  it("accepts an empty or missing definition", () => {
    expect(fromDefinition(undefined).nodes).toEqual([]);
    expect(roundTrip({ name: "n", tasks: {} })).toEqual({ name: "n", tasks: {} });
  });
});

describe("toDefinition", () => {
  it("omits defaults and empty values", () => {
    const { meta } = fromDefinition({ name: "d", tasks: {} });
    const def = toDefinition(
      [
        {
          id: "a",
          type: "task",
          position: { x: 0, y: 0 },
          data: {
            action: "http.request",
            inputs: { url: "https://x", method: "", headers: undefined },
            retries: 0,
            retry_delay: 1,
            timeout: 300,
            trigger_rule: "all_success",
            queue: "default",
            when: "  ",
          },
        },
        {
          id: "b",
          type: "task",
          position: { x: 0, y: 0 },
          data: { action: "email.send", inputs: {}, retries: 2, trigger_rule: "all_done", when: "{{ true }}" },
        },
      ],
      [{ id: "a->b", source: "a", target: "b" }],
      meta,
    );
    expect(def).toEqual({
      name: "d",
      tasks: {
        a: { action: "http.request", inputs: { url: "https://x" } },
        b: { action: "email.send", depends_on: ["a"], retries: 2, trigger_rule: "all_done", when: "{{ true }}" },
      },
    });
  });
});

describe("for_each", () => {
  const mapped = {
    name: "Greet everyone",
    tasks: {
      list: { action: "transform.jinja", inputs: { value: "{{ trigger.body.users }}" } },
      greet: {
        action: "http.request",
        depends_on: ["list"],
        for_each: "{{ steps.list.output }}",
        max_parallel: 3,
        inputs: { url: "https://example.com/{{ item.id }}?n={{ index }}" },
      },
    },
  };

  it("a task with for_each and max_parallel saves exactly as it was loaded", () => {
    const { nodes } = fromDefinition(mapped);
    expect(nodes.find((n) => n.id === "greet")!.data).toMatchObject({ for_each: "{{ steps.list.output }}", max_parallel: 3 });
    expect(roundTrip(mapped)).toEqual(mapped);
    expect(roundTrip(roundTrip(mapped))).toEqual(mapped);
  });

  it("for_each typed into the panel is saved on the task, max_parallel only when it is not the default", () => {
    const { nodes, edges, meta } = fromDefinition({ name: "w", tasks: { a: { action: "shell.run", inputs: { command: "echo {{ item }}" } } } });
    nodes[0].data = { ...nodes[0].data, for_each: "{{ trigger.body }}", max_parallel: 10 };
    expect(toDefinition(nodes, edges, meta).tasks.a).toEqual({
      action: "shell.run", inputs: { command: "echo {{ item }}" }, for_each: "{{ trigger.body }}",
    });
    nodes[0].data = { ...nodes[0].data, max_parallel: 2 };
    expect(toDefinition(nodes, edges, meta).tasks.a).toMatchObject({ for_each: "{{ trigger.body }}", max_parallel: 2 });
  });

  it("clearing for_each drops max_parallel with it", () => {
    const { nodes, edges, meta } = fromDefinition(mapped);
    const greet = nodes.find((n) => n.id === "greet")!;
    greet.data = { ...greet.data, for_each: "  " };
    const saved = toDefinition(nodes, edges, meta).tasks.greet;
    expect(saved.for_each).toBeUndefined();
    expect(saved.max_parallel).toBeUndefined();
  });

  const repoExamples = resolve(here, "../../../examples");
  const flowExamples = existsSync(repoExamples)
    ? readdirSync(repoExamples).filter((f) => /\.ya?ml$/.test(f) && /for_each|for-each/.test(readFileSync(join(repoExamples, f), "utf8")))
    : [];
  for (const file of flowExamples) {
    it(`examples/${file} keeps its for_each through the builder`, () => {
      const original = parse(readFileSync(join(repoExamples, file), "utf8"));
      const saved = roundTrip(original);
      expect(normalise(saved)).toEqual(normalise(original));
    });
  }
});

describe("ids", () => {
  it("slugifies names into valid task ids", () => {
    expect(slugify("Say Hello")).toBe("say_hello");
    expect(slugify("  Show -- Date ")).toBe("show_date");
    expect(slugify("!!!")).toBe("step");
  });

  it("picks the first free suffix", () => {
    expect(uniqueId("a", [])).toBe("a");
    expect(uniqueId("a", ["a", "a_2"])).toBe("a_3");
  });
});
