// Small graph queries over the editor's edges (source = upstream, target = dependent).

export interface EdgeLike {
  source: string;
  target: string;
}

function downstreamMap(edges: EdgeLike[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const e of edges) {
    const list = map.get(e.source) ?? [];
    list.push(e.target);
    map.set(e.source, list);
  }
  return map;
}

/**
 * The cycle that adding `source -> target` would close, as a list of ids starting and ending
 * with `source` (e.g. [a, b, c, a]), or null when the edge keeps the graph acyclic.
 */
export function cycleCreatedBy(edges: EdgeLike[], source: string, target: string): string[] | null {
  if (source === target) return [source, source];
  // A cycle appears iff `source` is already reachable from `target`.
  const next = downstreamMap(edges);
  const parent = new Map<string, string>();
  const queue = [target];
  const seen = new Set([target]);
  while (queue.length) {
    const current = queue.shift()!;
    if (current === source) {
      const path = [source];
      let step = source;
      while (step !== target) {
        step = parent.get(step)!;
        path.unshift(step);
      }
      return [source, ...path];
    }
    for (const n of next.get(current) ?? []) {
      if (!seen.has(n)) {
        seen.add(n);
        parent.set(n, current);
        queue.push(n);
      }
    }
  }
  return null;
}

/** Every task `id` depends on, directly or not, nearest first. */
export function ancestorsOf(edges: EdgeLike[], id: string): string[] {
  const upstream = new Map<string, string[]>();
  for (const e of edges) {
    const list = upstream.get(e.target) ?? [];
    list.push(e.source);
    upstream.set(e.target, list);
  }
  const out: string[] = [];
  const seen = new Set([id]);
  const queue = [id];
  while (queue.length) {
    for (const up of upstream.get(queue.shift()!) ?? []) {
      if (!seen.has(up)) {
        seen.add(up);
        out.push(up);
        queue.push(up);
      }
    }
  }
  return out;
}
