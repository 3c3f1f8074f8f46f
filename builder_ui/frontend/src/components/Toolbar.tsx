import type { Run, Workflow } from "../api";
import { FINAL_RUN_STATES } from "../api";

interface Props {
  adminHref: string;
  /** The run page of a run id (the admin's). */
  runHref: (runId: number) => string;
  name: string;
  onNameChange: (name: string) => void;
  workflow: Workflow | null;
  loaded: boolean;
  dirty: boolean;
  saving: boolean;
  notice: string | null;
  run: Run | null;
  starting: boolean;
  canRun: boolean;
  runTitle: string;
  onShowRun: () => void;
  onAutoLayout: () => void;
  onSave: () => void;
  onRun: () => void;
}

export function Toolbar(props: Props) {
  const { workflow, dirty, saving, notice, run, loaded } = props;
  const runFinal = run ? FINAL_RUN_STATES.includes(run.status) : true;
  const saveState = saving
    ? "Saving…"
    : dirty
      ? "Unsaved changes"
      : workflow
        ? `Saved${workflow.version ? ` · v${workflow.version}` : ""}`
        : "New workflow";
  return (
    <header className="ff-header">
      <div className="ff-brand">
        <span className="ff-logo" aria-hidden>
          ◆
        </span>
        Flowforge
      </div>
      <a className="ff-back" href={props.adminHref} data-testid="back-to-admin">
        ← Back to admin
      </a>
      <div className="ff-divider" />
      <input
        className="ff-title-input"
        aria-label="Workflow name"
        data-testid="workflow-name"
        value={props.name}
        placeholder="Workflow name"
        onChange={(e) => props.onNameChange(e.target.value)}
      />
      <span className={`ff-save-state${dirty ? " dirty" : ""}`} data-testid="save-state" data-dirty={dirty}>
        {saving || dirty ? saveState : (notice ?? saveState)}
      </span>
      <div className="ff-spacer" />
      {run && (
        <span className="ff-run-chip" onClick={props.onShowRun}>
          <a
            href={props.runHref(run.id)}
            target="_blank"
            rel="noopener"
            data-testid="run-link"
            title="Open the run page (new tab)"
            onClick={(e) => e.stopPropagation()}
          >
            Run #{run.id}
          </a>
          <span className={`ff-badge status-${run.status}`} data-testid="run-status" data-status={run.status}>
            {run.status}
          </span>
        </span>
      )}
      <button type="button" className="ff-btn" onClick={props.onAutoLayout} data-testid="auto-layout" disabled={!loaded}>
        Auto-layout
      </button>
      <button type="button" className="ff-btn" onClick={props.onSave} data-testid="save" disabled={!loaded || saving}>
        {saving ? "Saving…" : "Save"}
      </button>
      <button
        type="button"
        className="ff-btn ff-btn-primary"
        onClick={props.onRun}
        data-testid="run"
        disabled={!loaded || props.starting || !props.canRun}
        title={props.runTitle}
      >
        {props.starting ? "Starting…" : runFinal ? "▶ Run" : "▶ Run again"}
      </button>
    </header>
  );
}
