/**
 * Node positions: automatic positions for nodes that have none, hierarchical Layout, expanding and collapsing
 * blocks with room made for them (hierarchy.ts does the geometry; this hook runs it and sends the moves).
 *
 * Positions live in node meta. Automatic ones (first display, nodes added by Python, passes and searches)
 * are sent as a `move` patch that is not an undo step; expand, collapse and Layout are one undo step each,
 * their moves in the same patch as the change.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { applyOps } from "../doc";
import { visibleNodes } from "../flow";
import { isExpanded, positionOf, type XY } from "../geometry";
import {
  arrange, boxOf, layoutLevels, levelGraph, levels, offsetOf, rearrange, shownLevels, sizesOf, type LevelLayout, type PositionOf,
} from "../hierarchy";
import { layout, QUICK_ABOVE, quickLayout, type Direction, type ElkFactory } from "../layout";
import type { Sync } from "../sync";
import type { Doc, OpSchema, PatchOp } from "../types";

/** Quick-layout positions for big levels (over `QUICK_ABOVE` nodes) where no node has a position, so a
 * 1,000-node graph is drawn once, in place, before ELK could answer. */
function quickPositions(doc: Doc, root: string | null, dir: Direction): Record<string, XY> {
  const out: Record<string, XY> = {};
  const index = levels(doc);
  const shown = new Set(visibleNodes(doc, root).map((n) => n.id));
  for (const [level, nodes] of index) {
    const here = nodes.filter((n) => shown.has(n.id));
    if (here.length <= QUICK_ABOVE || here.some((n) => positionOf(n, {}))) continue;
    const { boxes, wires } = levelGraph(here, new Map(here.map((n) => [n.id, boxOf(n)])));
    const start = offsetOf(level);
    for (const [id, p] of Object.entries(quickLayout(boxes, wires, dir))) out[id] = { x: p.x + start.x, y: p.y + start.y };
  }
  return out;
}

export type LayoutApi = {
  /** Positions computed here and not yet in the document (drawn meanwhile). */
  auto: Record<string, XY>;
  /** Every shown node has a position. */
  ready: boolean;
  /** Lay out the view again in direction `d` (one undo step). */
  runLayout: (d: Direction) => Promise<void>;
  /** Expand (true) or collapse (false) blocks, making room (one undo step). */
  setExpanded: (changes: Map<string, boolean>) => Promise<void>;
  toggleBlock: (id: string) => void;
  /** Expand the blocks of the view down to `depth` levels and collapse deeper ones (0: collapse all). */
  expandTo: (depth: number) => Promise<void>;
};

export function useLayout(sync: Sync, doc: Doc, root: string | null, direction: Direction, elk: ElkFactory,
  schemas: Record<string, OpSchema>): LayoutApi {
  const [auto, setAuto] = useState<Record<string, XY>>(() => quickPositions(sync.view, root, direction));
  const [ready, setReady] = useState(false);
  const busy = useRef(false);
  const autoRef = useRef(auto);
  autoRef.current = auto;

  const engine: LevelLayout = useMemo(() => (boxes, wires, d) => (boxes.length > QUICK_ABOVE
    ? Promise.resolve(quickLayout(boxes, wires, d)) : layout(boxes, wires, d, elk)), [elk]);
  const posIn = useCallback((d: Doc): PositionOf => (id) => {
    const n = d.nodes[id];
    return n ? positionOf(n, autoRef.current) : undefined;
  }, []);

  // Nodes without a position (first display, Python edits, passes): placed, and their blocks' siblings moved.
  useEffect(() => {
    if (busy.current) return;
    const missing = visibleNodes(doc, root).some((n) => !positionOf(n, auto));
    if (!missing) {
      if (!ready) setReady(true);
      return;
    }
    busy.current = true;
    (async () => {
      const found = await arrange(doc, doc, root, direction, engine, posIn(doc));
      busy.current = false;
      setAuto((a) => ({ ...a, ...found }));
      const positions: Record<string, [number, number]> = {};
      for (const [id, p] of Object.entries(found)) if (sync.view.nodes[id] && !sync.view.nodes[id].pending) positions[id] = [p.x, p.y];
      if (Object.keys(positions).length) sync.patch([{ op: "move", positions }], false); // kept, not an undo step
    })();
  }, [doc, auto, root, direction, ready, sync, engine, posIn]);

  useEffect(() => { // positions made before the first render are kept in node meta too (not an undo step)
    const initial = Object.entries(autoRef.current).filter(([id]) => !sync.view.nodes[id]?.meta?.position);
    if (!initial.length) return;
    const timer = setTimeout(() => {
      const positions: Record<string, [number, number]> = {};
      for (const [id, p] of initial) if (sync.view.nodes[id] && !sync.view.nodes[id].meta?.position) positions[id] = [p.x, p.y];
      if (Object.keys(positions).length) sync.patch([{ op: "move", positions }], false);
    }, 0);
    return () => clearTimeout(timer);
  }, [sync]);

  const runLayout = useCallback(async (d: Direction) => {
    const view = sync.view;
    const index = levels(view);
    const before = sizesOf(view, root, posIn(view), index);
    const laid = await layoutLevels(view, root, d, engine, posIn(view), () => true, index);
    // A block laid out in its own view may be drawn open in the graph's view: make room for it there too.
    const moved = rearrange(view, root, (id) => laid[id] ?? posIn(view)(id), before, d, index, new Set(shownLevels(view, root, index)));
    const positions: Record<string, [number, number]> = {};
    for (const [id, p] of Object.entries({ ...laid, ...moved })) positions[id] = [p.x, p.y];
    await sync.patch([{ op: "move", positions }]);
  }, [sync, root, engine, posIn]);

  const setExpanded = useCallback(async (changes: Map<string, boolean>) => {
    const before = sync.view;
    const ops: PatchOp[] = [...changes]
      .filter(([id, open]) => before.nodes[id]?.isBlock && isExpanded(before.nodes[id]) !== open)
      .map(([id, open]) => ({ op: "meta", node: id, meta: { expanded: open ? true : null } }));
    if (!ops.length) return;
    const after = applyOps(before, ops, schemas);
    const found = await arrange(before, after, root, direction, engine, posIn(before));
    const positions: Record<string, [number, number]> = {};
    for (const [id, p] of Object.entries(found)) positions[id] = [p.x, p.y];
    await sync.patch(Object.keys(positions).length ? [...ops, { op: "move", positions }] : ops);
  }, [sync, root, direction, engine, schemas, posIn]);

  const toggleBlock = useCallback((id: string) => {
    const n = sync.view.nodes[id];
    if (n?.isBlock) setExpanded(new Map([[id, !isExpanded(n)]]));
  }, [sync, setExpanded]);

  const expandTo = useCallback(async (depth: number) => {
    const view = sync.view;
    const index = levels(view);
    const changes = new Map<string, boolean>();
    const walk = (level: string | null, d: number) => {
      for (const n of index.get(level) ?? []) {
        if (!n.isBlock) continue;
        changes.set(n.id, d < depth);
        walk(n.id, d + 1);
      }
    };
    walk(root, 0);
    await setExpanded(changes);
  }, [sync, root, setExpanded]);

  return { auto, ready, runLayout, setExpanded, toggleBlock, expandTo };
}
