/**
 * Custom React Flow nodes: an op node, a collapsed block, an expanded block. Memoised; their data is plain
 * (the node's document entry); actions come from EditorContext, never from node data.
 */
import { Handle, Position, type NodeProps } from "@xyflow/react";
import { createContext, memo, useContext } from "react";
import { compact } from "../doc";
import type { FlowNode } from "../flow";
import type { HighlightStyle } from "../types";

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
  const n = data.doc;
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
  const n = data.doc;
  const ctx = useContext(EditorContext);
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
  const n = data.doc;
  const ctx = useContext(EditorContext);
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
