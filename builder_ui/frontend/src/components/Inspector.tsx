import type { ActionInfo, Run, TaskRun } from "../api";
import type { ConnectionOption } from "../connections";
import type { TaskData, TaskNode, WorkflowMeta } from "../definition";
import { RunPanel } from "./RunPanel";
import { TaskPanel, type NodeError } from "./TaskPanel";
import { WorkflowPanel } from "./WorkflowPanel";

export type Tab = "task" | "workflow" | "run";

interface Props {
  tab: Tab;
  onTab: (tab: Tab) => void;
  selectedNode: TaskNode | null;
  actions: ActionInfo[];
  actionsByName: Map<string, ActionInfo>;
  taskIds: string[];
  suggestions: string[];
  connections: ConnectionOption[] | null;
  nodeErrors: Map<string, NodeError[]>;
  triggerErrors: Map<number, string[]>;
  taskRuns: Map<string, TaskRun>;
  onRename: (oldId: string, newId: string) => void;
  onChangeTask: (id: string, data: TaskData) => void;
  onDeleteTask: (id: string) => void;
  onSelectTask: (id: string) => void;
  meta: WorkflowMeta;
  onMetaChange: (meta: WorkflowMeta) => void;
  webhookUrl: string | null | undefined;
  saved: boolean;
  payload: string;
  onPayloadChange: (text: string) => void;
  payloadError: string | null;
  run: Run | null;
  runError: string | null;
  runHref: (runId: number) => string;
}

/** The right-hand panel: the selected task, the workflow's settings and triggers, or the last run. */
export function Inspector(props: Props) {
  const { tab, onTab, selectedNode } = props;
  return (
    <aside className="ff-panel" aria-label="Inspector">
      <nav className="ff-tabs" role="tablist">
        <button
          type="button"
          role="tab"
          aria-selected={tab === "task"}
          disabled={!selectedNode}
          data-testid="tab-task"
          onClick={() => onTab("task")}
        >
          Task
        </button>
        <button type="button" role="tab" aria-selected={tab === "workflow"} data-testid="tab-workflow" onClick={() => onTab("workflow")}>
          Workflow
        </button>
        <button type="button" role="tab" aria-selected={tab === "run"} data-testid="tab-run" onClick={() => onTab("run")}>
          Run
        </button>
      </nav>
      {tab === "task" && selectedNode && (
        <TaskPanel
          key={selectedNode.id}
          node={selectedNode}
          action={props.actionsByName.get(selectedNode.data.action)}
          takenIds={props.taskIds}
          suggestions={props.suggestions}
          connections={props.connections}
          errors={props.nodeErrors.get(selectedNode.id) ?? []}
          taskRun={props.taskRuns.get(selectedNode.id)}
          onRename={(newId) => props.onRename(selectedNode.id, newId)}
          onChange={(data) => props.onChangeTask(selectedNode.id, data)}
          onDelete={() => props.onDeleteTask(selectedNode.id)}
        />
      )}
      {tab === "task" && !selectedNode && <div className="ff-panel-body ff-muted">Select a task on the canvas.</div>}
      {tab === "workflow" && (
        <WorkflowPanel
          meta={props.meta}
          onChange={props.onMetaChange}
          webhookUrl={props.webhookUrl}
          saved={props.saved}
          actions={props.actions}
          triggerErrors={props.triggerErrors}
        />
      )}
      {tab === "run" && (
        <RunPanel
          payload={props.payload}
          onPayloadChange={props.onPayloadChange}
          payloadError={props.payloadError}
          run={props.run}
          runError={props.runError}
          runHref={props.runHref}
          taskOrder={props.taskIds}
          onSelectTask={props.onSelectTask}
        />
      )}
    </aside>
  );
}
