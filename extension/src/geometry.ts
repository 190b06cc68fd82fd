/**
 * Node geometry shared by drawing, layout and React Flow's handle bounds (pure): box sizes, where ports sit,
 * where an edge's shape label goes. styles.css draws the same numbers.
 *
 * Ops with two or more named inputs (add's input/other, multihead_attention's query/key/value) label their
 * input ports: left to right, each input gets a labelled row under the title; top down, the names sit along
 * the top edge under their ports. Their edges' shape labels are drawn next to the port they enter, staggered
 * so labels on neighbouring ports never overlap.
 */
import type { Doc, NodeDoc } from "./types";

export type XY = { x: number; y: number };

export const NODE_W = 184;
export const NODE_H = 58;
export const BLOCK_PAD = 24;
export const BLOCK_HEAD = 44;
export const TITLE_H = 40; // name and op lines
export const PORT_ROW = 18; // one labelled input port, left to right
export const LABEL_STRIP = 16; // port names along the top edge, top down
/** Gap between layers: left to right it must hold a shape label ("(2, 64, 32, 32)", ~90 px of 10 px text);
 * top down only its height. */
export const LAYER_GAP = { LR: 100, TB: 56 } as const;
/** Gap between neighbours in one layer. */
export const NODE_GAP = 28;
/** Below this zoom a 10 px edge label is under 3 px tall: edges drop their labels (each costs a text layout). */
export const LABEL_MIN_ZOOM = 0.3;

export function inPorts(n: NodeDoc): number {
  return n.inputs.length + (n.variadic ? 1 : 0); // a variadic op shows one free port to grow
}

export function outPorts(n: NodeDoc): number {
  if (n.op === "output") return 0;
  return Math.max(1, n.outputs.length);
}

/** Whether `n`'s input ports carry their names (ops with two or more named inputs; not blocks). */
export function labelledPorts(n: NodeDoc): boolean {
  return !n.isBlock && n.inputNames.length > 1;
}

export function nodeHeight(n: NodeDoc): number {
  const ports = Math.max(inPorts(n), outPorts(n));
  if (labelledPorts(n)) return Math.max(NODE_H + LABEL_STRIP, TITLE_H + PORT_ROW * inPorts(n) + 4);
  return Math.max(NODE_H, 16 * ports + 22);
}

/**
 * Where port `k` of `count` sits along its side of a `length`-px side, from the node's outer edge: spread
 * evenly inside the `border`; labelled inputs drawn left to right get one row each under the title.
 */
export function portOffset(k: number, count: number, length: number, border: number, labelledRow: boolean): number {
  if (labelledRow) return TITLE_H + PORT_ROW * (k + 0.5);
  return border + (length - 2 * border) * (k + 1) / (count + 1);
}

export function isExpanded(n: NodeDoc | undefined): boolean {
  return !!n && n.isBlock && n.meta?.expanded === true;
}

export function positionOf(n: NodeDoc, auto: Record<string, XY>): XY | undefined {
  const p = n.meta?.position as XY | undefined;
  if (p && typeof p.x === "number" && typeof p.y === "number") return p;
  return auto[n.id];
}

/** Whether node `id` lies inside block `root` (at any depth); everything lies inside the graph (null). */
export function inside(doc: Doc, id: string, root: string | null): boolean {
  if (root === null) return true;
  for (let n = doc.nodes[id]; n && n.parent !== null; n = doc.nodes[n.parent]) if (n.parent === root) return true;
  return false;
}

/**
 * Where the shape label of an edge entering input `port` of a node with `ports` inputs goes. One input: the
 * curve's middle (`mid`). Several: beside the port it enters (`target`), so each input's label stays by its
 * own port; top down they are staggered upwards by port, left to right the ports' rows already part them.
 */
export function labelAnchor(mid: XY, target: XY, port: number, ports: number, vertical: boolean): XY {
  if (ports <= 1) return mid;
  // Left to right: the middle of the gap before the node, on the port's own row.
  return vertical ? { x: target.x, y: target.y - 14 - 17 * port } : { x: target.x - LAYER_GAP.LR / 2, y: target.y };
}
