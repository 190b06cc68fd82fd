/**
 * Custom React Flow nodes (an op node, a collapsed block, an expanded block) and the shape edge. Memoised;
 * their React Flow data is plain structure (port counts, highlight). What they show comes from the Sync
 * store through `useNodeDoc(id)`, a per-node subscription: an update re-renders only the nodes it changed
 * and the edges touching them. Actions come from EditorContext, never from node data.
 */
import { BaseEdge, getBezierPath, Handle, Position, useStore, type EdgeProps, type NodeProps } from "@xyflow/react";
import { createContext, memo, useCallback, useContext, useSyncExternalStore } from "react";
import { compact } from "../doc";
import { edgeBad, edgeLabel, type FlowEdge, type FlowNode } from "../flow";
import type { Sync } from "../sync";
import type { HighlightStyle, NodeDoc } from "../types";

/** The editor's Sync (stable for the widget's life), for per-node subscriptions. */
export const SyncContext = createContext<Sync | null>(null);

/** Node `id`'s current document entry; re-renders the caller only when what it draws changes. */
export function useNodeDoc(id: string): NodeDoc | undefined {
  const sync = useContext(SyncContext);
  const subscribe = useCallback((fn: () => void) => (sync ? sync.subscribeNode(id, fn) : () => {}), [sync, id]);
  return useSyncExternalStore(subscribe, () => sync?.nodeView(id));
}

export type EditorActions = {
  toggleBlock: (id: string) => void;
  portRefusal: (id: string, port: number) => string | null;
};

export const EditorContext = createContext<EditorActions>({ toggleBlock: () => {}, portRefusal: () => null });

const CSS_PROPS: Record<string, string> = {
  color: "borderColor", background: "background", border: "border", border_color: "borderColor",
  border_width: "borderWidth", opacity: "opacity", outline: "outline", box_shadow: "boxShadow", width: "borderWidth",
};

/** A highlight style -> class name and inline style. */
export function highlightProps(h: HighlightStyle | null): { className: string; style: Record<string, unknown>; label?: string } {
  if (!h) return { className: "", style: {} };
  if (typeof h === "string") return { className: `gb-hl gb-hl-${h}`, style: {} };
  const style: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) {
    const css = CSS_PROPS[k];
    if (!css) continue;
    style[css] = (css === "borderWidth" && typeof v === "number") ? `${v}px` : v;
  }
  if (style.borderColor && !style.boxShadow) style.boxShadow = `0 0 0 2px ${style.borderColor}`;
  return { className: "gb-hl", style, label: typeof h.label === "string" ? h.label : undefined };
}

function Ports({ id, inPorts, outPorts, names, vertical }: { id: string; inPorts: number; outPorts: number; names: string[]; vertical: boolean }) {
  const ctx = useContext(EditorContext);
  const handles = [];
  for (let i = 0; i < inPorts; i++) {
    const at = `${((i + 1) / (inPorts + 1)) * 100}%`;
    const refusal = ctx.portRefusal(id, i);
    handles.push(
      <Handle key={`in-${i}`} id={`in-${i}`} type="target" position={vertical ? Position.Top : Position.Left}
        style={vertical ? { left: at } : { top: at }} title={refusal ?? names[i] ?? (i >= names.length ? "+ another input" : `input ${i}`)}
        className={refusal ? "gb-port-refused" : i >= names.length && names.length > 0 ? "gb-port-extra" : ""} />,
    );
  }
  for (let k = 0; k < outPorts; k++) {
    const at = `${((k + 1) / (outPorts + 1)) * 100}%`;
    handles.push(
      <Handle key={`out-${k}`} id={`out-${k}`} type="source" position={vertical ? Position.Bottom : Position.Right}
        style={vertical ? { left: at } : { top: at }} title={`output ${k}`} />,
    );
  }
  return <>{handles}</>;
}

export const OpNode = memo(function OpNode({ id, data, selected }: NodeProps<FlowNode>) {
  const n = useNodeDoc(id);
  if (!n) return null;
  const hl = highlightProps(data.highlight);
  const cls = ["gb-node", n.error ? "gb-node-error" : "", n.pending ? "gb-node-pending" : "", selected ? "gb-selected" : "",
    `gb-op-${n.op}`, hl.className].join(" ");
  return (
    <div className={cls} style={hl.style} title={n.error ?? `${n.name} (${n.op})`} data-node-name={n.name}>
      <Ports id={id} inPorts={data.inPorts} outPorts={data.outPorts} names={n.inputNames} vertical={data.vertical} />
      <div className="gb-node-name">{n.name}</div>
      <div className="gb-node-op">
        <span>{n.op}</span>
        {n.numParams > 0 && <span className="gb-node-params">{compact(n.numParams)} params</span>}
      </div>
      {n.error && <div className="gb-node-errmark" aria-label="error">!</div>}
      {hl.label && <div className="gb-node-badge">{hl.label}</div>}
    </div>
  );
});

export const BlockNode = memo(function BlockNode({ id, data, selected }: NodeProps<FlowNode>) {
  const n = useNodeDoc(id);
  const ctx = useContext(EditorContext);
  if (!n) return null;
  const hl = highlightProps(data.highlight);
  return (
    <div className={["gb-node", "gb-block", n.error ? "gb-node-error" : "", selected ? "gb-selected" : "", hl.className].join(" ")}
      style={hl.style} title={n.error ?? `block ${n.name}: ${n.inputNames.join(", ")} -> ${data.outPorts} output(s)`} data-node-name={n.name}>
      <Ports id={id} inPorts={data.inPorts} outPorts={data.outPorts} names={n.inputNames} vertical={data.vertical} />
      <div className="gb-node-name">
        <button className="gb-toggle nodrag" title="expand block" onClick={(e) => { e.stopPropagation(); ctx.toggleBlock(id); }}>▸</button>
        {n.name}
      </div>
      <div className="gb-node-op">
        <span>block</span>
        {n.numParams > 0 && <span className="gb-node-params">{compact(n.numParams)} params</span>}
      </div>
      {n.error && <div className="gb-node-errmark">!</div>}
    </div>
  );
});

export const BlockOpenNode = memo(function BlockOpenNode({ id, data, selected }: NodeProps<FlowNode>) {
  const n = useNodeDoc(id);
  const ctx = useContext(EditorContext);
  if (!n) return null;
  return (
    <div className={["gb-block-open", n.error ? "gb-node-error" : "", selected ? "gb-selected" : ""].join(" ")} data-node-name={n.name}
      title={n.error ?? undefined}>
      <Ports id={id} inPorts={data.inPorts} outPorts={data.outPorts} names={n.inputNames} vertical={data.vertical} />
      <div className="gb-block-head">
        <button className="gb-toggle nodrag" title="collapse block" onClick={(e) => { e.stopPropagation(); ctx.toggleBlock(id); }}>▾</button>
        <span className="gb-node-name">{n.name}</span>
        <span className="gb-node-op">block</span>
      </div>
    </div>
  );
});

export const nodeTypes = { op: OpNode, block: BlockNode, blockOpen: BlockOpenNode };

const LABEL_STYLE = { fontSize: 10 };
/** Below this zoom a 10 px label is under 3 px tall: edges drop their labels (each costs a text layout). */
export const LABEL_MIN_ZOOM = 0.3;
const labelsReadable = (s: { transform: [number, number, number] }) => s.transform[2] >= LABEL_MIN_ZOOM;
const LABEL_PAD: [number, number] = [4, 2];

/** An edge labelled with the tensor shape it carries (from its source's entry), red when its target failed. */
export const ShapeEdge = memo(function ShapeEdge(p: EdgeProps<FlowEdge>) {
  const src = useNodeDoc(p.source);
  const dst = useNodeDoc(p.target);
  const readable = useStore(labelsReadable); // a boolean: re-renders only when the zoom crosses the threshold
  const [path, labelX, labelY] = getBezierPath({
    sourceX: p.sourceX, sourceY: p.sourceY, sourcePosition: p.sourcePosition,
    targetX: p.targetX, targetY: p.targetY, targetPosition: p.targetPosition,
  });
  return (
    <g className={edgeBad(src, dst) ? "gb-edge-bad" : undefined}>
      <BaseEdge id={p.id} path={path} labelX={labelX} labelY={labelY} label={readable ? edgeLabel(src, p.data?.port ?? 0, p.data?.styleRef) : undefined}
        labelStyle={LABEL_STYLE} labelBgPadding={LABEL_PAD} labelBgBorderRadius={3} style={p.style} markerEnd={p.markerEnd}
        interactionWidth={p.interactionWidth} />
    </g>
  );
});

export const edgeTypes = { shape: ShapeEdge };
