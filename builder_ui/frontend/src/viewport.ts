// Pure viewport maths: where a drop lands in flow coordinates, and a fit-to-view that keeps labels readable.

export interface Point {
  x: number;
  y: number;
}
export interface Size {
  width: number;
  height: number;
}
export interface Rect extends Point, Size {}
export interface Viewport extends Point {
  zoom: number;
}

/** React Flow's transform: screen = pane origin + viewport offset + flow * zoom. */
export function screenToFlow(point: Point, pane: Point, viewport: Viewport): Point {
  return {
    x: (point.x - pane.x - viewport.x) / viewport.zoom,
    y: (point.y - pane.y - viewport.y) / viewport.zoom,
  };
}

export function flowToScreen(point: Point, pane: Point, viewport: Viewport): Point {
  return {
    x: pane.x + viewport.x + point.x * viewport.zoom,
    y: pane.y + viewport.y + point.y * viewport.zoom,
  };
}

/** The top-left corner that puts the middle of a node of `size` on `center` (flow coordinates). */
export function topLeftCenteredOn(center: Point, size: Size): Point {
  return { x: center.x - size.width / 2, y: center.y - size.height / 2 };
}

export function boundsOf(boxes: Rect[]): Rect | null {
  if (!boxes.length) return null;
  const left = Math.min(...boxes.map((b) => b.x));
  const top = Math.min(...boxes.map((b) => b.y));
  const right = Math.max(...boxes.map((b) => b.x + b.width));
  const bottom = Math.max(...boxes.map((b) => b.y + b.height));
  return { x: left, y: top, width: right - left, height: bottom - top };
}

export interface FitOptions {
  /** Fraction of the pane kept free around the graph. */
  padding: number;
  /** Below this zoom labels are unreadable: a larger graph is shown from its start (top left) instead. */
  minZoom: number;
  maxZoom: number;
}

// 13 px labels stay at least ~9 px on screen; the user can still zoom out further by hand.
export const FIT_OPTIONS: FitOptions = { padding: 0.2, minZoom: 0.7, maxZoom: 1.25 };

/**
 * The viewport that shows `bounds` in a pane of `pane` size: the whole graph centred when it fits at a
 * readable zoom, otherwise its first columns (where a left-to-right graph starts) at `minZoom`.
 */
export function fitViewport(bounds: Rect | null, pane: Size, options: FitOptions = FIT_OPTIONS): Viewport {
  if (!bounds || pane.width <= 0 || pane.height <= 0) return { x: 0, y: 0, zoom: 1 };
  const scale = 1 + options.padding;
  const ideal = Math.min(pane.width / (bounds.width * scale || 1), pane.height / (bounds.height * scale || 1));
  const zoom = Math.min(Math.max(ideal, options.minZoom), options.maxZoom);
  const margin = (pane.width * options.padding) / 2 / scale;
  const axis = (start: number, length: number, room: number, edge: number) =>
    length * zoom <= room - 2 * edge + 1
      ? (room - length * zoom) / 2 - start * zoom // fits: centre it
      : edge - start * zoom; // too big: show its start
  return {
    x: axis(bounds.x, bounds.width, pane.width, margin),
    y: axis(bounds.y, bounds.height, pane.height, (pane.height * options.padding) / 2 / scale),
    zoom,
  };
}
