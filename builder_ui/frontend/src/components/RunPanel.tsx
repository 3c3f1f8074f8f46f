import { itemProgress, taskRowsById, type Run } from "../api";

interface Props {
  payload: string;
  onPayloadChange: (text: string) => void;
  payloadError: string | null;
  run: Run | null;
  runError: string | null;
  runHref: (runId: number) => string;
  taskOrder: string[];
  onSelectTask: (id: string) => void;
}

export function RunPanel({ payload, onPayloadChange, payloadError, run, runError, runHref, taskOrder, onSelectTask }: Props) {
  const byId = taskRowsById(run?.tasks ?? []);
  const items = itemProgress(run?.tasks ?? []);
  const ids = [...taskOrder, ...[...byId.keys()].filter((id) => !taskOrder.includes(id))];
  return (
    <div className="ff-panel-body" data-testid="run-panel">
      <div className="ff-field">
        <label className="ff-label" htmlFor="ff-run-payload">
          Trigger payload<span className="ff-type">json, optional</span>
        </label>
        <textarea
          id="ff-run-payload"
          className="ff-input ff-mono"
          rows={6}
          spellCheck={false}
          placeholder='{"user_id": 42}'
          data-testid="run-payload"
          value={payload}
          aria-invalid={!!payloadError || undefined}
          onChange={(e) => onPayloadChange(e.target.value)}
        />
        {payloadError && <div className="ff-field-error">{payloadError}</div>}
        <div className="ff-help">Becomes trigger.body. Press Run in the toolbar; unsaved changes are saved first.</div>
      </div>
      {runError && (
        <div className="ff-inline-error" data-testid="run-error">
          {runError}
        </div>
      )}
      {run && (
        <>
          <div className="ff-section-title">
            <a href={runHref(run.id)} target="_blank" rel="noopener" data-testid="run-panel-link">
              Run #{run.id}
            </a>{" "}
            <span className={`ff-badge status-${run.status}`}>{run.status}</span>
          </div>
          <ul className="ff-run-tasks">
            {ids.map((id) => {
              const t = byId.get(id);
              const status = t?.status ?? "pending";
              const progress = items.get(id);
              return (
                <li key={id}>
                  <button type="button" className="ff-run-task" onClick={() => onSelectTask(id)} data-testid={`run-task-${id}`}>
                    <span className={`ff-dot status-${status}`} />
                    <span className="ff-mono">{id}</span>
                    <span className="ff-muted">{status}</span>
                    {t?.attempt && t.attempt > 1 ? <span className="ff-muted">#{t.attempt}</span> : null}
                    {progress ? (
                      <span className="ff-muted" data-testid={`run-task-items-${id}`}>
                        {progress.done}/{progress.total} items
                      </span>
                    ) : null}
                  </button>
                </li>
              );
            })}
          </ul>
        </>
      )}
    </div>
  );
}
