import type { TaskRun } from "../api";

function pretty(value: unknown): string {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function duration(run: TaskRun): string | null {
  if (!run.started_at || !run.finished_at) return null;
  const ms = Date.parse(run.finished_at) - Date.parse(run.started_at);
  if (!Number.isFinite(ms)) return null;
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The latest attempt of one task in the run being shown. */
export function TaskRunDetails({ taskRun }: { taskRun: TaskRun }) {
  const input = taskRun.input ?? taskRun.inputs;
  const took = duration(taskRun);
  return (
    <div className="ff-taskrun" data-testid="task-run" data-status={taskRun.status}>
      <div className="ff-taskrun-head">
        <span className={`ff-badge status-${taskRun.status}`} data-testid="task-run-status">
          {taskRun.status}
        </span>
        {taskRun.attempt ? <span className="ff-muted">attempt {taskRun.attempt}</span> : null}
        {took && <span className="ff-muted">{took}</span>}
      </div>
      {taskRun.status === "waiting" && (
        <div className="ff-help" data-testid="task-run-waiting">
          Waiting, holding no worker
          {taskRun.resume_at ? ` until ${new Date(taskRun.resume_at).toLocaleString()}` : ""}.
        </div>
      )}
      {taskRun.error && (
        <details open className="ff-detail">
          <summary>Error</summary>
          <pre className="ff-pre ff-pre-error" data-testid="task-run-error">
            {taskRun.error}
          </pre>
        </details>
      )}
      {input !== undefined && input !== null && (
        <details className="ff-detail">
          <summary>Input</summary>
          <pre className="ff-pre" data-testid="task-run-input">
            {pretty(input)}
          </pre>
        </details>
      )}
      {taskRun.output !== undefined && taskRun.output !== null && (
        <details open className="ff-detail">
          <summary>Output</summary>
          <pre className="ff-pre" data-testid="task-run-output">
            {pretty(taskRun.output)}
          </pre>
        </details>
      )}
      {taskRun.logs ? (
        <details open={!taskRun.output} className="ff-detail">
          <summary>Logs</summary>
          <pre className="ff-pre" data-testid="task-run-logs">
            {taskRun.logs}
          </pre>
        </details>
      ) : null}
    </div>
  );
}
