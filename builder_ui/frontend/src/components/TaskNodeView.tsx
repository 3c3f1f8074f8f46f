import { Handle, Position, type NodeProps } from "@xyflow/react";
import { memo } from "react";
import type { TaskNode } from "../definition";
import { familyOf, familyStyle } from "../families";
import { nodeStatus, useView } from "../viewContext";

const STATUS_LABEL: Record<string, string> = {
  idle: "",
  pending: "Pending",
  queued: "Queued",
  running: "Running",
  waiting: "Waiting (holds no worker)",
  succeeded: "Succeeded",
  failed: "Failed",
  skipped: "Skipped",
  cancelled: "Cancelled",
};

function TaskNodeViewImpl({ id, data, selected }: NodeProps<TaskNode>) {
  const view = useView();
  const action = view.actions.get(data.action);
  const family = action?.family ?? familyOf(data.action);
  const style = familyStyle(family);
  const status = nodeStatus(view, id);
  const run = view.taskRuns.get(id);
  const errors = view.nodeErrors.get(id) ?? [];
  const unknownAction = view.actions.size > 0 && !action;

  return (
    <div
      className={`ff-node status-${status}${selected ? " selected" : ""}${errors.length ? " has-error" : ""}`}
      data-status={status}
      data-testid={`node-${id}`}
      style={{ ["--family" as string]: style.color }}
    >
      <Handle type="target" position={Position.Left} className="ff-handle" />
      <div className="ff-node-icon" aria-hidden>
        {style.glyph}
      </div>
      <div className="ff-node-body">
        <div className="ff-node-id" title={id}>
          {id}
        </div>
        <div className="ff-node-action" title={action?.description ?? data.action}>
          {action?.title ?? data.action}
          {unknownAction && <span className="ff-node-warn"> · unknown action</span>}
        </div>
        {errors.length > 0 && (
          <div className="ff-node-error" data-testid={`node-error-${id}`} title={errors.join("\n")}>
            {errors[0]}
            {errors.length > 1 && ` (+${errors.length - 1})`}
          </div>
        )}
      </div>
      {status !== "idle" && (
        <div className="ff-node-status" title={STATUS_LABEL[status] ?? status}>
          <span className="ff-dot" />
          {run?.attempt && run.attempt > 1 ? <span className="ff-attempt">#{run.attempt}</span> : null}
        </div>
      )}
      <Handle type="source" position={Position.Right} className="ff-handle" />
    </div>
  );
}

export const TaskNodeView = memo(TaskNodeViewImpl);
