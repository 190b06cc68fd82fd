/**
 * Editing gestures as patches: add an op (from the palette, a drop, the adder), move dragged nodes, delete
 * the selection (nodes and wires), group and ungroup. Each gesture is one patch: one undo step.
 */
import type { Edge, Node, NodeChange, ReactFlowInstance } from "@xyflow/react";
import { useCallback, useState } from "react";
import { freeName, joinId } from "../doc";
import type { FlowEdge, FlowNode } from "../flow";
import { initialParams } from "../forms";
import type { XY } from "../geometry";
import type { Sync } from "../sync";
import type { OpSchema, PatchOp } from "../types";
import { handleIndex } from "./useConnectionProbe";
import type { SelectionApi } from "./useSelection";

/** `edges` holds the edges drawn now (for deleting selected wires). */
export function useEdits(sync: Sync, flow: ReactFlowInstance<FlowNode, FlowEdge>, schemas: Record<string, OpSchema>,
  sel: SelectionApi, root: string | null, canvas: React.RefObject<HTMLElement>, edges: React.RefObject<FlowEdge[]>) {
  const [dragging, setDragging] = useState<Record<string, XY>>({});
  const patch = useCallback((o: PatchOp[]) => sync.patch(o), [sync]);

  /** Add `opName` at `at` (flow coordinates) in the open view, selected. */
  const addOp = useCallback((opName: string, at?: XY) => {
    const schema = schemas[opName];
    if (!schema) return;
    const name = freeName(sync.view, opName, root);
    const position: [number, number] = at ? [at.x, at.y] : [40, 40];
    patch([{ op: "add", opName, name, params: initialParams(schema), position, parent: root }]);
    sel.select([joinId(root, name)]);
  }, [schemas, sync, patch, sel, root]);

  /** A palette double-click: the op near the top middle of the canvas. */
  const addFromPalette = useCallback((op: string) => {
    const box = canvas.current?.getBoundingClientRect();
    addOp(op, flow.screenToFlowPosition({ x: (box?.left ?? 0) + (box?.width ?? 400) / 2, y: (box?.top ?? 0) + 60 }));
  }, [addOp, flow, canvas]);

  /** React Flow's node changes: selection to the selection, drags drawn until they stop. */
  const onNodesChange = useCallback((changes: NodeChange<FlowNode>[]) => {
    sel.onSelectChanges(changes as NodeChange[]);
    const drag: Record<string, XY> = {};
    for (const c of changes) if (c.type === "position" && c.position) drag[c.id] = c.position;
    if (Object.keys(drag).length) setDragging((d) => ({ ...d, ...drag }));
  }, [sel]);

  const onNodeDragStop = useCallback((_: unknown, __: unknown, moved: Node[]) => {
    const positions: Record<string, [number, number]> = {};
    for (const n of moved) positions[n.id] = [Math.round(n.position.x), Math.round(n.position.y)];
    setDragging({});
    if (Object.keys(positions).length) patch([{ op: "move", positions }]);
  }, [patch]);

  const onEdgesDelete = useCallback((gone: Edge[]) => {
    patch(gone.map((e) => ({ op: "disconnect", target: [e.target, handleIndex(e.targetHandle)] }) as PatchOp));
  }, [patch]);

  const removeSelected = useCallback(() => {
    const ids = [...sel.selected].filter((id) => sync.view.nodes[id]);
    const cut = (edges.current ?? []).filter((e) => sel.selectedEdges.has(e.id) && !ids.includes(e.target));
    const ops: PatchOp[] = cut.map((e) => ({ op: "disconnect", target: [e.target, handleIndex(e.targetHandle)] }) as PatchOp);
    if (ids.length) ops.push({ op: "remove", nodes: ids });
    if (ops.length) patch(ops);
    sel.clear();
  }, [sel, sync, patch, edges]);

  const group = useCallback(() => {
    const ids = [...sel.selected];
    if (ids.length) sync.patch([{ op: "group", nodes: ids }]).then((r) => sel.select(r.created.slice(0, 1)));
  }, [sel, sync]);

  const ungroup = useCallback((id?: string) => {
    const target = id ?? [...sel.selected].find((s) => sync.view.nodes[s]?.isBlock);
    if (target) sync.patch([{ op: "ungroup", node: target }]).then((r) => sel.select(r.created));
  }, [sel, sync]);

  return { patch, dragging, addOp, addFromPalette, onNodesChange, onNodeDragStop, onEdgesDelete, removeSelected, group, ungroup };
}
