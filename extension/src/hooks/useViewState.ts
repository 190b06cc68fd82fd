/**
 * What the user chose to see, kept in the widget's `view` trait so page reloads and other tabs show the
 * same: the viewport, the block opened as its own view, which panels are open, advanced ops shown. Viewport
 * moves are written 300 ms after they end (a pan is many moves).
 */
import { useCallback, useEffect, useRef, useState } from "react";
import type { Doc, ViewState } from "../types";

export type Panels = { palette: boolean; inspector: boolean; minimap: boolean };
const PANELS: Panels = { palette: true, inspector: true, minimap: true };

export function useViewState(saved: ViewState, save: (v: ViewState) => void, doc: Doc) {
  const latest = useRef<ViewState>(saved ?? {});
  const [root, setRootState] = useState<string | null>(saved?.root ?? null);
  const [panels, setPanels] = useState<Panels>({ ...PANELS, ...(saved?.panels ?? {}) });
  const [advanced, setAdvancedState] = useState<boolean>(!!saved?.advanced);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const write = useCallback((change: ViewState) => {
    latest.current = { ...latest.current, ...change };
    save(latest.current);
  }, [save]);

  const setRoot = useCallback((id: string | null) => {
    setRootState(id);
    write({ root: id });
  }, [write]);
  const togglePanel = useCallback((name: keyof Panels) => setPanels((p) => {
    const next = { ...p, [name]: !p[name] };
    write({ panels: next });
    return next;
  }), [write]);
  const setAdvanced = useCallback((on: boolean) => {
    setAdvancedState(on);
    write({ advanced: on });
  }, [write]);
  const saveViewport = useCallback((vp: { x: number; y: number; zoom: number }) => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => write({ x: vp.x, y: vp.y, zoom: vp.zoom }), 300);
  }, [write]);
  useEffect(() => () => { if (timer.current) clearTimeout(timer.current); }, []);

  // A block view whose block went away (undo, a Python edit) falls back to the graph.
  const shownRoot = root !== null && doc.nodes[root]?.isBlock ? root : null;
  return { root: shownRoot, setRoot, panels, togglePanel, advanced, setAdvanced, saveViewport, saved: latest };
}
