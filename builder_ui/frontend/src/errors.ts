import type { FieldError } from "./api";
import type { NodeError } from "./components/TaskPanel";

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface SplitErrors {
  nodeErrors: Map<string, NodeError[]>;
  triggerErrors: Map<number, string[]>;
  general: FieldError[];
}

/** Server errors by where they are shown: on a node, on a trigger, or in the banner. */
export function splitErrors(errors: FieldError[], nodeIds: Set<string>): SplitErrors {
  const out: SplitErrors = { nodeErrors: new Map(), triggerErrors: new Map(), general: [] };
  for (const error of errors) {
    const task = /^tasks\.([A-Za-z_][A-Za-z0-9_]*)(?:\.(.*))?$/.exec(error.path);
    if (task && nodeIds.has(task[1])) {
      const list = out.nodeErrors.get(task[1]) ?? [];
      list.push({ field: task[2] ?? "", message: error.message });
      out.nodeErrors.set(task[1], list);
      continue;
    }
    const trigger = /^triggers\.(\d+)(?:\.(.*))?$/.exec(error.path);
    if (trigger) {
      const index = Number(trigger[1]);
      out.triggerErrors.set(index, [
        ...(out.triggerErrors.get(index) ?? []),
        trigger[2] ? `${trigger[2]}: ${error.message}` : error.message,
      ]);
    }
    out.general.push(error);
  }
  return out;
}
