import { describe, expect, it } from "vitest";
import { ancestorsOf, cycleCreatedBy } from "../src/graph";

const e = (source: string, target: string) => ({ source, target });

describe("cycleCreatedBy", () => {
  it("allows edges that keep the graph acyclic", () => {
    expect(cycleCreatedBy([e("a", "b"), e("b", "c")], "a", "c")).toBeNull();
  });

  it("refuses a self-loop", () => {
    expect(cycleCreatedBy([], "a", "a")).toEqual(["a", "a"]);
  });

  it("names the cycle an edge would close", () => {
    expect(cycleCreatedBy([e("a", "b"), e("b", "c")], "c", "a")).toEqual(["c", "a", "b", "c"]);
  });
});

describe("ancestorsOf", () => {
  it("lists direct and indirect upstream tasks, nearest first", () => {
    const edges = [e("a", "b"), e("b", "d"), e("c", "d"), e("d", "x")];
    expect(ancestorsOf(edges, "d")).toEqual(["b", "c", "a"]);
    expect(ancestorsOf(edges, "a")).toEqual([]);
  });
});
