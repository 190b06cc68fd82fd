/**
 * Custom React Flow nodes (an op node, a collapsed block, an expanded block) and the shape edge. Memoised;
 * their React Flow data is plain structure (port counts, highlight). What they show comes from stores,
 * per node id: the document entry (`useNodeDoc`), the node's error role (errors.ts) and, while a wire is
 * drawn, its refused ports. So an update re-renders only the nodes it changed and the edges touching them.
 * Actions come from EditorContext, never from node data.
 */
import { BaseEdge, getBezierPath, Handle, Position, useStore, type EdgeProps, type NodeProps } from "@xyflow/react";
import { createContext, memo, useCallback, useContext, useSyncExternalStore } from "react";
import { BLOCK_COLOUR } from "../categories";
import { compact } from "../doc";
import type { ErrorRole } from "../errors";
import { edgeBad, edgeLabel, type FlowEdge, type FlowNode } from "../flow";
import { LABEL_MIN_ZOOM, labelAnchor, labelledPorts, portOffset } from "../geometry";
import { KeyedStore } from "../keyed";
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
  openBlock: (id: string) => void;
  /** Refused input ports by node id, while a connection is drawn (port index -> reason). */
  refusals: KeyedStore<Record<string, string>>;
  /** Error roles by node id (errors.ts). */
  roles: KeyedStore<ErrorRole>;
  /** An op's category colour. */
  colourOf: (op: string) => string;
  /** A node's name for messages ("waiting on ..."), by id. */
  nameOf: (id: string) => string;
};

export const EditorContext = createContext<EditorActions>({
  toggleBlock: () => {}, openBlock: () => {}, refusals: new KeyedStore(), roles: new KeyedStore(), colourOf: () => "#bdbdbd",
  nameOf: (id) => id,
});

function useKeyed<V>(store: KeyedStore<V>, id: string): V | undefined {
  const subscribe = useCallback((fn: () => void) => store.subscribe(id, fn), [store, id]);
  return useSyncExternalStore(subscribe, () => store.get(id));
}

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

type PortsProps = { id: string; inPorts: number; outPorts: number; names: string[]; vertical: boolean; labelled: boolean; border: number };

function Ports({ id, inPorts, outPorts, names, vertical, labelled, border }: PortsProps) {
  const ctx = useContext(EditorContext);
  const refused = useKeyed(ctx.refusals, id);
  const handles = [];
  const at = (k: number, count: number, row: boolean) => (row
    ? `${portOffset(k, count, 0, border, true) - border}px` : `${((k + 1) / (count + 1)) * 100}%`);
  for (let i = 0; i < inPorts; i++) {
    const pos = at(i, inPorts, labelled && !vertical);
    const refusal = refused?.[String(i)] ?? null;
    const name = names[i] ?? (i >= names.length ? "+ another input" : `input ${i}`);
    handles.push(
      <Handle key={`in-${i}`} id={`in-${i}`} type="target" position={vertical ? Position.Top : Position.Left}
        style={vertical ? { left: pos } : { top: pos }} title={refusal ?? name}
        className={refusal ? "gb-port-refused" : i >= names.length && names.length > 0 ? "gb-port-extra" : ""} />,
    );
    if (labelled && i < names.length) {
      handles.push(
        <span key={`label-${i}`} className={vertical ? "gb-port-label gb-port-label-top" : "gb-port-label"}
          style={vertical ? { left: pos } : { top: pos }} data-port={i}>{names[i]}</span>,
      );
    }
  }
  for (let k = 0; k < outPorts; k++) {
    const pos = at(k, outPorts, false);
    handles.push(
      <Handle key={`out-${k}`} id={`out-${k}`} type="source" position={vertical ? Position.Bottom : Position.Right}
        style={vertical ? { left: pos } : { top: pos }} title={`output ${k}`} />,
    );
  }
  return <>{handles}</>;
}

/** Class names and a one-line status for a node's error role. */
function errorLook(n: NodeDoc, role: ErrorRole | undefined, nameOf: (id: string) => string) {
  if (!n.error) return { cls: "", status: null, title: null };
  if (role?.kind === "waiting") {
    const text = `waiting on ${nameOf(role.root)}`;
    return { cls: "gb-node-waiting", status: text, title: `${text}: fix that first` };
  }
  if (role?.kind === "inside") return { cls: "gb-node-error", status: `error inside: ${nameOf(role.root)}`, title: n.error };
  return { cls: "gb-node-error", status: null, title: n.error };
}

export const OpNode = memo(function OpNode({ id, data, selected }: NodeProps<FlowNode>) {
  const n = useNodeDoc(id);
  const ctx = useContext(EditorContext);
  const role = useKeyed(ctx.roles, id);
  if (!n) return null;
  const hl = highlightProps(data.highlight);
  const err = errorLook(n, role, ctx.nameOf);
  const labelled = labelledPorts(n);
  const cls = ["gb-node", err.cls, n.pending ? "gb-node-pending" : "", selected ? "gb-selected" : "", labelled ? "gb-node-ports" : "",
    labelled && data.vertical ? "gb-node-ports-top" : "", `gb-op-${n.op}`, hl.className].join(" ");
  return (
    <div className={cls} style={{ ...hl.style, "--gb-cat": ctx.colourOf(n.op) } as React.CSSProperties}
      title={err.title ?? `${n.name} (${n.op})`} data-node-name={n.name} data-error-role={n.error ? role?.kind ?? "root" : undefined}>
      <Ports id={id} inPorts={data.inPorts} outPorts={data.outPorts} names={n.inputNames} vertical={data.vertical}
        labelled={labelled} border={1} />
      <div className="gb-node-name">{n.name}</div>
      <div className="gb-node-op">
        <span>{n.op}</span>
        {err.status ? <span className="gb-node-status">{err.status}</span>
          : n.numParams > 0 && <span className="gb-node-params">{compact(n.numParams)} params</span>}
      </div>
      {n.error && role?.kind !== "waiting" && <div className="gb-node-errmark" aria-label="error">!</div>}
      {hl.label && <div className="gb-node-badge">{hl.label}</div>}
    </div>
  );
});

export const BlockNode = memo(function BlockNode({ id, data, selected }: NodeProps<FlowNode>) {
  const n = useNodeDoc(id);
  const ctx = useContext(EditorContext);
  const role = useKeyed(ctx.roles, id);
  if (!n) return null;
  const hl = highlightProps(data.highlight);
  const err = errorLook(n, role, ctx.nameOf);
  return (
    <div className={["gb-node", "gb-block", err.cls, selected ? "gb-selected" : "", hl.className].join(" ")}
      style={{ ...hl.style, "--gb-cat": BLOCK_COLOUR } as React.CSSProperties} data-node-name={n.name}
      title={err.title ?? `block ${n.name}: ${n.inputNames.join(", ")} -> ${data.outPorts} output(s)`}
      data-error-role={n.error ? role?.kind ?? "root" : undefined}>
      <Ports id={id} inPorts={data.inPorts} outPorts={data.outPorts} names={n.inputNames} vertical={data.vertical} labelled={false} border={2} />
      <div className="gb-node-name">
        <button className="gb-toggle nodrag" title="expand block" onClick={(e) => { e.stopPropagation(); ctx.toggleBlock(id); }}>▸</button>
        {n.name}
        <button className="gb-open nodrag" title="open as its own view" onClick={(e) => { e.stopPropagation(); ctx.openBlock(id); }}>⤢</button>
      </div>
      <div className="gb-node-op">
        <span>block</span>
        {err.status ? <span className="gb-node-status">{err.status}</span>
          : n.numParams > 0 && <span className="gb-node-params">{compact(n.numParams)} params</span>}
      </div>
      {n.error && role?.kind !== "waiting" && <div className="gb-node-errmark">!</div>}
    </div>
  );
});

export const BlockOpenNode = memo(function BlockOpenNode({ id, data, selected }: NodeProps<FlowNode>) {
  const n = useNodeDoc(id);
  const ctx = useContext(EditorContext);
  const role = useKeyed(ctx.roles, id);
  if (!n) return null;
  const err = errorLook(n, role, ctx.nameOf);
  return (
    <div className={["gb-block-open", n.error ? (role?.kind === "waiting" ? "gb-block-waiting" : "gb-block-bad") : "",
      selected ? "gb-selected" : ""].join(" ")} data-node-name={n.name} title={err.title ?? undefined}
      data-error-role={n.error ? role?.kind ?? "root" : undefined}>
      <Ports id={id} inPorts={data.inPorts} outPorts={data.outPorts} names={n.inputNames} vertical={data.vertical} labelled={false} border={2} />
      <div className="gb-block-head">
        <button className="gb-toggle nodrag" title="collapse block" onClick={(e) => { e.stopPropagation(); ctx.toggleBlock(id); }}>▾</button>
        <span className="gb-node-name">{n.name}</span>
        <span className="gb-node-op">{err.status ?? "block"}</span>
        <button className="gb-open nodrag" title="open as its own view" onClick={(e) => { e.stopPropagation(); ctx.openBlock(id); }}>⤢</button>
      </div>
    </div>
  );
});

export const nodeTypes = { op: OpNode, block: BlockNode, blockOpen: BlockOpenNode };

const LABEL_STYLE = { fontSize: 10 };
const labelsReadable = (s: { transform: [number, number, number] }) => s.transform[2] >= LABEL_MIN_ZOOM;
const LABEL_PAD: [number, number] = [4, 2];

/** An edge labelled with the tensor shape it carries (from its source's entry), red when its target failed.
 * Edges into labelled ports carry their label beside the port (geometry.ts `labelAnchor`). */
export const ShapeEdge = memo(function ShapeEdge(p: EdgeProps<FlowEdge>) {
  const src = useNodeDoc(p.source);
  const dst = useNodeDoc(p.target);
  const readable = useStore(labelsReadable); // a boolean: re-renders only when the zoom crosses the threshold
  const [path, midX, midY] = getBezierPath({
    sourceX: p.sourceX, sourceY: p.sourceY, sourcePosition: p.sourcePosition,
    targetX: p.targetX, targetY: p.targetY, targetPosition: p.targetPosition,
  });
  const at = labelAnchor({ x: midX, y: midY }, { x: p.targetX, y: p.targetY }, p.data?.targetPort ?? 0, p.data?.ports ?? 1,
    p.targetPosition === Position.Top);
  return (
    <g className={edgeBad(src, dst) ? "gb-edge-bad" : undefined}>
      <BaseEdge id={p.id} path={path} labelX={at.x} labelY={at.y} label={readable ? edgeLabel(src, p.data?.port ?? 0, p.data?.styleRef) : undefined}
        labelStyle={LABEL_STYLE} labelBgPadding={LABEL_PAD} labelBgBorderRadius={3} style={p.style} markerEnd={p.markerEnd}
        interactionWidth={p.interactionWidth} />
    </g>
  );
});

export const edgeTypes = { shape: ShapeEdge };
