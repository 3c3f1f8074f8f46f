import { describe, expect, it } from "vitest";
import { boundsOf, FIT_OPTIONS, fitViewport, flowToScreen, screenToFlow, topLeftCenteredOn } from "../src/viewport";

describe("drop coordinates", () => {
  const pane = { x: 260, y: 56 };

  it("converts a screen point to the flow point under it, whatever the pan and zoom", () => {
    for (const viewport of [{ x: 0, y: 0, zoom: 1 }, { x: -340, y: 125, zoom: 0.5 }, { x: 80, y: -40, zoom: 1.75 }]) {
      const flowPoint = screenToFlow({ x: 700, y: 420 }, pane, viewport);
      expect(flowToScreen(flowPoint, pane, viewport)).toEqual({ x: 700, y: 420 });
    }
    expect(screenToFlow({ x: 460, y: 156 }, pane, { x: 100, y: 50, zoom: 0.5 })).toEqual({ x: 200, y: 100 });
  });

  it("puts the middle of the dropped node on the drop point", () => {
    const viewport = { x: -340, y: 125, zoom: 0.5 };
    const size = { width: 220, height: 62 };
    const corner = topLeftCenteredOn(screenToFlow({ x: 700, y: 420 }, pane, viewport), size);
    const middle = flowToScreen({ x: corner.x + size.width / 2, y: corner.y + size.height / 2 }, pane, viewport);
    expect(middle.x).toBeCloseTo(700);
    expect(middle.y).toBeCloseTo(420);
  });
});

describe("fit to view", () => {
  const pane = { width: 900, height: 800 };
  const grid = (columns: number, rows: number) =>
    boundsOf(
      Array.from({ length: columns * rows }, (_, i) => ({
        x: Math.floor(i / rows) * 300, y: (i % rows) * 110, width: 220, height: 62,
      })),
    )!;

  it("centres a small graph, no closer than the maximum zoom", () => {
    const view = fitViewport(grid(2, 1), pane);
    expect(view.zoom).toBe(FIT_OPTIONS.maxZoom);
    const bounds = grid(2, 1);
    expect(view.x + (bounds.x + bounds.width / 2) * view.zoom).toBeCloseTo(pane.width / 2);
    expect(view.y + (bounds.y + bounds.height / 2) * view.zoom).toBeCloseTo(pane.height / 2);
  });

  it("zooms out as far as needed while the labels stay readable", () => {
    const view = fitViewport(grid(3, 4), pane);
    expect(view.zoom).toBeLessThan(1);
    expect(view.zoom).toBeGreaterThanOrEqual(FIT_OPTIONS.minZoom);
  });

  it("shows a 50-node graph from its start at the minimum zoom instead of shrinking it to dots", () => {
    const bounds = grid(10, 5);
    const view = fitViewport(bounds, pane);
    expect(view.zoom).toBe(FIT_OPTIONS.minZoom);
    const left = view.x + bounds.x * view.zoom;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(pane.width * 0.2);
    // Five rows fit vertically: centred on that axis.
    expect(view.y + (bounds.y + bounds.height / 2) * view.zoom).toBeCloseTo(pane.height / 2);
  });

  it("leaves an empty graph at zoom 1", () => {
    expect(fitViewport(null, pane)).toEqual({ x: 0, y: 0, zoom: 1 });
  });
});
