import { useMemo, useState, type DragEvent } from "react";
import type { ActionInfo } from "../api";
import { familyStyle } from "../families";

export const DRAG_MIME = "application/x-flowforge-action";

interface Props {
  actions: ActionInfo[];
  loading: boolean;
  error: string | null;
  onAdd: (action: string) => void;
}

export function Sidebar({ actions, loading, error, onAdd }: Props) {
  const [query, setQuery] = useState("");
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());

  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const matching = actions.filter(
      (a) =>
        !q ||
        a.name.toLowerCase().includes(q) ||
        (a.title ?? "").toLowerCase().includes(q) ||
        (a.description ?? "").toLowerCase().includes(q) ||
        a.family.toLowerCase().includes(q),
    );
    const byFamily = new Map<string, ActionInfo[]>();
    for (const a of matching) byFamily.set(a.family, [...(byFamily.get(a.family) ?? []), a]);
    return [...byFamily.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([family, list]) => [family, list.sort((x, y) => x.name.localeCompare(y.name))] as const);
  }, [actions, query]);

  function onDragStart(event: DragEvent, name: string) {
    event.dataTransfer.setData(DRAG_MIME, name);
    event.dataTransfer.setData("text/plain", name);
    event.dataTransfer.effectAllowed = "copy";
  }

  return (
    <aside className="ff-sidebar" aria-label="Action library">
      <div className="ff-sidebar-head">
        <div className="ff-section-title">Actions</div>
        <input
          type="search"
          className="ff-input"
          placeholder="Search actions…"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          data-testid="action-search"
          aria-label="Search actions"
        />
      </div>
      <div className="ff-sidebar-list">
        {loading && <div className="ff-muted ff-pad">Loading actions…</div>}
        {error && <div className="ff-inline-error ff-pad">{error}</div>}
        {!loading && !error && groups.length === 0 && <div className="ff-muted ff-pad">No action matches “{query}”.</div>}
        {groups.map(([family, list]) => {
          const style = familyStyle(family);
          const isCollapsed = collapsed.has(family) && !query;
          return (
            <section key={family} className="ff-family" data-testid={`family-${family}`}>
              <button
                type="button"
                className="ff-family-head"
                aria-expanded={!isCollapsed}
                onClick={() =>
                  setCollapsed((c) => {
                    const next = new Set(c);
                    if (next.has(family)) next.delete(family);
                    else next.add(family);
                    return next;
                  })
                }
              >
                <span className="ff-chevron">{isCollapsed ? "▸" : "▾"}</span>
                <span className="ff-family-name">{family}</span>
                <span className="ff-count">{list.length}</span>
              </button>
              {!isCollapsed &&
                list.map((action) => (
                  <div
                    key={action.name}
                    className="ff-action"
                    draggable
                    onDragStart={(e) => onDragStart(e, action.name)}
                    onDoubleClick={() => onAdd(action.name)}
                    data-testid={`action-${action.name}`}
                    data-action={action.name}
                    title={`${action.description ?? action.name}\nDrag onto the canvas, or double-click to add.`}
                    style={{ ["--family" as string]: style.color }}
                  >
                    <span className="ff-action-icon" aria-hidden>
                      {style.glyph}
                    </span>
                    <span className="ff-action-text">
                      <span className="ff-action-title">{action.title ?? action.name}</span>
                      <span className="ff-action-name">{action.name}</span>
                    </span>
                    <button
                      type="button"
                      className="ff-action-add"
                      aria-label={`Add ${action.name}`}
                      data-testid={`add-${action.name}`}
                      onClick={() => onAdd(action.name)}
                    >
                      +
                    </button>
                  </div>
                ))}
            </section>
          );
        })}
      </div>
    </aside>
  );
}
