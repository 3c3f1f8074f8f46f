// The builder page: a toolbar, the action library, the canvas and the inspector, wired to the hooks that
// hold the workflow document, the graph edits and the run.

import { ReactFlowProvider, useReactFlow, type Edge } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { taskRowsById, type ApiClient } from "./api";
import { suggestionsForTask } from "./completions";
import { connectionOptions, hasConnectionInput } from "./connections";
import type { TaskNode } from "./definition";
import { splitErrors } from "./errors";
import { useActions } from "./hooks/useActions";
import { useGraphEditing } from "./hooks/useGraphEditing";
import { useOnDemand } from "./hooks/useOnDemand";
import { useRunner } from "./hooks/useRunner";
import { useTransientNotice } from "./hooks/useTransientNotice";
import { useWorkflowDocument } from "./hooks/useWorkflowDocument";
import { ViewContext, type ViewState } from "./viewContext";
import { Canvas } from "./components/Canvas";
import { ErrorBanner } from "./components/ErrorBanner";
import { Inspector, type Tab } from "./components/Inspector";
import { Sidebar } from "./components/Sidebar";
import { Toolbar } from "./components/Toolbar";

export interface BuilderConfig {
  workflowId: string | null;
  apiBase: string;
  csrfToken: string;
  adminUrl: string;
  /** The admin's run list; a run's page is `<runsUrl><id>/change/`. */
  runsUrl: string;
}

function Builder({ config, api }: { config: BuilderConfig; api: ApiClient }) {
  const flow = useReactFlow<TaskNode, Edge>();
  const paneRef = useRef<HTMLDivElement>(null);
  const library = useActions(api);
  const doc = useWorkflowDocument(api, config.workflowId);
  const { nodes, edges } = doc;

  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("workflow");
  const select = useCallback((id: string | null) => {
    setSelectedId(id);
    setTab(id ? "task" : "workflow");
  }, []);
  const showRunTab = useCallback(() => setTab("run"), []);

  const cycleNotice = useTransientNotice(doc.snapshot);
  const editing = useGraphEditing({
    flow, paneRef, nodes, edges, setNodes: doc.setNodes, setEdges: doc.setEdges, select, onRefused: cycleNotice.show,
  });
  const runner = useRunner({
    api, workflow: doc.workflow, dirty: doc.dirty, save: doc.save, setErrors: doc.setErrors, showRunTab,
  });

  const nodeIds = useMemo(() => new Set(nodes.map((n) => n.id)), [nodes]);
  const split = useMemo(() => splitErrors(doc.errors, nodeIds), [doc.errors, nodeIds]);
  const taskRuns = useMemo(
    () => taskRowsById(runner.run?.tasks ?? []),
    [runner.run],
  );
  const view: ViewState = useMemo(
    () => ({
      actions: library.byName,
      taskRuns,
      runActive: runner.run !== null,
      nodeErrors: new Map(
        [...split.nodeErrors].map(([id, list]) => [id, list.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message))]),
      ),
    }),
    [library.byName, taskRuns, runner.run, split],
  );

  const selectedNode = nodes.find((n) => n.id === selectedId) ?? null;
  useEffect(() => {
    if (selectedId && !nodeIds.has(selectedId)) setSelectedId(null);
  }, [selectedId, nodeIds]);

  // Secret names and connected accounts are read the first time a task is opened, not on page load.
  const editingTask = tab === "task" && !!selectedNode;
  const secretNames = useOnDemand(api.listSecretNames, editingTask);
  const selectedAction = selectedNode ? library.byName.get(selectedNode.data.action) : undefined;
  const accounts = useOnDemand(api.listConnections, editingTask && hasConnectionInput(selectedAction?.input_schema));

  const suggestions = useMemo(
    () => suggestionsForTask({ nodes, edges }, selectedId, library.byName, secretNames ?? []),
    [selectedId, edges, nodes, library.byName, secretNames],
  );
  const connections = useMemo(
    () => (accounts ? connectionOptions(accounts, selectedAction) : null),
    [accounts, selectedAction],
  );

  const adminHref = doc.workflow ? `${config.adminUrl}${doc.workflow.id}/change/` : config.adminUrl;
  const runHref = useCallback((runId: number) => `${config.runsUrl}${runId}/change/`, [config.runsUrl]);

  return (
    <ViewContext.Provider value={view}>
      <div className="ff-app">
        <Toolbar
          adminHref={adminHref}
          runHref={runHref}
          name={doc.meta.name}
          onNameChange={(name) => doc.setMeta({ ...doc.meta, name })}
          workflow={doc.workflow}
          loaded={doc.loaded}
          dirty={doc.dirty}
          saving={doc.saving}
          notice={doc.notice}
          run={runner.run}
          starting={runner.starting}
          canRun={nodes.length > 0}
          runTitle={runner.payload.trim() ? "Run with the payload from the Run tab" : "Run now"}
          onShowRun={showRunTab}
          onAutoLayout={editing.autoLayout}
          onSave={() => void doc.save()}
          onRun={() => void runner.startRun()}
        />

        <ErrorBanner
          loadError={doc.loadError}
          conflict={doc.conflict}
          general={split.general}
          nodeErrorIds={[...split.nodeErrors.keys()]}
          onReload={() => void doc.loadWorkflow()}
          onOverwrite={() => void doc.save({ overwrite: true })}
          onSelectTask={select}
          onDismiss={doc.dismissErrors}
        />

        <div className="ff-main">
          <Sidebar
            actions={library.actions}
            loading={library.loading}
            error={library.error}
            onAdd={(name) => editing.addNode(name)}
          />

          <Canvas
            paneRef={paneRef}
            loaded={doc.loaded}
            loadError={doc.loadError}
            nodes={nodes}
            edges={edges}
            view={view}
            actionsByName={library.byName}
            cycleError={cycleNotice.message}
            onDismissCycleError={cycleNotice.dismiss}
            initialViewport={() => editing.viewportFor(nodes)}
            onFitView={() => editing.fitToView()}
            onNodesChange={editing.onNodesChange}
            onEdgesChange={editing.onEdgesChange}
            onConnect={editing.onConnect}
            onDragOver={editing.onDragOver}
            onDrop={editing.onDrop}
            onNodeClick={select}
            onPaneClick={() => {
              setSelectedId(null);
              setTab((t) => (t === "task" ? "workflow" : t));
            }}
          />

          <Inspector
            tab={tab}
            onTab={setTab}
            selectedNode={selectedNode}
            actions={library.actions}
            actionsByName={library.byName}
            taskIds={nodes.map((n) => n.id)}
            suggestions={suggestions}
            connections={connections}
            nodeErrors={split.nodeErrors}
            triggerErrors={split.triggerErrors}
            taskRuns={taskRuns}
            onRename={editing.renameNode}
            onChangeTask={editing.updateNodeData}
            onDeleteTask={editing.deleteNode}
            onSelectTask={select}
            meta={doc.meta}
            onMetaChange={doc.setMeta}
            webhookUrl={doc.workflow?.webhook_url}
            saved={!!doc.workflow}
            payload={runner.payload}
            onPayloadChange={runner.setPayload}
            payloadError={runner.payloadError}
            run={runner.run}
            runError={runner.runError}
            runHref={runHref}
          />
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
