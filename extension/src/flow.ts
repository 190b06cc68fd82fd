/**
 * Document -> React Flow nodes and edges (pure). Collapsed blocks hide their insides; an expanded block is
 * a parent node holding its inner nodes, sized around them (hierarchy.ts). A block opened as the view
 * (`root`) shows its children as the top level.
 *
 * React Flow objects carry structure only (id, type, position, size, port counts, parent, highlight); what a
 * node shows (name, op, params, shapes, errors) and edge labels are read by the node and edge components
 * from the Sync store, per node id (`Sync.subscribeNode`). So an edit that changes shapes and errors but
 * not structure changes no React Flow object at all: `toFlow` returns the very same arrays, React Flow does
 * no work, and only the components of the touched nodes and their edges re-render.
 *
 * Each node also declares its size (`measured`: the style fixes it) and where its ports are (`handles`, computed
 * from its size and port counts the way the stylesheet places them). Without them React Flow must mount and
 * measure every node once before it can draw edges, skip off-screen nodes or fit the view: for 1,000 nodes
 * that first mount was most of the display time.
 */
import type { Edge, Node, NodeHandle, Position } from "@xyflow/react";
import { formatSpec } from "./doc";
import { inPorts, labelledPorts, outPorts, portOffset, positionOf, type XY } from "./geometry";
import { levels, shownLevels, sizesOf } from "./hierarchy";
import type { Doc, EdgeStyle, HighlightStyle, NodeDoc } from "./types";

export { BLOCK_HEAD, BLOCK_PAD, inPorts, isExpanded, NODE_W, nodeHeight, outPorts, positionOf, type XY } from "./geometry";

export type NodeData = { highlight: HighlightStyle | null; vertical: boolean; outPorts: number; inPorts: number };
export type FlowNode = Node<NodeData>;
/** `port`: the source output the edge reads; `targetPort` of `ports` labelled inputs (1: unlabelled). */
export type EdgeData = { port: number; targetPort: number; ports: number; styleRef: EdgeStyle | undefined };
export type FlowEdge = Edge<EdgeData>;

/** Port handles: 8 px squares (styles.css) centred on the node's inner border edge. */
export const HANDLE = 8;
const SIDE = { left: "left", right: "right", top: "top", bottom: "bottom" } as unknown as Record<string, Position>;

/** Border width in px of a node drawn as `type` with highlight `hl` (inline styles may widen it). */
export function borderOf(type: string, hl: HighlightStyle | null): number {
  if (hl && typeof hl === "object") {
    const w = hl.border_width ?? hl.width;
    if (typeof w === "number") return w;
    if (typeof w === "string" && Number.isFinite(parseFloat(w))) return parseFloat(w);
    const m = typeof hl.border === "string" ? /(\d+(?:\.\d+)?)px/.exec(hl.border) : null;
    if (m) return parseFloat(m[1]);
  }
  return type === "op" ? 1 : 2; // .gb-node: 1 px; .gb-block and .gb-block-open: 2 px
}

/**
 * Where React Flow finds the ports of a `w` x `h` node (relative to its top-left corner), as `Ports` in
 * components/nodes.tsx draws them (geometry.ts `portOffset`): inputs on the left (top when `vertical`),
 * outputs opposite; each handle is centred on the inner border edge (CSS translate -50%).
 */
export function handlesOf(w: number, h: number, ins: number, outs: number, vertical: boolean, border: number,
  labelled = false): NodeHandle[] {
  const out: NodeHandle[] = [];
  const half = HANDLE / 2;
  for (let i = 0; i < ins; i++) {
    const c = portOffset(i, ins, vertical ? w : h, border, labelled && !vertical);
    out.push(vertical
      ? { id: `in-${i}`, type: "target", position: SIDE.top, x: c - half, y: border - half, width: HANDLE, height: HANDLE }
      : { id: `in-${i}`, type: "target", position: SIDE.left, x: border - half, y: c - half, width: HANDLE, height: HANDLE });
  }
  for (let k = 0; k < outs; k++) {
    const c = portOffset(k, outs, vertical ? w : h, border, false);
    out.push(vertical
      ? { id: `out-${k}`, type: "source", position: SIDE.bottom, x: c - half, y: h - border - half, width: HANDLE, height: HANDLE }
      : { id: `out-${k}`, type: "source", position: SIDE.right, x: w - border - half, y: c - half, width: HANDLE, height: HANDLE });
  }
  return out;
}

/** The nodes drawn in the view of block `root` (null: the graph): its children and the insides of expanded
 * blocks among them, parents before children as React Flow requires. */
export function visibleNodes(doc: Doc, root: string | null = null): NodeDoc[] {
  const index = levels(doc);
  return shownLevels(doc, root, index).flatMap((level) => index.get(level) ?? []);
}

export type FlowCache = { nodes: Map<string, FlowNode>; edges: Map<string, FlowEdge>; nodeList: FlowNode[]; edgeList: FlowEdge[] };

export function newCache(): FlowCache {
  return { nodes: new Map(), edges: new Map(), nodeList: [], edgeList: [] };
}

/** The label of an edge reading output `port` of `source`: its inferred shape, plus a style's label. */
export function edgeLabel(source: NodeDoc | undefined, port: number, style?: EdgeStyle): string {
  const shape = formatSpec(source?.outputs[port]);
  return style?.label ? `${shape} ${style.label}` : shape;
}

/** True when an edge should show red: its target failed while its source is fine. */
export function edgeBad(source: NodeDoc | undefined, target: NodeDoc | undefined): boolean {
  return !!target?.error && !source?.error;
}

/** `list` if it holds exactly the objects of `prev` in order (so React Flow sees no change), else `list`. */
function same<T>(prev: T[], list: T[]): T[] {
  if (prev.length !== list.length) return list;
  for (let i = 0; i < list.length; i++) if (prev[i] !== list[i]) return list;
  return prev;
}

export type FlowInput = {
  doc: Doc;
  /** The block opened as the view (its children are the top level); null or absent for the graph. */
  root?: string | null;
  auto: Record<string, XY>;
  dragging: Record<string, XY>;
  selected: Set<string>;
  highlights: Record<string, HighlightStyle>;
  edgeStyles: EdgeStyle[];
  vertical: boolean;
};

/** The id of the edge from output `out` of `source` into input `port` of `target`. */
export function edgeId(source: string, out: number, target: string, port: number): string {
  return `${source}#${out}\u2192${target}#${port}`;
}

/** React Flow nodes and edges for the document, reusing cached objects that did not change. */
export function toFlow(input: FlowInput, cache: FlowCache): { nodes: FlowNode[]; edges: FlowEdge[] } {
  const { doc, auto, dragging, selected, highlights, vertical } = input;
  const root = input.root ?? null;
  const index = levels(doc);
  const shown = shownLevels(doc, root, index).flatMap((level) => index.get(level) ?? []);
  const sizes = sizesOf(doc, root, (id) => dragging[id] ?? (doc.nodes[id] && positionOf(doc.nodes[id], auto)), index);
  const nodes: FlowNode[] = [];
  const nextNodes = new Map<string, FlowNode>();
  shown.forEach((n, i) => {
    const pos = dragging[n.id] ?? positionOf(n, auto) ?? { x: 40 * (i % 20), y: 40 * Math.floor(i / 20) };
    const size = sizes.get(n.id)!;
    const hl = highlights[n.id] ?? null;
    const sel = selected.has(n.id);
    const type = n.isBlock ? (n.meta?.expanded === true ? "blockOpen" : "block") : "op";
    const parentId = n.parent !== root && n.parent !== null ? n.parent : undefined;
    const ins = inPorts(n);
    const outs = outPorts(n);
    const prev = cache.nodes.get(n.id);
    if (prev && prev.data.inPorts === ins && prev.data.outPorts === outs && prev.parentId === parentId
      && prev.position.x === pos.x && prev.position.y === pos.y && prev.selected === sel
      && prev.data.highlight === hl && prev.type === type && prev.width === size.w && prev.height === size.h
      && prev.data.vertical === vertical) {
      nodes.push(prev);
      nextNodes.set(n.id, prev);
      return;
    }
    const node: FlowNode = {
      id: n.id,
      type,
      position: pos,
      data: { highlight: hl, vertical, outPorts: outs, inPorts: ins },
      selected: sel,
      width: size.w,
      height: size.h,
      measured: { width: size.w, height: size.h }, // the style fixes the size: nothing to wait for
      handles: handlesOf(size.w, size.h, ins, outs, vertical, borderOf(type, type === "blockOpen" ? null : hl), labelledPorts(n)),
      style: { width: size.w, height: size.h },
      ...(parentId !== undefined ? { parentId, extent: "parent" as const } : {}),
      ...(type === "blockOpen" ? { zIndex: -1 } : {}),
    };
    nodes.push(node);
    nextNodes.set(n.id, node);
  });
  cache.nodes = nextNodes;
  cache.nodeList = same(cache.nodeList, nodes);

  const shownIds = new Set(shown.map((n) => n.id));
  const styleOf = new Map(input.edgeStyles.map((s) => [`${s.source}\u0000${s.target}`, s]));
  const edges: FlowEdge[] = [];
  const nextEdges = new Map<string, FlowEdge>();
  for (const n of shown) {
    const ports = labelledPorts(n) ? inPorts(n) : 1;
    n.inputs.forEach((ref, port) => {
      if (!ref || !shownIds.has(ref[0])) return;
      const id = edgeId(ref[0], ref[1], n.id, port);
      const st = styleOf.get(`${ref[0]}\u0000${n.id}`);
      const prev = cache.edges.get(id);
      if (prev && prev.data?.styleRef === st && prev.data?.ports === ports) {
        edges.push(prev);
        nextEdges.set(id, prev);
        return;
      }
      const edge: FlowEdge = {
        id,
        type: "shape", // ShapeEdge: label and colour come from the store, per node
        source: ref[0],
        sourceHandle: `out-${ref[1]}`,
        target: n.id,
        targetHandle: `in-${port}`,
        data: { port: ref[1], targetPort: port, ports, styleRef: st },
        style: st ? { strokeWidth: st.width, stroke: st.color, opacity: st.opacity } : undefined,
      };
      edges.push(edge);
      nextEdges.set(id, edge);
    });
  }
  cache.edges = nextEdges;
  cache.edgeList = same(cache.edgeList, edges);
  return { nodes: cache.nodeList, edges: cache.edgeList };
}
