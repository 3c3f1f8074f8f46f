import { describe, expect, it } from "vitest";
import type { TaskNode } from "../src/definition";
import { NODE_HEIGHT, NODE_WIDTH, freePosition, layoutNodes } from "../src/layout";

const node = (id: string, x = 0, y = 0): TaskNode => ({
  id,
  type: "task",
  position: { x, y },
  data: { action: "shell.run", inputs: {} },
});

describe("layoutNodes", () => {
  it("places dependents to the right of their dependencies", () => {
    const [a, b] = layoutNodes([node("a"), node("b")], [{ id: "a->b", source: "a", target: "b" }]);
    expect(b.position.x).toBeGreaterThan(a.position.x + NODE_WIDTH);
  });
});

describe("freePosition", () => {
  it("uses the centre when it is free", () => {
    expect(freePosition({ x: 0, y: 0 }, [])).toEqual({ x: -NODE_WIDTH / 2, y: -NODE_HEIGHT / 2 });
  });

  it("moves away from a node already at the centre", () => {
    const taken = node("a", -NODE_WIDTH / 2, -NODE_HEIGHT / 2);
    const p = freePosition({ x: 0, y: 0 }, [taken]);
    expect(p).not.toEqual(taken.position);
  });
});

describe("freePosition preference", () => {
  it("puts the next node to the right on the same row", () => {
    const taken = node("a", -NODE_WIDTH / 2, -NODE_HEIGHT / 2);
    const p = freePosition({ x: 0, y: 0 }, [taken]);
    expect(p.y).toBe(taken.position.y);
    expect(p.x).toBeGreaterThan(taken.position.x);
  });
});
