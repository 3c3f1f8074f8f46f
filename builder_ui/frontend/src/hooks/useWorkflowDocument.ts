// The workflow being edited: loading it, its graph state, whether it has unsaved changes, and saving it.

import type { Edge } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useState } from "react";
import { parse as parseYaml } from "yaml";
import { ApiError, type ApiClient, type FieldError, type Workflow } from "../api";
import { fromDefinition, toDefinition, type Graph, type TaskNode, type WorkflowMeta } from "../definition";
import { errorText } from "../errors";
import { layoutNodes } from "../layout";

const NEW_META: WorkflowMeta = { name: "Untitled workflow", triggers: [], extra: {} };

function serialize(nodes: TaskNode[], edges: Edge[], meta: WorkflowMeta): string {
  return JSON.stringify(toDefinition(nodes, edges, meta));
}

/** The API returns an object, but tolerate a definition stored as YAML or JSON text. */
function definitionObject(definition: Workflow["definition"]): unknown {
  return typeof definition === "string" ? parseYaml(definition) : definition;
}

export function useWorkflowDocument(api: ApiClient, workflowId: string | null) {
  const [workflow, setWorkflow] = useState<Workflow | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [nodes, setNodes] = useState<TaskNode[]>([]);
  const [edges, setEdges] = useState<Edge[]>([]);
  const [meta, setMeta] = useState<WorkflowMeta>(NEW_META);
  const [savedSnapshot, setSavedSnapshot] = useState<string>("");
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [conflict, setConflict] = useState(false);
  const [saving, setSaving] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  const applyGraph = useCallback((graph: Graph) => {
    setNodes(layoutNodes(graph.nodes, graph.edges));
    setEdges(graph.edges);
    setMeta(graph.meta);
    setSavedSnapshot(serialize(graph.nodes, graph.edges, graph.meta));
    setLoaded(true);
  }, []);

  const loadWorkflow = useCallback(async () => {
    if (!workflowId) {
      applyGraph({ nodes: [], edges: [], meta: { ...NEW_META } });
      return;
    }
    try {
      const wf = await api.getWorkflow(workflowId);
      const graph = fromDefinition(definitionObject(wf.definition));
      if (!graph.meta.name) graph.meta.name = wf.name;
      setWorkflow(wf);
      setErrors([]);
      setConflict(false);
      applyGraph(graph);
    } catch (err) {
      setLoadError(`Could not load workflow ${workflowId}: ${errorText(err)}`);
    }
  }, [api, applyGraph, workflowId]);

  useEffect(() => {
    void loadWorkflow();
  }, [loadWorkflow]);

  const snapshot = useMemo(() => serialize(nodes, edges, meta), [nodes, edges, meta]);
  const dirty = loaded && snapshot !== savedSnapshot;

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

  const dismissErrors = useCallback(() => {
    setErrors([]);
    setConflict(false);
  }, []);

  return {
    workflow, loaded, loadError, nodes, setNodes, edges, setEdges, meta, setMeta, snapshot, dirty,
    errors, setErrors, conflict, dismissErrors, saving, notice, loadWorkflow, save,
  };
}

export type WorkflowDocument = ReturnType<typeof useWorkflowDocument>;
