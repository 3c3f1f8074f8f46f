// Editing the graph on the canvas: connect (refusing cycles), add or drop nodes, rename, delete, lay out, fit.

import {
  applyEdgeChanges,
  applyNodeChanges,
  type Connection,
  type Edge,
  type EdgeChange,
  type NodeChange,
  type ReactFlowInstance,
} from "@xyflow/react";
import { useCallback, type DragEvent, type Dispatch, type RefObject, type SetStateAction } from "react";
import { makeEdge, slugify, uniqueId, type TaskData, type TaskNode } from "../definition";
import { DRAG_MIME } from "../components/Sidebar";
import { cycleCreatedBy } from "../graph";
import { NODE_HEIGHT, NODE_WIDTH, freePosition, layoutNodes } from "../layout";
import { boundsOf, fitViewport, screenToFlow, topLeftCenteredOn, type Point, type Rect, type Viewport } from "../viewport";

interface Options {
  flow: ReactFlowInstance<TaskNode, Edge>;
  /** The element React Flow fills (its pane has the same box). */
  paneRef: RefObject<HTMLDivElement | null>;
  nodes: TaskNode[];
  edges: Edge[];
  setNodes: Dispatch<SetStateAction<TaskNode[]>>;
  setEdges: Dispatch<SetStateAction<Edge[]>>;
  /** Select a task (null: none) and show the given inspector tab. */
  select: (id: string | null) => void;
  onRefused: (message: string) => void;
}

function boxOf(node: TaskNode): Rect {
  return {
    ...node.position,
    width: node.measured?.width ?? NODE_WIDTH,
    height: node.measured?.height ?? NODE_HEIGHT,
  };
}

/** The size a new node will have: that of a node already drawn, else the layout's default. */
function newNodeSize(nodes: TaskNode[]) {
  const drawn = nodes.find((n) => n.measured?.width && n.measured?.height);
  return { width: drawn?.measured?.width ?? NODE_WIDTH, height: drawn?.measured?.height ?? NODE_HEIGHT };
}

export function useGraphEditing({ flow, paneRef, nodes, edges, setNodes, setEdges, select, onRefused }: Options) {
  const paneBox = useCallback(() => paneRef.current?.getBoundingClientRect() ?? null, [paneRef]);

  /** The viewport that shows `shown` readably in the pane (see viewport.ts). */
  const viewportFor = useCallback(
    (shown: TaskNode[]): Viewport => {
      const pane = paneBox();
      return fitViewport(boundsOf(shown.map(boxOf)), { width: pane?.width ?? 0, height: pane?.height ?? 0 });
    },
    [paneBox],
  );

  const fitToView = useCallback(
    (shown: TaskNode[] = flow.getNodes(), duration = 250) => void flow.setViewport(viewportFor(shown), { duration }),
    [flow, viewportFor],
  );

  const onNodesChange = useCallback(
    (changes: NodeChange<TaskNode>[]) => setNodes((ns) => applyNodeChanges(changes, ns)),
    [setNodes],
  );
  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => setEdges((es) => applyEdgeChanges(changes, es)),
    [setEdges],
  );

  const onConnect = useCallback(
    (connection: Connection) => {
      const { source, target } = connection;
      if (!source || !target) return;
      if (edges.some((e) => e.source === source && e.target === target)) return;
      const cycle = cycleCreatedBy(edges, source, target);
      if (cycle) {
        onRefused(
          source === target
            ? `A task cannot depend on itself (${source}).`
            : `Cannot make ${target} depend on ${source}: that would create the cycle ${cycle.join(" → ")}.`,
        );
        return;
      }
      setEdges((es) => [...es, makeEdge(source, target)]);
    },
    [edges, onRefused, setEdges],
  );

  /** Add a node centred on `at` (flow coordinates), else on a free spot near the middle of the view. */
  const addNode = useCallback(
    (actionName: string, at?: Point) => {
      const size = newNodeSize(nodes);
      const pane = paneBox();
      let position: Point;
      if (at) {
        position = topLeftCenteredOn(at, size);
      } else {
        const middle = pane
          ? flow.screenToFlowPosition({ x: pane.left + pane.width / 2, y: pane.top + pane.height / 2 })
          : { x: 0, y: 0 };
        position = freePosition(middle, nodes);
      }
      const id = uniqueId(slugify(actionName), nodes.map((n) => n.id));
      const node: TaskNode = { id, type: "task", position, data: { action: actionName, inputs: {} }, selected: true };
      setNodes((ns) => [...ns.map((n) => (n.selected ? { ...n, selected: false } : n)), node]);
      select(id);
      // A node placed on a free spot outside the visible area: pan to it, keeping the zoom (a drop is in view).
      if (!at && pane) {
        const topLeft = flow.flowToScreenPosition(position);
        const bottomRight = flow.flowToScreenPosition({ x: position.x + size.width, y: position.y + size.height });
        if (topLeft.x < pane.left || topLeft.y < pane.top || bottomRight.x > pane.right || bottomRight.y > pane.bottom) {
          const { zoom } = flow.getViewport();
          void flow.setCenter(position.x + size.width / 2, position.y + size.height / 2, { zoom, duration: 200 });
        }
      }
    },
    [flow, nodes, paneBox, select, setNodes],
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
      const pane = paneBox();
      if (!name || !pane) return;
      event.preventDefault();
      addNode(name, screenToFlow({ x: event.clientX, y: event.clientY }, { x: pane.left, y: pane.top }, flow.getViewport()));
    },
    [addNode, flow, paneBox],
  );

  const renameNode = useCallback(
    (oldId: string, newId: string) => {
      setNodes((ns) => ns.map((n) => (n.id === oldId ? { ...n, id: newId } : n)));
      setEdges((es) =>
        es.map((e) => {
          if (e.source !== oldId && e.target !== oldId) return e;
          const source = e.source === oldId ? newId : e.source;
          const target = e.target === oldId ? newId : e.target;
          return { ...makeEdge(source, target), selected: e.selected };
        }),
      );
      select(newId);
    },
    [select, setEdges, setNodes],
  );

  const updateNodeData = useCallback(
    (id: string, data: TaskData) => setNodes((ns) => ns.map((n) => (n.id === id ? { ...n, data } : n))),
    [setNodes],
  );

  const deleteNode = useCallback(
    (id: string) => {
      setNodes((ns) => ns.filter((n) => n.id !== id));
      setEdges((es) => es.filter((e) => e.source !== id && e.target !== id));
      select(null);
    },
    [select, setEdges, setNodes],
  );

  const autoLayout = useCallback(() => {
    const laidOut = layoutNodes(nodes, edges);
    setNodes(laidOut);
    fitToView(laidOut);
  }, [edges, fitToView, nodes, setNodes]);

  return {
    onNodesChange, onEdgesChange, onConnect, addNode, onDragOver, onDrop, renameNode, updateNodeData, deleteNode,
    autoLayout, fitToView, viewportFor,
  };
}
