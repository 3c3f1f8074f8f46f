import type { FieldError } from "../api";

interface Props {
  loadError: string | null;
  conflict: boolean;
  general: FieldError[];
  nodeErrorIds: string[];
  onReload: () => void;
  onOverwrite: () => void;
  onSelectTask: (id: string) => void;
  onDismiss: () => void;
}

/** Save and load problems: a 409 conflict, errors without a node, and which nodes have errors. */
export function ErrorBanner({ loadError, conflict, general, nodeErrorIds, onReload, onOverwrite, onSelectTask, onDismiss }: Props) {
  if (!(general.length > 0 || nodeErrorIds.length > 0 || conflict || loadError)) return null;
  return (
    <div className="ff-banner" data-testid="errors">
      <div className="ff-banner-body">
        {loadError && <div>{loadError}</div>}
        {conflict && (
          <div data-testid="conflict">
            This workflow was changed by someone else since you opened it.{" "}
            <button type="button" className="ff-link" onClick={onReload}>
              Reload theirs
            </button>{" "}
            or{" "}
            <button type="button" className="ff-link" onClick={onOverwrite}>
              overwrite with yours
            </button>
            .
          </div>
        )}
        {general.length > 0 && (
          <ul className="ff-banner-list">
            {general.map((e, i) => (
              <li key={i}>
                {e.path && <code>{e.path}</code>} {e.message}
              </li>
            ))}
          </ul>
        )}
        {nodeErrorIds.length > 0 && (
          <div>
            Problems in {nodeErrorIds.length === 1 ? "task" : "tasks"}{" "}
            {nodeErrorIds.map((id, i) => (
              <span key={id}>
                {i > 0 && ", "}
                <button type="button" className="ff-link ff-mono" onClick={() => onSelectTask(id)}>
                  {id}
                </button>
              </span>
            ))}{" "}
            (highlighted on the canvas).
          </div>
        )}
      </div>
      <button type="button" className="ff-icon-btn" aria-label="Dismiss" onClick={onDismiss}>
        ×
      </button>
    </div>
  );
}
