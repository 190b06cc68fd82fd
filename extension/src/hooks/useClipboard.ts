/**
 * Copy and paste: Python turns the selection into a fragment (`copy`); pasting sends it back as a `paste`
 * patch. The fragment is kept on `window` (so other widgets on the page can paste it) and written to the
 * system clipboard when the browser allows.
 */
import { useCallback } from "react";
import { failure } from "../protocol";
import type { Sync } from "../sync";

declare global {
  interface Window { __graphbuilderClipboard?: unknown }
}

export function useClipboard(sync: Sync, selected: Set<string>, select: (ids: Iterable<string>) => void) {
  const copy = useCallback(async () => {
    const ids = [...selected].filter((id) => sync.view.nodes[id]);
    if (!ids.length) return;
    const msg = await sync.request("copy", { nodes: ids });
    const bad = failure(msg);
    if (bad !== null || msg.kind !== "copied" || !msg.ok) return sync.setNotice({ text: bad ?? "copy failed", kind: "error", nodes: [] });
    window.__graphbuilderClipboard = msg.fragment;
    // Also to the system clipboard, without waiting: a permission prompt may never be answered.
    try { navigator.clipboard?.writeText(JSON.stringify(msg.fragment)).catch(() => {}); } catch { /* no clipboard API */ }
    sync.setNotice({ text: `copied ${ids.length} node(s)`, kind: "info", nodes: [] });
  }, [selected, sync]);

  const paste = useCallback(async () => {
    let fragment = window.__graphbuilderClipboard;
    if (!fragment) {
      try { fragment = JSON.parse((await navigator.clipboard?.readText()) ?? ""); } catch { fragment = undefined; }
    }
    if (!fragment) return sync.setNotice({ text: "nothing to paste: copy nodes first (Ctrl+C)", kind: "info", nodes: [] });
    const r = await sync.patch([{ op: "paste", fragment, offset: [48, 48] }]);
    select(r.created);
  }, [sync, select]);

  return { copy, paste };
}
