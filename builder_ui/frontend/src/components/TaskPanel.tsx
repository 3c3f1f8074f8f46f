import { useEffect, useState } from "react";
import type { ActionInfo, TaskRun } from "../api";
import type { ConnectionOption } from "../connections";
import { TASK_DEFAULTS, TASK_ID_PATTERN, TRIGGER_RULES, hasForEach, type TaskData, type TaskNode } from "../definition";
import { SchemaForm, parseNumberText } from "../schemaForm";
import { TemplateInput } from "./TemplateInput";
import { TaskRunDetails } from "./TaskRunDetails";

export interface NodeError {
  /** Path below `tasks.<id>.`, e.g. `inputs.url` or `depends_on`; empty for the task itself. */
  field: string;
  message: string;
}

interface Props {
  node: TaskNode;
  action: ActionInfo | undefined;
  takenIds: string[];
  suggestions: string[];
  /** What a `connection` input may name; null while the accounts are loading. */
  connections: ConnectionOption[] | null;
  errors: NodeError[];
  taskRun: TaskRun | undefined;
  onRename: (newId: string) => void;
  onChange: (data: TaskData) => void;
  onDelete: () => void;
}

export function validateTaskId(id: string, current: string, taken: string[]): string | null {
  if (!id) return "The id cannot be empty.";
  if (!TASK_ID_PATTERN.test(id)) return "Use letters, digits and _ only, not starting with a digit.";
  if (id !== current && taken.includes(id)) return `Another task is already called '${id}'.`;
  return null;
}

function NumberSetting(props: {
  name: "retries" | "retry_delay" | "timeout" | "max_parallel";
  label: string;
  unit?: string;
  data: TaskData;
  onChange: (data: TaskData) => void;
}) {
  const { name, label, unit, data, onChange } = props;
  const value = data[name];
  return (
    <div className="ff-field ff-field-small">
      <label className="ff-label" htmlFor={`ff-task-${name}`}>
        {label}
        {unit && <span className="ff-type">{unit}</span>}
      </label>
      <input
        id={`ff-task-${name}`}
        type="number"
        min={name === "max_parallel" ? 1 : 0}
        step={name === "retries" || name === "max_parallel" ? 1 : "any"}
        className="ff-input ff-mono"
        data-testid={`task-${name}`}
        placeholder={String(TASK_DEFAULTS[name])}
        value={value === undefined ? "" : String(value)}
        onChange={(e) => {
          const parsed = parseNumberText(e.target.value, false);
          const next = { ...data };
          if (typeof parsed === "number") next[name] = parsed;
          else delete next[name];
          onChange(next);
        }}
      />
    </div>
  );
}

export function TaskPanel(props: Props) {
  const { node, action, takenIds, suggestions, connections, errors, taskRun, onRename, onChange, onDelete } = props;
  const [idText, setIdText] = useState(node.id);
  useEffect(() => setIdText(node.id), [node.id]);
  const idError = validateTaskId(idText, node.id, takenIds);
  const data = node.data;
  // The list is computed before any item exists, so its own expression cannot use them.
  const forEachSuggestions = suggestions.filter((s) => s !== "item" && s !== "index");

  function commitId() {
    if (idText !== node.id && !idError) onRename(idText);
  }

  const fieldErrors: Record<string, string[]> = {};
  const taskErrors: string[] = [];
  for (const e of errors) {
    const m = /^inputs\.([^.[]+)/.exec(e.field);
    if (m) (fieldErrors[m[1]] ??= []).push(e.message);
    else taskErrors.push(e.field ? `${e.field}: ${e.message}` : e.message);
  }
  return (
    <div className="ff-panel-body" data-testid="task-panel">
      {taskRun && <TaskRunDetails taskRun={taskRun} />}

      <div className="ff-field">
        <label className="ff-label" htmlFor="ff-node-id">
          Task id
        </label>
        <input
          id="ff-node-id"
          className="ff-input ff-mono"
          data-testid="node-id"
          value={idText}
          spellCheck={false}
          aria-invalid={!!idError || undefined}
          onChange={(e) => setIdText(e.target.value)}
          onBlur={commitId}
          onKeyDown={(e) => {
            if (e.key === "Enter") commitId();
            if (e.key === "Escape") setIdText(node.id);
          }}
        />
        {idError && idText !== node.id && (
          <div className="ff-field-error" data-testid="node-id-error">
            {idError}
          </div>
        )}
      </div>

      <div className="ff-action-card">
        <div className="ff-action-card-title">{action?.title ?? data.action}</div>
        <div className="ff-mono ff-muted">{data.action}</div>
        {action?.description && <p className="ff-help">{action.description}</p>}
      </div>

      {taskErrors.length > 0 && (
        <div className="ff-inline-error" data-testid="task-errors">
          {taskErrors.map((m) => (
            <div key={m}>{m}</div>
          ))}
        </div>
      )}

      <div className="ff-section-title">Inputs</div>
      <SchemaForm
        schema={action?.input_schema}
        values={data.inputs}
        onChange={(inputs) => onChange({ ...data, inputs })}
        suggestions={suggestions}
        fieldErrors={fieldErrors}
        connections={connections}
      />

      <div className="ff-section-title">Repeat</div>
      <div className="ff-settings">
        <div className="ff-field">
          <label className="ff-label" htmlFor="ff-task-for_each">
            For each item of
            <span className="ff-type">template → list</span>
          </label>
          <TemplateInput
            id="ff-task-for_each"
            testId="task-for_each"
            value={data.for_each ?? ""}
            placeholder="{{ trigger.body.users }}"
            suggestions={forEachSuggestions}
            onChange={(forEach) => onChange({ ...data, for_each: forEach || undefined })}
          />
          <div className="ff-help">
            {hasForEach(data)
              ? "Runs once per item; this task's fields can use {{ item }} and {{ index }}. Its output is the list of the items' outputs."
              : "Leave empty to run once. With a list, the task runs once per item; an empty list skips it."}
          </div>
        </div>
        {hasForEach(data) && (
          <div className="ff-row">
            <NumberSetting name="max_parallel" label="At most at once" data={data} onChange={onChange} />
          </div>
        )}
      </div>

      <div className="ff-section-title">Execution</div>
      <div className="ff-settings">
        <div className="ff-row">
          <NumberSetting name="retries" label="Retries" data={data} onChange={onChange} />
          <NumberSetting name="retry_delay" label="Retry delay" unit="s" data={data} onChange={onChange} />
          <NumberSetting name="timeout" label="Timeout" unit="s" data={data} onChange={onChange} />
        </div>
        <div className="ff-field">
          <label className="ff-label" htmlFor="ff-task-trigger_rule">
            Trigger rule
          </label>
          <select
            id="ff-task-trigger_rule"
            className="ff-input"
            data-testid="task-trigger_rule"
            value={data.trigger_rule ?? TASK_DEFAULTS.trigger_rule}
            onChange={(e) => onChange({ ...data, trigger_rule: e.target.value })}
          >
            {TRIGGER_RULES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <div className="ff-help">When this task runs, given how its dependencies ended.</div>
        </div>
        <div className="ff-field">
          <label className="ff-label" htmlFor="ff-task-when">
            Run only when
            <span className="ff-type">template</span>
          </label>
          <TemplateInput
            id="ff-task-when"
            testId="task-when"
            value={data.when ?? ""}
            placeholder="{{ steps.fetch.output.status == 200 }}"
            suggestions={suggestions}
            onChange={(when) => onChange({ ...data, when: when || undefined })}
          />
          <div className="ff-help">The task is skipped when this renders falsy.</div>
        </div>
        <div className="ff-field">
          <label className="ff-label" htmlFor="ff-task-queue">
            Queue
          </label>
          <input
            id="ff-task-queue"
            className="ff-input ff-mono"
            data-testid="task-queue"
            placeholder={TASK_DEFAULTS.queue}
            value={data.queue ?? ""}
            onChange={(e) => onChange({ ...data, queue: e.target.value || undefined })}
          />
        </div>
      </div>

      <div className="ff-panel-footer">
        <button type="button" className="ff-btn ff-btn-danger" data-testid="delete-node" onClick={onDelete}>
          Delete task
        </button>
      </div>
    </div>
  );
}
