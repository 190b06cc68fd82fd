/**
 * Connections as they are drawn: when a drag starts from an output, Python is asked which input ports of
 * the nodes on screen would refuse it (a cycle, a shape the op cannot take: `probe`); ports refuse while
 * the wire is drawn (`isValidConnection`), and the reason shows. Refusals live in a keyed store, so only
 * the nodes with refused ports redraw, not the whole canvas; only the nodes on screen are probed, so the
 * kernel answers fast and the connection that follows is not queued behind a long probe.
 */
import type { Connection, Edge, OnConnectStartParams, ReactFlowInstance } from "@xyflow/react";
import { useCallback, useMemo, useRef, useState } from "react";
import { cycleReason } from "../doc";
import type { FlowEdge, FlowNode } from "../flow";
import { KeyedStore } from "../keyed";
import type { Sync } from "../sync";
import type { PatchOp } from "../types";

export type Refusals = Record<string, string>; // port -> reason
const MAX_PROBED = 400;

export const handleIndex = (h: string | null | undefined) => Number((h ?? "x-0").split("-")[1]);

/** Ids of the nodes whose boxes meet the canvas `box` (screen px), at most `MAX_PROBED`. */
function nodesOnScreen(flow: ReactFlowInstance<FlowNode, FlowEdge>, box: DOMRect): string[] {
  const a = flow.screenToFlowPosition({ x: box.left, y: box.top });
  const b = flow.screenToFlowPosition({ x: box.right, y: box.bottom });
  const out: string[] = [];
  for (const n of flow.getNodes()) {
    const p = flow.getInternalNode(n.id)?.internals.positionAbsolute ?? n.position;
    if (p.x < b.x && p.x + (n.width ?? 0) > a.x && p.y < b.y && p.y + (n.height ?? 0) > a.y) out.push(n.id);
    if (out.length >= MAX_PROBED) break;
  }
  return out;
}

export function useConnectionProbe(sync: Sync, flow: ReactFlowInstance<FlowNode, FlowEdge>, canvas: React.RefObject<HTMLElement>,
  patch: (ops: PatchOp[]) => void) {
  const store = useMemo(() => new KeyedStore<Refusals>(), []);
  const refusals = useRef<Record<string, Refusals>>({});
  const [reason, setReason] = useState<string | null>(null);
  const attempt = useRef(0);

  const setRefusals = useCallback((r: Record<string, Refusals>) => {
    refusals.current = r;
    store.replace(new Map(Object.entries(r)), (a, b) => JSON.stringify(a) === JSON.stringify(b));
  }, [store]);

  const onConnectStart = useCallback((_: unknown, params: OnConnectStartParams) => {
    setRefusals({});
    if (!params.nodeId || params.handleType !== "source") return;
    const mine = ++attempt.current;
    const box = canvas.current?.getBoundingClientRect();
    const nodes = box ? nodesOnScreen(flow, box) : undefined;
    sync.request("probe", { source: [params.nodeId, handleIndex(params.handleId)], ...(nodes ? { nodes } : {}) }).then((msg) => {
      if (mine === attempt.current && msg.kind === "probed") setRefusals(msg.targets ?? {});
    });
  }, [sync, flow, canvas, setRefusals]);

  const refusal = useCallback((c: Connection | Edge): string | null => {
    const view = sync.view;
    const s = view.nodes[c.source];
    const t = view.nodes[c.target];
    if (!s || !t) return "unknown node";
    if (s.parent !== t.parent) return "nodes in different blocks: connect to the block's ports";
    const cyc = cycleReason(view, c.source, c.target);
    if (cyc) return cyc;
    return refusals.current[c.target]?.[String(handleIndex(c.targetHandle))] ?? null;
  }, [sync]);

  const isValidConnection = useCallback((c: Connection | Edge) => {
    const r = refusal(c);
    setReason(r);
    return r === null;
  }, [refusal]);

  const onConnect = useCallback((c: Connection) => {
    setReason(null);
    if (refusal(c)) return;
    patch([{ op: "connect", source: [c.source, handleIndex(c.sourceHandle)], target: [c.target, handleIndex(c.targetHandle)] }]);
  }, [patch, refusal]);

  const onConnectEnd = useCallback(() => {
    attempt.current++;
    setReason((r) => {
      if (r) sync.setNotice({ text: `not connected: ${r}`, kind: "error", nodes: [] });
      return null;
    });
    setRefusals({});
  }, [sync, setRefusals]);

  return { store, reason, onConnectStart, isValidConnection, onConnect, onConnectEnd };
}
