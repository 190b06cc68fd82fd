/**
 * Document -> React Flow nodes and edges (pure). Collapsed blocks hide their insides; an expanded block is
 * a parent node holding its inner nodes.
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
import type { Doc, EdgeStyle, HighlightStyle, NodeDoc } from "./types";

export const NODE_W = 184;
export const BLOCK_PAD = 24;
export const BLOCK_HEAD = 44;

export type NodeData = { highlight: HighlightStyle | null; vertical: boolean; outPorts: number; inPorts: number };
export type FlowNode = Node<NodeData>;
export type EdgeData = { port: number; styleRef: EdgeStyle | undefined };
export type FlowEdge = Edge<EdgeData>;
export type XY = { x: number; y: number };

export function inPorts(n: NodeDoc): number {
  return n.inputs.length + (n.variadic ? 1 : 0); // a variadic op shows one free port to grow
}

export function outPorts(n: NodeDoc): number {
  if (n.op === "output") return 0;
  return Math.max(1, n.outputs.length);
}

export function nodeHeight(n: NodeDoc): number {
  return Math.max(58, 16 * Math.max(inPorts(n), outPorts(n)) + 22);
}

/** Port handles: 8 px squares (styles.css) centred on the node's inner border edge, spread evenly along it. */
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
 * components/nodes.tsx draws them: inputs on the left (top when `vertical`) at (i + 1) / (ins + 1) of the
 * inner edge, outputs opposite; each handle is centred on the inner border edge (CSS translate -50%).
 */
export function handlesOf(w: number, h: number, ins: number, outs: number, vertical: boolean, border: number): NodeHandle[] {
  const out: NodeHandle[] = [];
  const half = HANDLE / 2;
  const along = (k: number, count: number) => border + ((vertical ? w : h) - 2 * border) * (k + 1) / (count + 1);
  for (let i = 0; i < ins; i++) {
    const c = along(i, ins);
    out.push(vertical
      ? { id: `in-${i}`, type: "target", position: SIDE.top, x: c - half, y: border - half, width: HANDLE, height: HANDLE }
      : { id: `in-${i}`, type: "target", position: SIDE.left, x: border - half, y: c - half, width: HANDLE, height: HANDLE });
  }
  for (let k = 0; k < outs; k++) {
    const c = along(k, outs);
    out.push(vertical
      ? { id: `out-${k}`, type: "source", position: SIDE.bottom, x: c - half, y: h - border - half, width: HANDLE, height: HANDLE }
      : { id: `out-${k}`, type: "source", position: SIDE.right, x: w - border - half, y: c - half, width: HANDLE, height: HANDLE });
  }
  return out;
}

export function isExpanded(n: NodeDoc | undefined): boolean {
  return !!n && n.isBlock && n.meta?.expanded === true;
}

/** Ids of the nodes drawn: the top level and the insides of expanded blocks (whose ancestors are expanded). */
export function visibleNodes(doc: Doc): NodeDoc[] {
  const out: NodeDoc[] = [];
  const visible = (n: NodeDoc): boolean => {
    if (n.parent === null) return true;
    const p = doc.nodes[n.parent];
    return !!p && isExpanded(p) && visible(p);
  };
  for (const n of Object.values(doc.nodes)) if (visible(n)) out.push(n);
  // Parents before children, as React Flow requires.
  const depth = (n: NodeDoc): number => (n.parent === null ? 0 : 1 + depth(doc.nodes[n.parent]));
  return out.sort((a, b) => depth(a) - depth(b));
}

export function positionOf(n: NodeDoc, auto: Record<string, XY>): XY | undefined {
  const p = n.meta?.position as XY | undefined;
  if (p && typeof p.x === "number" && typeof p.y === "number") return p;
  return auto[n.id];
}

/** Size of an expanded block: its children's bounding box plus padding. */
export function blockSize(doc: Doc, block: NodeDoc, auto: Record<string, XY>, sizes: Map<string, { w: number; h: number }>) {
  let w = NODE_W + 2 * BLOCK_PAD;
  let h = BLOCK_HEAD + 80;
  for (const c of Object.values(doc.nodes)) {
    if (c.parent !== block.id) continue;
    const p = positionOf(c, auto) ?? { x: 0, y: 0 };
    const s = sizes.get(c.id) ?? { w: NODE_W, h: nodeHeight(c) };
    w = Math.max(w, p.x + s.w + BLOCK_PAD);
    h = Math.max(h, p.y + s.h + BLOCK_PAD);
  }
  return { w, h };
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
  auto: Record<string, XY>;
  dragging: Record<string, XY>;
  selected: Set<string>;
  highlights: Record<string, HighlightStyle>;
  edgeStyles: EdgeStyle[];
  vertical: boolean;
};

/** React Flow nodes and edges for the document, reusing cached objects that did not change. */
export function toFlow(input: FlowInput, cache: FlowCache): { nodes: FlowNode[]; edges: FlowEdge[] } {
  const { doc, auto, dragging, selected, highlights, vertical } = input;
  const shown = visibleNodes(doc);
  const sizes = new Map<string, { w: number; h: number }>();
  // Children first for sizes of expanded blocks (deepest first).
  for (const n of [...shown].reverse()) {
    sizes.set(n.id, isExpanded(n) ? blockSize(doc, n, auto, sizes) : { w: NODE_W, h: nodeHeight(n) });
  }
  const nodes: FlowNode[] = [];
  const nextNodes = new Map<string, FlowNode>();
  shown.forEach((n, i) => {
    const pos = dragging[n.id] ?? positionOf(n, auto) ?? { x: 40 * (i % 20), y: 40 * Math.floor(i / 20) };
    const size = sizes.get(n.id)!;
    const hl = highlights[n.id] ?? null;
    const sel = selected.has(n.id);
    const type = n.isBlock ? (isExpanded(n) ? "blockOpen" : "block") : "op";
    const ins = inPorts(n);
    const outs = outPorts(n);
    const prev = cache.nodes.get(n.id);
    if (prev && prev.data.inPorts === ins && prev.data.outPorts === outs && prev.parentId === (n.parent ?? undefined)
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
      handles: handlesOf(size.w, size.h, ins, outs, vertical, borderOf(type, type === "blockOpen" ? null : hl)),
      style: { width: size.w, height: size.h },
      ...(n.parent !== null ? { parentId: n.parent, extent: "parent" as const } : {}),
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
    n.inputs.forEach((ref, port) => {
      if (!ref || !shownIds.has(ref[0])) return;
      const id = `${ref[0]}#${ref[1]}\u2192${n.id}#${port}`;
      const st = styleOf.get(`${ref[0]}\u0000${n.id}`);
      const prev = cache.edges.get(id);
      if (prev && prev.data?.styleRef === st) {
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
        data: { port: ref[1], styleRef: st },
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
