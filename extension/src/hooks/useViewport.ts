/**
 * The viewport: the first view (the saved one, or `defaultViewport`: legible names, the graph's start in
 * view), set only once the canvas has a size (a page reloading in a background tab has none yet, and fitting
 * then used to leave zoom at its 0.05 floor), kept in the `view` trait as it moves; centring on a node,
 * zooming to the selection or to everything.
 */
import type { ReactFlowInstance, Viewport } from "@xyflow/react";
import { useCallback, useEffect, useRef, useState } from "react";
import type { FlowEdge, FlowNode } from "../flow";
import type { Direction } from "../layout";
import type { Doc } from "../types";
import { boundsOf, defaultViewport, READABLE_ZOOM, usableViewport } from "../viewport";

export function useViewport(flow: ReactFlowInstance<FlowNode, FlowEdge>, canvas: React.RefObject<HTMLElement>, ready: boolean,
  nodes: FlowNode[], doc: Doc, direction: Direction, saved: unknown, onSave: (vp: Viewport) => void) {
  const [shown, setShown] = useState(false);
  const first = useRef(usableViewport(saved));
  const latest = useRef({ nodes, doc, direction });
  latest.current = { nodes, doc, direction };

  const size = () => {
    const box = canvas.current?.getBoundingClientRect();
    return box && box.width > 10 && box.height > 10 ? box : null;
  };

  /** The default view of what is drawn now (false when the canvas has no size yet). */
  const showDefault = useCallback((): boolean => {
    const box = size();
    if (!box) return false;
    const { nodes: all, doc: d, direction: dir } = latest.current;
    const top = all.filter((n) => !n.parentId);
    const rect = (n: FlowNode) => ({ x: n.position.x, y: n.position.y, width: n.width ?? 0, height: n.height ?? 0 });
    const inputs = top.filter((n) => d.nodes[n.id]?.op === "input");
    const vp = defaultViewport(boundsOf(top.map(rect)), boundsOf((inputs.length ? inputs : top.slice(0, 1)).map(rect)), box, dir);
    flow.setViewport(vp, { duration: 0 });
    onSave(vp);
    return true;
  }, [flow, canvas, onSave]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => { // the first view, once laid out and the canvas has a size
    if (!ready || shown) return;
    const show = () => {
      if (!size()) return false;
      if (first.current) flow.setViewport(first.current, { duration: 0 });
      else showDefault();
      // data-gb-ready waits for React Flow to apply it (next frame).
      requestAnimationFrame(() => setShown(true));
      return true;
    };
    if (show()) return;
    const el = canvas.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const watch = new ResizeObserver(() => { if (show()) watch.disconnect(); });
    watch.observe(el);
    return () => watch.disconnect();
  }, [ready, shown, flow, canvas, showDefault]); // eslint-disable-line react-hooks/exhaustive-deps

  /** Centre node `id` in the upper part of the canvas (the notice about it shows below), at a readable zoom. */
  const centreOn = useCallback((id: string) => {
    const n = flow.getInternalNode(id);
    const box = size();
    if (!n || !box) return false;
    const p = n.internals.positionAbsolute;
    const zoom = Math.max(flow.getZoom(), READABLE_ZOOM);
    flow.setCenter(p.x + (n.width ?? 0) / 2, p.y + (n.height ?? 0) / 2 + (box.height * 0.15) / zoom, { zoom, duration: 0 });
    return true;
  }, [flow]); // eslint-disable-line react-hooks/exhaustive-deps

  const fitNodes = useCallback((ids: string[]) => {
    if (ids.length) flow.fitView({ nodes: ids.map((id) => ({ id })), padding: 0.25, maxZoom: 1.5, duration: 200 });
  }, [flow]);

  const fitAll = useCallback(() => flow.fitView({ padding: 0.1, duration: 200 }), [flow]);

  const onMoveEnd = useCallback((_: unknown, vp: Viewport) => onSave(vp), [onSave]);

  return { shown, showDefault, centreOn, fitNodes, fitAll, onMoveEnd };
}
