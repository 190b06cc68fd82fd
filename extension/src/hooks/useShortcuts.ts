/**
 * Keyboard shortcuts: one handler per action of the keymap table (keymap.ts). Keys typed into fields stay
 * there; every key pressed in the editor stays out of JupyterLab's notebook shortcuts.
 */
import { useCallback } from "react";
import { actionFor, type Action } from "../keymap";

export function useShortcuts(handlers: Partial<Record<Action, () => void>>) {
  return useCallback((e: React.KeyboardEvent) => {
    // Bare modifier keys go on to React Flow's document listeners (Shift: box select, Ctrl: multi-select).
    if (e.key === "Shift" || e.key === "Control" || e.key === "Meta" || e.key === "Alt") return;
    const t = e.target as HTMLElement;
    const typing = t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT";
    const action = typing ? null : actionFor(e);
    const run = action ? handlers[action] : undefined;
    e.stopPropagation(); // keep JupyterLab's notebook shortcuts out of the canvas
    if (run) {
      e.preventDefault();
      run();
    }
  }, [handlers]);
}
