/**
 * Fix-its for the selected failing node: Python's `fixits` answer (graphbuilder/passes/fixits.py: candidate
 * edits tried on copies of the graph, only those that make it fit) for the node's root error, asked again
 * when that error changes; `apply` runs one as an undo step.
 */
import { useCallback, useEffect, useState } from "react";
import { failure, type FixJson } from "../protocol";
import type { Sync } from "../sync";

export type Fixits = { node: string; root: string | null; fixes: FixJson[]; loading: boolean };

export function useFixits(sync: Sync, node: string | null, error: string | null) {
  const [state, setState] = useState<Fixits | null>(null);
  useEffect(() => {
    if (!node || !error) {
      setState(null);
      return;
    }
    let live = true;
    setState({ node, root: null, fixes: [], loading: true });
    sync.request("fixits", { node }).then((msg) => {
      if (!live) return;
      const ok = msg.kind === "fixits" && msg.ok;
      setState({ node, root: ok ? msg.root : null, fixes: ok ? msg.fixes : [], loading: false });
    });
    return () => { live = false; };
  }, [sync, node, error]);

  const apply = useCallback(async (fix: FixJson) => {
    const reply = await sync.request("apply_fix", { fix });
    const bad = failure(reply);
    if (bad) sync.setNotice({ text: `fix not applied: ${bad}`, kind: "error", nodes: [] });
  }, [sync]);

  return { fixits: state, apply };
}
