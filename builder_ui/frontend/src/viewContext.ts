// What nodes need to draw themselves besides their definition data: the action catalogue,
// the latest run's task states and the last save's validation errors.

import { createContext, useContext } from "react";
import type { ActionInfo, TaskRun } from "./api";

export interface ViewState {
  actions: Map<string, ActionInfo>;
  taskRuns: Map<string, TaskRun>;
  /** A run is being shown: tasks without a record are `pending`. */
  runActive: boolean;
  nodeErrors: Map<string, string[]>;
}

export const ViewContext = createContext<ViewState>({
  actions: new Map(),
  taskRuns: new Map(),
  runActive: false,
  nodeErrors: new Map(),
});

export const useView = () => useContext(ViewContext);

export function nodeStatus(view: ViewState, id: string): string {
  const run = view.taskRuns.get(id);
  if (run) return run.status;
  return view.runActive ? "pending" : "idle";
}
