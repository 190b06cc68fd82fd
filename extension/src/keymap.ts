/**
 * The editor's keyboard shortcuts as one table (pure; test/keymap.test.ts). `Mod` is Ctrl, or Cmd on a Mac.
 * Keys typed into a text field stay with the field. Bare modifier presses go on to React Flow (Shift draws a
 * selection box, Ctrl adds to the selection).
 */
export type Action =
  | "undo" | "redo" | "copy" | "paste" | "group" | "ungroup" | "selectAll" | "delete" | "escape"
  | "fitSelection" | "fitAll" | "find" | "layout" | "openBlock" | "closeBlock";

export type Binding = { keys: string; action: Action; doc: string };

export const KEYMAP: Binding[] = [
  { keys: "Mod+Shift+Z", action: "redo", doc: "redo" },
  { keys: "Mod+Z", action: "undo", doc: "undo" },
  { keys: "Mod+Y", action: "redo", doc: "redo" },
  { keys: "Mod+C", action: "copy", doc: "copy the selection (also to other widgets)" },
  { keys: "Mod+V", action: "paste", doc: "paste" },
  { keys: "Mod+Shift+G", action: "ungroup", doc: "ungroup the selected block" },
  { keys: "Mod+G", action: "group", doc: "group the selection into a block" },
  { keys: "Mod+A", action: "selectAll", doc: "select every node in view" },
  { keys: "Delete", action: "delete", doc: "delete the selection" },
  { keys: "Backspace", action: "delete", doc: "delete the selection" },
  { keys: "Escape", action: "escape", doc: "clear the selection, close the adder" },
  { keys: "F", action: "fitSelection", doc: "zoom to the selection" },
  { keys: "Shift+F", action: "fitAll", doc: "fit the whole graph in view" },
  { keys: "Mod+F", action: "find", doc: "find a node by name" },
  { keys: "/", action: "find", doc: "find a node by name" },
  { keys: "L", action: "layout", doc: "lay the graph out again" },
  { keys: "Enter", action: "openBlock", doc: "open the selected block as its own view" },
  { keys: "Mod+ArrowUp", action: "closeBlock", doc: "back to the enclosing view" },
];

export type KeyLike = { key: string; ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; altKey: boolean };

/** "Mod+Shift+Z" for Ctrl+Shift+z (letters upper case; Shift is kept only where it is not the character). */
export function keyOf(e: KeyLike): string {
  const key = e.key.length === 1 ? e.key.toUpperCase() : e.key;
  const parts: string[] = [];
  if (e.ctrlKey || e.metaKey) parts.push("Mod");
  if (e.altKey) parts.push("Alt");
  if (e.shiftKey && (e.key.length !== 1 || /[a-z]/i.test(e.key))) parts.push("Shift");
  parts.push(key);
  return parts.join("+");
}

/** The action bound to the key of `e`, or null. */
export function actionFor(e: KeyLike, map: Binding[] = KEYMAP): Action | null {
  const k = keyOf(e);
  return map.find((b) => b.keys === k)?.action ?? null;
}
