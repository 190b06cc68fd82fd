/**
 * Exports: the canvas as SVG or PNG (html-to-image, the whole graph at up to 4096 px), the network as Python
 * source (Python's `export_python`, shown in a dialog).
 */
import { getNodesBounds, getViewportForBounds, type ReactFlowInstance } from "@xyflow/react";
import { toPng, toSvg } from "html-to-image";
import { useCallback, useState } from "react";
import { download } from "../components/dialogs";
import type { FlowEdge, FlowNode } from "../flow";
import { failure } from "../protocol";
import type { Sync } from "../sync";

export function useExports(sync: Sync, flow: ReactFlowInstance<FlowNode, FlowEdge>, rootEl: React.RefObject<HTMLElement>, dark: boolean) {
  const [python, setPython] = useState<string | null>(null);

  const exportImage = useCallback(async (kind: "svg" | "png") => {
    const el = rootEl.current?.querySelector(".react-flow__viewport") as HTMLElement | null;
    if (!el) return;
    const bounds = getNodesBounds(flow.getNodes());
    const w = Math.min(4096, Math.max(200, bounds.width + 80));
    const h = Math.min(4096, Math.max(200, bounds.height + 80));
    const v = getViewportForBounds(bounds, w, h, 0.05, 2, 0.05);
    const opts = { backgroundColor: dark ? "#17191d" : "#fff", width: w, height: h,
      style: { width: `${w}px`, height: `${h}px`, transform: `translate(${v.x}px, ${v.y}px) scale(${v.zoom})` } };
    const url = kind === "svg" ? await toSvg(el, opts) : await toPng(el, opts);
    if (rootEl.current) rootEl.current.dataset.gbExport = url.slice(0, 32);
    download(url, `${sync.view.graph.name}.${kind}`);
  }, [flow, dark, sync, rootEl]);

  const exportPython = useCallback(async () => {
    const msg = await sync.request("export_python");
    if (msg.kind !== "exported" || !msg.ok) return sync.setNotice({ text: failure(msg) ?? "export failed", kind: "error", nodes: [] });
    setPython(msg.source);
  }, [sync]);

  return { python, closePython: () => setPython(null), exportImage, exportPython };
}
