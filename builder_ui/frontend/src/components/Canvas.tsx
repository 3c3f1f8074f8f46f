import {
  Background,
  BackgroundVariant,
  ControlButton,
  Controls,
  MarkerType,
  MiniMap,
  ReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import { useMemo, useState, type DragEvent, type RefObject } from "react";
import type { ActionInfo } from "../api";
import type { TaskData, TaskNode } from "../definition";
import { familyStyle } from "../families";
import type { Viewport } from "../viewport";
import { nodeStatus, type ViewState } from "../viewContext";
import { DeletableEdge } from "./DeletableEdge";
import { TaskNodeView } from "./TaskNodeView";

const nodeTypes = { task: TaskNodeView };
const edgeTypes = { deletable: DeletableEdge };
const EDGE_MARKER = { type: MarkerType.ArrowClosed, width: 16, height: 16 };

interface Props {
  paneRef: RefObject<HTMLDivElement | null>;
  loaded: boolean;
  loadError: string | null;
  nodes: TaskNode[];
  edges: Edge[];
  view: ViewState;
  actionsByName: Map<string, ActionInfo>;
  cycleError: string | null;
  onDismissCycleError: () => void;
  /** The first viewport: the loaded graph fitted readably (computed once, when the canvas appears). */
  initialViewport: () => Viewport;
  onFitView: () => void;
  onNodesChange: (changes: NodeChange<TaskNode>[]) => void;
  onEdgesChange: (changes: EdgeChange[]) => void;
  onConnect: (connection: Connection) => void;
  onDragOver: (event: DragEvent) => void;
  onDrop: (event: DragEvent) => void;
  onNodeClick: (id: string) => void;
  onPaneClick: () => void;
}

function FitIcon() {
  return (
    <svg viewBox="0 0 32 30" aria-hidden>
      <path d="M3.692 4.63c0-.53.4-.938.939-.938h5.215V0H4.708C2.13 0 0 2.054 0 4.63v5.216h3.692V4.631zM27.354 0h-5.2v3.692h5.17c.53 0 .984.4.984.939v5.215H32V4.631A4.624 4.624 0 0027.354 0zm.954 24.83c0 .532-.4.94-.939.94h-5.215v3.768h5.215c2.577 0 4.631-2.13 4.631-4.707v-5.139h-3.692v5.139zm-23.677.94c-.531 0-.939-.4-.939-.94v-5.138H0v5.139c0 2.577 2.13 4.707 4.708 4.707h5.138V25.77H4.631z" />
    </svg>
  );
}

export function Canvas(props: Props) {
  const { nodes, loaded, cycleError } = props;
  return (
    <div className="ff-canvas" ref={props.paneRef} onDragOver={props.onDragOver} onDrop={props.onDrop} data-testid="canvas">
      {cycleError && (
        <div className="ff-toast ff-toast-error" role="alert" data-testid="cycle-error">
          <span>{cycleError}</span>
          <button type="button" className="ff-icon-btn" aria-label="Dismiss" onClick={props.onDismissCycleError}>
            ×
          </button>
        </div>
      )}
      {loaded ? <Flow {...props} /> : !props.loadError && <div className="ff-loading">Loading workflow…</div>}
      {loaded && nodes.length === 0 && (
        <div className="ff-empty">
          <div className="ff-empty-title">Start with an action</div>
          <div>Drag one from the library on the left, or double-click it.</div>
        </div>
      )}
    </div>
  );
}

/** Mounted once the workflow is loaded, so its first viewport fits the loaded graph. */
function Flow(props: Props) {
  const { nodes, edges, view, actionsByName } = props;
  const [defaultViewport] = useState(props.initialViewport);
  const displayNodes = useMemo(
    () =>
      nodes.map((n) => ({
        ...n,
        domAttributes: { "data-status": nodeStatus(view, n.id) } as TaskNode["domAttributes"],
      })),
    [nodes, view],
  );
  const displayEdges = useMemo(() => edges.map((e) => ({ ...e, type: "deletable", markerEnd: EDGE_MARKER })), [edges]);

  return (
    <ReactFlow<TaskNode, Edge>
      nodes={displayNodes}
      edges={displayEdges}
      nodeTypes={nodeTypes}
      edgeTypes={edgeTypes}
      onNodesChange={props.onNodesChange}
      onEdgesChange={props.onEdgesChange}
      onConnect={props.onConnect}
      onNodeClick={(_, node) => props.onNodeClick(node.id)}
      onPaneClick={props.onPaneClick}
      deleteKeyCode={["Backspace", "Delete"]}
      defaultViewport={defaultViewport}
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
      <Controls showInteractive={false} showFitView={false}>
        <ControlButton onClick={props.onFitView} title="fit view" aria-label="fit view" data-testid="fit-view">
          <FitIcon />
        </ControlButton>
      </Controls>
    </ReactFlow>
  );
}
