import {
  Background,
  BackgroundVariant,
  Controls,
  MarkerType,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { parse as parseYaml } from "yaml";
import { ApiError, FINAL_RUN_STATES, type ActionInfo, type ApiClient, type FieldError, type Run, type TaskRun, type Workflow } from "./api";
import { templateSuggestions } from "./completions";
import {
  fromDefinition,
  makeEdge,
  slugify,
  toDefinition,
  uniqueId,
  type Graph,
  type TaskData,
  type TaskNode,
  type WorkflowMeta,
} from "./definition";
import { ancestorsOf, cycleCreatedBy } from "./graph";
import { NODE_HEIGHT, NODE_WIDTH, freePosition, layoutNodes } from "./layout";
import { nodeStatus, ViewContext, type ViewState } from "./viewContext";
import { DeletableEdge } from "./components/DeletableEdge";
import { RunPanel } from "./components/RunPanel";
import { DRAG_MIME, Sidebar } from "./components/Sidebar";
import { TaskPanel, type NodeError } from "./components/TaskPanel";
import { TaskNodeView } from "./components/TaskNodeView";
import { WorkflowPanel } from "./components/WorkflowPanel";
import { familyStyle } from "./families";

export interface BuilderConfig {
  workflowId: string | null;
  apiBase: string;
  csrfToken: string;
  adminUrl: string;
}

type Tab = "task" | "workflow" | "run";

const nodeTypes = { task: TaskNodeView };
const edgeTypes = { deletable: DeletableEdge };
const EDGE_MARKER = { type: MarkerType.ArrowClosed, width: 16, height: 16 };
const POLL_MS = 500;
const NEW_META: WorkflowMeta = { name: "Untitled workflow", triggers: [], extra: {} };

function serialize(nodes: TaskNode[], edges: Edge[], meta: WorkflowMeta): string {
  return JSON.stringify(toDefinition(nodes, edges, meta));
}

/** The API returns an object, but tolerate a definition stored as YAML or JSON text. */
function definitionObject(definition: Workflow["definition"]): unknown {
  return typeof definition === "string" ? parseYaml(definition) : definition;
}

interface SplitErrors {
  nodeErrors: Map<string, NodeError[]>;
  triggerErrors: Map<number, string[]>;
  general: FieldError[];
}

function splitErrors(errors: FieldError[], nodeIds: Set<string>): SplitErrors {
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function Builder({ config, api }: { config: BuilderConfig; api: ApiClient }) {
  const flow = useReactFlow<TaskNode, Edge>();
  const canvasRef = useRef<HTMLDivElement>(null);

  const [actions, setActions] = useState<ActionInfo[]>([]);
  const [actionsLoading, setActionsLoading] = useState(true);
  const [actionsError, setActionsError] = useState<string | null>(null);

  const [workflow, setWorkflow] = useState<Workflow | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [nodes, setNodes] = useState<TaskNode[]>([]);
  const [edges, setEdges] = useState<Edge[]>([]);
  const [meta, setMeta] = useState<WorkflowMeta>(NEW_META);
  const [savedSnapshot, setSavedSnapshot] = useState<string>("");

  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("workflow");
  const [cycleError, setCycleError] = useState<string | null>(null);
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [conflict, setConflict] = useState(false);
  const [saving, setSaving] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  const [payload, setPayload] = useState("");
  const [payloadError, setPayloadError] = useState<string | null>(null);
  const [run, setRun] = useState<Run | null>(null);
  const [runError, setRunError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const pollToken = useRef(0);

  const actionsByName = useMemo(() => new Map(actions.map((a) => [a.name, a])), [actions]);

  // ---- loading ---------------------------------------------------------------------------

  const applyGraph = useCallback((graph: Graph) => {
    setNodes(layoutNodes(graph.nodes, graph.edges));
    setEdges(graph.edges);
    setMeta(graph.meta);
    setSavedSnapshot(serialize(graph.nodes, graph.edges, graph.meta));
    setLoaded(true);
  }, []);

  useEffect(() => {
    api
      .listActions()
      .then(setActions)
      .catch((err) => setActionsError(`Could not load the action library: ${errorText(err)}`))
      .finally(() => setActionsLoading(false));
  }, [api]);

  const loadWorkflow = useCallback(async () => {
    if (!config.workflowId) {
      applyGraph({ nodes: [], edges: [], meta: { ...NEW_META } });
      return;
    }
    try {
      const wf = await api.getWorkflow(config.workflowId);
      const graph = fromDefinition(definitionObject(wf.definition));
      if (!graph.meta.name) graph.meta.name = wf.name;
      setWorkflow(wf);
      setErrors([]);
      setConflict(false);
      applyGraph(graph);
    } catch (err) {
      setLoadError(`Could not load workflow ${config.workflowId}: ${errorText(err)}`);
    }
  }, [api, applyGraph, config.workflowId]);

  useEffect(() => {
    void loadWorkflow();
  }, [loadWorkflow]);

  // ---- derived state ---------------------------------------------------------------------

  const currentSnapshot = useMemo(() => serialize(nodes, edges, meta), [nodes, edges, meta]);
  const dirty = loaded && currentSnapshot !== savedSnapshot;
  const nodeIds = useMemo(() => new Set(nodes.map((n) => n.id)), [nodes]);
  const split = useMemo(() => splitErrors(errors, nodeIds), [errors, nodeIds]);

  const taskRuns = useMemo(() => new Map<string, TaskRun>((run?.tasks ?? []).map((t) => [t.task_id, t])), [run]);
  const view: ViewState = useMemo(
    () => ({
      actions: actionsByName,
      taskRuns,
      runActive: run !== null,
      nodeErrors: new Map(
        [...split.nodeErrors].map(([id, list]) => [id, list.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message))]),
      ),
    }),
    [actionsByName, taskRuns, run, split],
  );

  const displayNodes = useMemo(
    () =>
      nodes.map((n) => ({
        ...n,
        domAttributes: { "data-status": nodeStatus(view, n.id) } as TaskNode["domAttributes"],
      })),
    [nodes, view],
  );
  const displayEdges = useMemo(
    () => edges.map((e) => ({ ...e, type: "deletable", markerEnd: EDGE_MARKER })),
    [edges],
  );

  const selectedNode = nodes.find((n) => n.id === selectedId) ?? null;
  useEffect(() => {
    if (selectedId && !nodeIds.has(selectedId)) setSelectedId(null);
  }, [selectedId, nodeIds]);

  const suggestions = useMemo(() => {
    if (!selectedId) return templateSuggestions([]);
    const upstream = ancestorsOf(edges, selectedId).map((id) => ({
      id,
      action: actionsByName.get(nodes.find((n) => n.id === id)?.data.action ?? ""),
    }));
    return templateSuggestions(upstream);
  }, [selectedId, edges, nodes, actionsByName]);

  // ---- unsaved-changes guard -------------------------------------------------------------

  useEffect(() => {
    if (!dirty) return;
    const guard = (event: BeforeUnloadEvent) => {
      event.preventDefault();
      event.returnValue = "";
    };
    window.addEventListener("beforeunload", guard);
    return () => window.removeEventListener("beforeunload", guard);
  }, [dirty]);

  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(null), 2500);
    return () => clearTimeout(timer);
  }, [notice]);

  // ---- graph editing ---------------------------------------------------------------------

  const onNodesChange = useCallback(
    (changes: NodeChange<TaskNode>[]) => setNodes((ns) => applyNodeChanges(changes, ns)),
    [],
  );
  const onEdgesChange = useCallback((changes: EdgeChange[]) => setEdges((es) => applyEdgeChanges(changes, es)), []);

  const onConnect = useCallback(
    (connection: Connection) => {
      const { source, target } = connection;
      if (!source || !target) return;
      if (edges.some((e) => e.source === source && e.target === target)) return;
      const cycle = cycleCreatedBy(edges, source, target);
      if (cycle) {
        setCycleError(
          source === target
            ? `A task cannot depend on itself (${source}).`
            : `Cannot make ${target} depend on ${source}: that would create the cycle ${cycle.join(" → ")}.`,
        );
        return;
      }
      setCycleError(null);
      setEdges((es) => [...es, makeEdge(source, target)]);
    },
    [edges],
  );

  const addNode = useCallback(
    (actionName: string, at?: { x: number; y: number }) => {
      let position = at;
      if (!position) {
        const rect = canvasRef.current?.getBoundingClientRect();
        const center = rect
          ? flow.screenToFlowPosition({ x: rect.left + rect.width / 2, y: rect.top + rect.height / 2 })
          : { x: 0, y: 0 };
        const corner = freePosition(center, nodes);
        position = { x: corner.x + NODE_WIDTH / 2, y: corner.y + NODE_HEIGHT / 2 };
      }
      const id = uniqueId(slugify(actionName), nodes.map((n) => n.id));
      const node: TaskNode = {
        id,
        type: "task",
        position: { x: position.x - NODE_WIDTH / 2, y: position.y - NODE_HEIGHT / 2 },
        data: { action: actionName, inputs: {} },
        selected: true,
      };
      setNodes((ns) => [...ns.map((n) => (n.selected ? { ...n, selected: false } : n)), node]);
      setSelectedId(id);
      setTab("task");
      // Bring a node placed outside the visible area into view, along with the rest of the graph.
      const rect = canvasRef.current?.getBoundingClientRect();
      if (rect) {
        const topLeft = flow.flowToScreenPosition(node.position);
        const bottomRight = flow.flowToScreenPosition({ x: node.position.x + NODE_WIDTH, y: node.position.y + NODE_HEIGHT });
        if (topLeft.x < rect.left || topLeft.y < rect.top || bottomRight.x > rect.right || bottomRight.y > rect.bottom) {
          const { zoom } = flow.getViewport();
          setTimeout(() => void flow.fitView({ padding: 0.2, maxZoom: Math.max(zoom, 0.5), duration: 200 }), 50);
        }
      }
    },
    [flow, nodes],
  );

  const onDragOver = useCallback((event: DragEvent) => {
    if (event.dataTransfer.types.includes(DRAG_MIME)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    }
  }, []);

  const onDrop = useCallback(
    (event: DragEvent) => {
      const name = event.dataTransfer.getData(DRAG_MIME);
      if (!name) return;
      event.preventDefault();
      addNode(name, flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [addNode, flow],
  );

  const renameNode = useCallback((oldId: string, newId: string) => {
    setNodes((ns) => ns.map((n) => (n.id === oldId ? { ...n, id: newId } : n)));
    setEdges((es) =>
      es.map((e) => {
        if (e.source !== oldId && e.target !== oldId) return e;
        const source = e.source === oldId ? newId : e.source;
        const target = e.target === oldId ? newId : e.target;
        return { ...makeEdge(source, target), selected: e.selected };
      }),
    );
    setSelectedId(newId);
  }, []);

  const updateNodeData = useCallback((id: string, data: TaskData) => {
    setNodes((ns) => ns.map((n) => (n.id === id ? { ...n, data } : n)));
  }, []);

  const deleteNode = useCallback((id: string) => {
    setNodes((ns) => ns.filter((n) => n.id !== id));
    setEdges((es) => es.filter((e) => e.source !== id && e.target !== id));
    setSelectedId(null);
    setTab("workflow");
  }, []);

  const autoLayout = useCallback(() => {
    setNodes((ns) => layoutNodes(ns, edges));
    setTimeout(() => flow.fitView({ padding: 0.2, duration: 250, maxZoom: 1.25 }), 0);
  }, [edges, flow]);

  // ---- save & run ------------------------------------------------------------------------

  const save = useCallback(
    async (options: { overwrite?: boolean } = {}): Promise<Workflow | null> => {
      const definition = toDefinition(nodes, edges, meta);
      const name = meta.name.trim() || "Untitled workflow";
      setSaving(true);
      setConflict(false);
      try {
        const saved = workflow
          ? await api.updateWorkflow(workflow.id, {
              name,
              definition,
              ...(options.overwrite || workflow.version === undefined ? {} : { version: workflow.version }),
            })
          : await api.createWorkflow({ name, definition });
        setErrors([]);
        setWorkflow(saved);
        setSavedSnapshot(JSON.stringify(definition));
        setNotice("Saved");
        if (!workflow && saved?.id !== undefined && /\/builder\/?$/.test(window.location.pathname)) {
          const path = window.location.pathname.replace(/\/?$/, `/${saved.id}/`);
          window.history.replaceState(window.history.state, "", path + window.location.search);
        }
        return saved;
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          setConflict(true);
          setErrors([]);
        } else if (err instanceof ApiError && err.errors.length) {
          setErrors(err.errors);
        } else {
          setErrors([{ path: "", message: `Save failed: ${errorText(err)}` }]);
        }
        return null;
      } finally {
        setSaving(false);
      }
    },
    [api, edges, meta, nodes, workflow],
  );

  const poll = useCallback(
    async (runId: number) => {
      const token = ++pollToken.current;
      let failures = 0;
      while (token === pollToken.current) {
        try {
          const latest = await api.getRun(runId);
          if (token !== pollToken.current) return;
          failures = 0;
          setRun({ ...latest, tasks: latest.tasks ?? [] });
          if (FINAL_RUN_STATES.includes(latest.status)) return;
        } catch (err) {
          if (++failures >= 10) {
            setRunError(`Lost track of run ${runId}: ${errorText(err)}`);
            return;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    },
    [api],
  );

  useEffect(() => () => void pollToken.current++, []);

  const startRun = useCallback(async () => {
    let body: unknown = undefined;
    if (payload.trim()) {
      try {
        body = JSON.parse(payload);
      } catch (err) {
        setPayloadError(`The payload is not valid JSON: ${errorText(err)}`);
        setTab("run");
        return;
      }
    }
    setPayloadError(null);
    setStarting(true);
    try {
      let target = workflow;
      if (!target || dirty) {
        target = await save();
        if (!target) return;
      }
      setRunError(null);
      const { run_id } = await api.runWorkflow(target.id, body);
      pollToken.current++;
      setRun({ id: run_id, status: "queued", tasks: [] });
      void poll(run_id);
    } catch (err) {
      if (err instanceof ApiError && err.errors.length) setErrors(err.errors);
      setRunError(`Could not start the run: ${errorText(err)}`);
      setTab("run");
    } finally {
      setStarting(false);
    }
  }, [api, dirty, payload, poll, save, workflow]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
        event.preventDefault();
        void save();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [save]);

  // ---- render ----------------------------------------------------------------------------

  const adminHref = workflow ? `${config.adminUrl}${workflow.id}/change/` : config.adminUrl;
  const nodeErrorIds = [...split.nodeErrors.keys()];
  const showBanner = split.general.length > 0 || nodeErrorIds.length > 0 || conflict || !!loadError;
  const runFinal = run ? FINAL_RUN_STATES.includes(run.status) : true;
  const saveState = saving ? "Saving…" : dirty ? "Unsaved changes" : workflow ? `Saved${workflow.version ? ` · v${workflow.version}` : ""}` : "New workflow";

  return (
    <ViewContext.Provider value={view}>
      <div className="ff-app">
        <header className="ff-header">
          <div className="ff-brand">
            <span className="ff-logo" aria-hidden>
              ◆
            </span>
            Flowforge
          </div>
          <a className="ff-back" href={adminHref} data-testid="back-to-admin">
            ← Back to admin
          </a>
          <div className="ff-divider" />
          <input
            className="ff-title-input"
            aria-label="Workflow name"
            data-testid="workflow-name"
            value={meta.name}
            placeholder="Workflow name"
            onChange={(e) => setMeta({ ...meta, name: e.target.value })}
          />
          <span className={`ff-save-state${dirty ? " dirty" : ""}`} data-testid="save-state" data-dirty={dirty}>
            {saving || dirty ? saveState : (notice ?? saveState)}
          </span>
          <div className="ff-spacer" />
          {run && (
            <span className="ff-run-chip" onClick={() => setTab("run")}>
              Run #{run.id}
              <span className={`ff-badge status-${run.status}`} data-testid="run-status" data-status={run.status}>
                {run.status}
              </span>
            </span>
          )}
          <button type="button" className="ff-btn" onClick={autoLayout} data-testid="auto-layout" disabled={!loaded}>
            Auto-layout
          </button>
          <button
            type="button"
            className="ff-btn"
            onClick={() => void save()}
            data-testid="save"
            disabled={!loaded || saving}
          >
            {saving ? "Saving…" : "Save"}
          </button>
          <button
            type="button"
            className="ff-btn ff-btn-primary"
            onClick={() => void startRun()}
            data-testid="run"
            disabled={!loaded || starting || nodes.length === 0}
            title={payload.trim() ? "Run with the payload from the Run tab" : "Run now"}
          >
            {starting ? "Starting…" : runFinal ? "▶ Run" : "▶ Run again"}
          </button>
        </header>

        {showBanner && (
          <div className="ff-banner" data-testid="errors">
            <div className="ff-banner-body">
              {loadError && <div>{loadError}</div>}
              {conflict && (
                <div data-testid="conflict">
                  This workflow was changed by someone else since you opened it.{" "}
                  <button type="button" className="ff-link" onClick={() => void loadWorkflow()}>
                    Reload theirs
                  </button>{" "}
                  or{" "}
                  <button type="button" className="ff-link" onClick={() => void save({ overwrite: true })}>
                    overwrite with yours
                  </button>
                  .
                </div>
              )}
              {split.general.length > 0 && (
                <ul className="ff-banner-list">
                  {split.general.map((e, i) => (
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
                      <button
                        type="button"
                        className="ff-link ff-mono"
                        onClick={() => {
                          setSelectedId(id);
                          setTab("task");
                        }}
                      >
                        {id}
                      </button>
                    </span>
                  ))}{" "}
                  (highlighted on the canvas).
                </div>
              )}
            </div>
            <button type="button" className="ff-icon-btn" aria-label="Dismiss" onClick={() => (setErrors([]), setConflict(false))}>
              ×
            </button>
          </div>
        )}

        <div className="ff-main">
          <Sidebar actions={actions} loading={actionsLoading} error={actionsError} onAdd={(name) => addNode(name)} />

          <div className="ff-canvas" ref={canvasRef} onDragOver={onDragOver} onDrop={onDrop} data-testid="canvas">
            {cycleError && (
              <div className="ff-toast ff-toast-error" role="alert" data-testid="cycle-error">
                <span>{cycleError}</span>
                <button type="button" className="ff-icon-btn" aria-label="Dismiss" onClick={() => setCycleError(null)}>
                  ×
                </button>
              </div>
            )}
            {loaded ? (
              <ReactFlow<TaskNode, Edge>
                nodes={displayNodes}
                edges={displayEdges}
                nodeTypes={nodeTypes}
                edgeTypes={edgeTypes}
                onNodesChange={onNodesChange}
                onEdgesChange={onEdgesChange}
                onConnect={onConnect}
                onNodeClick={(_, node) => {
                  setSelectedId(node.id);
                  setTab("task");
                }}
                onPaneClick={() => {
                  setSelectedId(null);
                  setTab((t) => (t === "task" ? "workflow" : t));
                }}
                deleteKeyCode={["Backspace", "Delete"]}
                fitView
                fitViewOptions={{ padding: 0.2, maxZoom: 1.25 }}
                minZoom={0.2}
                maxZoom={2}
                proOptions={{ hideAttribution: true }}
              >
                <Background variant={BackgroundVariant.Dots} gap={18} size={1} color="#cbd5e1" />
                <MiniMap
                  pannable
                  zoomable
                  nodeColor={(n) => familyStyle(actionsByName.get((n.data as TaskData).action)?.family ?? "").color}
                  nodeStrokeWidth={0}
                  maskColor="rgba(241, 245, 249, 0.7)"
                />
                <Controls showInteractive={false} />
              </ReactFlow>
            ) : (
              !loadError && <div className="ff-loading">Loading workflow…</div>
            )}
            {loaded && nodes.length === 0 && (
              <div className="ff-empty">
                <div className="ff-empty-title">Start with an action</div>
                <div>Drag one from the library on the left, or double-click it.</div>
              </div>
            )}
          </div>

          <aside className="ff-panel" aria-label="Inspector">
            <nav className="ff-tabs" role="tablist">
              <button
                type="button"
                role="tab"
                aria-selected={tab === "task"}
                disabled={!selectedNode}
                data-testid="tab-task"
                onClick={() => setTab("task")}
              >
                Task
              </button>
              <button
                type="button"
                role="tab"
                aria-selected={tab === "workflow"}
                data-testid="tab-workflow"
                onClick={() => setTab("workflow")}
              >
                Workflow
              </button>
              <button type="button" role="tab" aria-selected={tab === "run"} data-testid="tab-run" onClick={() => setTab("run")}>
                Run
              </button>
            </nav>
            {tab === "task" && selectedNode && (
              <TaskPanel
                key={selectedNode.id}
                node={selectedNode}
                action={actionsByName.get(selectedNode.data.action)}
                takenIds={nodes.map((n) => n.id)}
                suggestions={suggestions}
                errors={split.nodeErrors.get(selectedNode.id) ?? []}
                taskRun={taskRuns.get(selectedNode.id)}
                onRename={(newId) => renameNode(selectedNode.id, newId)}
                onChange={(data) => updateNodeData(selectedNode.id, data)}
                onDelete={() => deleteNode(selectedNode.id)}
              />
            )}
            {tab === "task" && !selectedNode && <div className="ff-panel-body ff-muted">Select a task on the canvas.</div>}
            {tab === "workflow" && (
              <WorkflowPanel
                meta={meta}
                onChange={setMeta}
                webhookUrl={workflow?.webhook_url}
                saved={!!workflow}
                actions={actions}
                triggerErrors={split.triggerErrors}
              />
            )}
            {tab === "run" && (
              <RunPanel
                payload={payload}
                onPayloadChange={(text) => {
                  setPayload(text);
                  setPayloadError(null);
                }}
                payloadError={payloadError}
                run={run}
                runError={runError}
                taskOrder={nodes.map((n) => n.id)}
                onSelectTask={(id) => {
                  setSelectedId(id);
                  setTab("task");
                }}
              />
            )}
          </aside>
        </div>
      </div>
    </ViewContext.Provider>
  );
}

export function App(props: { config: BuilderConfig; api: ApiClient }) {
  return (
    <ReactFlowProvider>
      <Builder {...props} />
    </ReactFlowProvider>
  );
}
