/**
 * The selection: selected nodes and edges (UI state, never sent to Python), React Flow's select changes
 * applied to it, and nodes that went away (undo, Python edits) dropped from it.
 */
import type { EdgeChange, NodeChange } from "@xyflow/react";
import { useCallback, useEffect, useState } from "react";
import type { Doc } from "../types";

export type SelectionApi = {
  selected: Set<string>;
  selectedEdges: Set<string>;
  select: (ids: Iterable<string>) => void;
  clear: () => void;
  /** React Flow's node select changes (position changes are the layout's). */
  onSelectChanges: (changes: NodeChange[]) => void;
  onEdgesChange: (changes: EdgeChange[]) => void;
};

/** `current` with React Flow's select changes applied (a new set), or null when there are none. */
function selectChanges(current: Set<string>, changes: (NodeChange | EdgeChange)[]): Set<string> | null {
  let next: Set<string> | null = null;
  for (const c of changes) {
    if (c.type !== "select") continue;
    next = next ?? new Set(current);
    if (c.selected) next.add(c.id);
    else next.delete(c.id);
  }
  return next;
}

export function useSelection(doc: Doc): SelectionApi {
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());

  useEffect(() => { // nodes that went (undo, Python edits) leave the selection
    if ([...selected].some((id) => !doc.nodes[id])) setSelected(new Set([...selected].filter((id) => doc.nodes[id])));
  }, [doc, selected]);

  const select = useCallback((ids: Iterable<string>) => setSelected(new Set(ids)), []);
  const clear = useCallback(() => {
    setSelected(new Set());
    setSelectedEdges(new Set());
  }, []);

  const onSelectChanges = useCallback((changes: NodeChange[]) => {
    const next = selectChanges(selected, changes);
    if (next) setSelected(next);
  }, [selected]);

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    const next = selectChanges(selectedEdges, changes);
    if (next) setSelectedEdges(next);
  }, [selectedEdges]);

  return { selected, selectedEdges, select, clear, onSelectChanges, onEdgesChange };
}
