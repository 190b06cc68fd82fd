/**
 * Automatic layout of one level: a pure async function (boxes, edges, direction) -> top-left positions,
 * using elkjs's layered algorithm (Sugiyama-style: layers along the flow, crossings minimised, ports on fixed
 * sides). Nested blocks are hierarchy.ts's: it runs this level by level, feeding each its blocks' real sizes.
 *
 * ELK is 1.6 MB of compiled Java, so it is not in the widget bundle: the bundle holds only elkjs's small
 * API, and ELK itself runs in a Web Worker made from its script, which Python sends on first use (nothing
 * is fetched from the network; see `workerElk`). Displaying a graph never waits for it above
 * `QUICK_ABOVE` nodes (`quickLayout` draws those), and the main thread never runs it. One ELK worker serves
 * every widget on the page. Without ELK (no loader, or it fails), `layout` falls back to `quickLayout`.
 */
import ELK, { type ElkNode } from "elkjs/lib/elk-api.js";
import { LAYER_GAP, NODE_GAP } from "./geometry";

export type Direction = "LR" | "TB";
export type Box = { id: string; width: number; height: number; inPorts: number; outPorts: number };
export type Wire = { source: string; sourcePort: number; target: string; targetPort: number };
export type Positions = Record<string, { x: number; y: number }>;
/** What `layout` needs of an ELK instance (elkjs's API object, or the bundled ELK in tests). */
export type ElkLike = { layout(graph: ElkNode): Promise<ElkNode> };
/** Makes the ELK instance once (null when ELK is unavailable). */
export type ElkFactory = () => Promise<ElkLike | null>;

const ELK_TIMEOUT_MS = 30_000; // a worker (or a closed widget's comm) that never answers must not hang the editor
const shared = globalThis as { __graphbuilderElk?: Promise<ElkLike | null> };

/** An ELK factory running ELK in a Web Worker made from the worker script's text (from `source()`). */
export function workerElk(source: () => Promise<string | null>): ElkFactory {
  return async () => {
    const text = await source();
    if (!text || typeof Worker === "undefined") return null;
    const url = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
    return new ELK({ workerFactory: () => new Worker(url) }) as unknown as ElkLike;
  };
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), ms); });
  return Promise.race([promise.catch(() => null), late]).finally(() => clearTimeout(timer));
}

/** The ELK instance every widget on the page shares, made by the first caller's `factory`; null when
 * unavailable (then the next call tries again, with its own factory). */
export function getElk(factory?: ElkFactory): Promise<ElkLike | null> {
  if (shared.__graphbuilderElk) return shared.__graphbuilderElk;
  if (!factory) return Promise.resolve(null);
  const made = within(factory(), ELK_TIMEOUT_MS);
  shared.__graphbuilderElk = made;
  made.then((elk) => { if (!elk && shared.__graphbuilderElk === made) shared.__graphbuilderElk = undefined; });
  return made;
}

/** ELK options, each with what it does. Larger graphs get cheaper settings so layout stays interactive. */
export function elkOptions(direction: Direction, size: number): Record<string, string> {
  return {
    "elk.algorithm": "layered", // layers follow the data flow
    "elk.direction": direction === "LR" ? "RIGHT" : "DOWN", // inputs left (or top), outputs right (or bottom)
    "elk.spacing.nodeNode": String(NODE_GAP), // gap between nodes in one layer
    "elk.layered.spacing.nodeNodeBetweenLayers": String(LAYER_GAP[direction]), // gap between layers: room for shape labels
    "elk.layered.spacing.edgeNodeBetweenLayers": "20",
    "elk.edgeRouting": "POLYLINE", // React Flow draws its own curves; only positions are used
    // Fewer crossing-minimisation sweeps on big graphs (quality vs. time; 7 is ELK's default).
    "elk.layered.thoroughness": size > 300 ? "1" : "7",
    // Brandes-Koepf is linear time; network simplex (nicer) is kept for small graphs.
    "elk.layered.nodePlacement.strategy": size > 300 ? "BRANDES_KOEPF" : "NETWORK_SIMPLEX",
    "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES", // keep creation order where free
  };
}

/** Positions for `boxes`, laid out by ELK's layered algorithm with ports on fixed sides, ELK made by
 * `elk` if no widget has made it yet (`quickLayout` when ELK is unavailable or does not answer in time). */
export async function layout(boxes: Box[], wires: Wire[], direction: Direction, elk?: ElkFactory): Promise<Positions> {
  if (!boxes.length) return {};
  const engine = await getElk(elk);
  if (!engine) return quickLayout(boxes, wires, direction);
  const inSide = direction === "LR" ? "WEST" : "NORTH";
  const outSide = direction === "LR" ? "EAST" : "SOUTH";
  const known = new Set(boxes.map((b) => b.id));
  const graph = {
    id: "root",
    layoutOptions: elkOptions(direction, boxes.length),
    children: boxes.map((b) => ({
      id: b.id,
      width: b.width,
      height: b.height,
      layoutOptions: { "elk.portConstraints": "FIXED_ORDER" }, // port i stays at slot i
      ports: [
        ...Array.from({ length: b.inPorts }, (_, i) => ({ id: `${b.id}\u0000in${i}`, layoutOptions: { "elk.port.side": inSide, "elk.port.index": String(i) } })),
        ...Array.from({ length: b.outPorts }, (_, i) => ({ id: `${b.id}\u0000out${i}`, layoutOptions: { "elk.port.side": outSide, "elk.port.index": String(i) } })),
      ],
    })),
    edges: wires
      .filter((w) => known.has(w.source) && known.has(w.target))
      .map((w, i) => ({
        id: `e${i}`,
        sources: [`${w.source}\u0000out${w.sourcePort}`],
        targets: [`${w.target}\u0000in${w.targetPort}`],
      })),
  };
  const out = await within(engine.layout(graph), ELK_TIMEOUT_MS);
  if (!out) return quickLayout(boxes, wires, direction);
  const pos: Positions = {};
  for (const c of out.children ?? []) pos[c.id] = { x: c.x ?? 0, y: c.y ?? 0 };
  return pos;
}

/**
 * A linear-time layered layout for big graphs, where ELK takes seconds: longest-path layers, then one
 * barycentre sweep to order each layer. Used for the first drawing of graphs over `QUICK_ABOVE` nodes;
 * the toolbar's "Layout" button still runs ELK on any size.
 */
export const QUICK_ABOVE = 200;

export function quickLayout(boxes: Box[], wires: Wire[], direction: Direction): Positions {
  const preds = new Map<string, string[]>();
  const ids = new Set(boxes.map((b) => b.id));
  for (const b of boxes) preds.set(b.id, []);
  for (const w of wires) if (ids.has(w.source) && ids.has(w.target)) preds.get(w.target)!.push(w.source);
  const layer = new Map<string, number>();
  const depth = (id: string, guard: Set<string>): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    guard.add(id);
    let d = 0;
    for (const p of preds.get(id) ?? []) if (!guard.has(p)) d = Math.max(d, depth(p, guard) + 1);
    guard.delete(id);
    layer.set(id, d);
    return d;
  };
  // Iterative warm-up in creation order keeps recursion shallow on long chains.
  for (const b of boxes) depth(b.id, new Set());
  const layers: string[][] = [];
  for (const b of boxes) (layers[layer.get(b.id)!] ??= []).push(b.id);
  const order = new Map<string, number>();
  for (const ids2 of layers) {
    if (!ids2) continue;
    const bary = (id: string) => {
      const ps = preds.get(id) ?? [];
      return ps.length ? ps.reduce((s, p) => s + (order.get(p) ?? 0), 0) / ps.length : order.size;
    };
    ids2.sort((a, b) => bary(a) - bary(b));
    ids2.forEach((id, i) => order.set(id, i));
  }
  const size = new Map(boxes.map((b) => [b.id, b]));
  const pos: Positions = {};
  const lr = direction === "LR";
  let along = 0; // each layer starts after the longest box of the one before (expanded blocks are long)
  for (const ids2 of layers) {
    let across = 0;
    let longest = 0;
    for (const id of ids2 ?? []) {
      const b = size.get(id)!;
      pos[id] = lr ? { x: along, y: across } : { x: across, y: along };
      across += (lr ? b.height : b.width) + NODE_GAP;
      longest = Math.max(longest, lr ? b.width : b.height);
    }
    along += longest + LAYER_GAP[direction];
  }
  return pos;
}
