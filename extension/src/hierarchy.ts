/**
 * Layout of nested blocks (pure, unit-tested in test/hierarchy.test.ts). An expanded block is a box around
 * its children, so its size depends on their layout, and its siblings must make room for it:
 *
 * - `sizesOf`: every shown node's box, expanded blocks sized from their children, innermost first.
 * - `layoutLevels`: a per-level layout (ELK or the quick layout) from the innermost expanded blocks up, each
 *   level fed its children's real sizes: the hierarchical layout behind "Layout" and first display.
 * - `rearrange`: after blocks grow or shrink (expand, collapse, new nodes inside), shift their siblings by
 *   the change, then push apart whatever still overlaps (`separate`), level by level up to the view's top:
 *   the user's arrangement is kept, nothing overlaps.
 * - `placeNew`: positions for nodes that appeared without one (Python edits, passes, searches), next to their
 *   wired neighbours in the first free slot, without moving anything else.
 *
 * Positions are those in node meta: relative to the enclosing block (whose children start at
 * (BLOCK_PAD, BLOCK_HEAD)), absolute at the top level. `root` is the block opened as the view (null: the graph).
 */
import { BLOCK_HEAD, BLOCK_PAD, inPorts, isExpanded, LAYER_GAP, NODE_GAP, NODE_W, nodeHeight, outPorts, type XY } from "./geometry";
import type { Box, Direction, Positions, Wire } from "./layout";
import type { Doc, NodeDoc } from "./types";

export type Size = { w: number; h: number };
export type Rect = { id: string; x: number; y: number; w: number; h: number };
/** Lays out one level: boxes and wires in, top-left positions out (ELK's layered layout or `quickLayout`). */
export type LevelLayout = (boxes: Box[], wires: Wire[], direction: Direction) => Promise<Positions>;
/** A node's position, or undefined when it has none yet. */
export type PositionOf = (id: string) => XY | undefined;

const GAP = NODE_GAP;
const MARGIN = 12; // free space kept around a placed node

/** Nodes by the block that holds them (null: the top level), in document order. */
export function levels(doc: Doc): Map<string | null, NodeDoc[]> {
  const out = new Map<string | null, NodeDoc[]>();
  for (const n of Object.values(doc.nodes)) {
    const list = out.get(n.parent);
    if (list) list.push(n);
    else out.set(n.parent, [n]);
  }
  return out;
}

/** Where a level's children start inside their block: (BLOCK_PAD, BLOCK_HEAD) in a block, 0 at the top. */
export function offsetOf(parent: string | null): XY {
  return parent === null ? { x: 0, y: 0 } : { x: BLOCK_PAD, y: BLOCK_HEAD };
}

/** The levels shown in the view of `root`: `root` itself, then every expanded block under it, outermost first. */
export function shownLevels(doc: Doc, root: string | null, index = levels(doc)): (string | null)[] {
  const out: (string | null)[] = [root];
  for (let i = 0; i < out.length; i++) {
    for (const n of index.get(out[i]) ?? []) if (isExpanded(n)) out.push(n.id);
  }
  return out;
}

/** The levels whose boxes matter while `root` is the view, outermost first: its own, plus the graph's top
 * view's when `root` is a block (it may be drawn expanded there, so its growth must reach its ancestors). */
export function settledLevels(doc: Doc, root: string | null, index = levels(doc)): (string | null)[] {
  const own = shownLevels(doc, root, index);
  if (root === null) return own;
  const depth = (level: string | null) => {
    let d = 0;
    for (let p = level; p !== null; p = doc.nodes[p]?.parent ?? null) d++;
    return d;
  };
  return [...new Set([...shownLevels(doc, null, index), ...own])].sort((a, b) => depth(a) - depth(b));
}

/** The box of a node that is not an expanded block. */
export function boxOf(n: NodeDoc): Size {
  return { w: NODE_W, h: nodeHeight(n) };
}

/** The box of an expanded block around children at `rects` (relative positions). */
export function blockBox(rects: Rect[]): Size {
  let w = NODE_W + 2 * BLOCK_PAD;
  let h = BLOCK_HEAD + 80;
  for (const r of rects) {
    w = Math.max(w, r.x + r.w + BLOCK_PAD);
    h = Math.max(h, r.y + r.h + BLOCK_PAD);
  }
  return { w, h };
}

/** Sizes of the nodes shown in `root`'s view: expanded blocks around their children's boxes at `pos`
 * (children without a position count at the level's start). */
export function sizesOf(doc: Doc, root: string | null, pos: PositionOf, index = levels(doc)): Map<string, Size> {
  const sizes = new Map<string, Size>();
  for (const _ of inward(settledLevels(doc, root, index), index, sizes, pos)) { /* the walk sizes the blocks */ }
  return sizes;
}

function rectsOf(nodes: NodeDoc[], pos: PositionOf, sizes: Map<string, Size>, parent: string | null): Rect[] {
  const start = offsetOf(parent);
  return nodes.map((n) => {
    const p = pos(n.id) ?? start;
    const s = sizes.get(n.id) ?? boxOf(n);
    return { id: n.id, x: p.x, y: p.y, w: s.w, h: s.h };
  });
}

/** Levels innermost first, each with its children, their collapsed boxes already in `sizes`; the caller
 * calls `done(level)` after placing them, which sizes the level's block around them at `at`. */
function* inward(order: (string | null)[], index: Map<string | null, NodeDoc[]>, sizes: Map<string, Size>, at: PositionOf) {
  for (const level of [...order].reverse()) {
    const children = index.get(level) ?? [];
    for (const n of children) if (!isExpanded(n)) sizes.set(n.id, boxOf(n));
    yield { level, children };
    if (level !== null) sizes.set(level, blockBox(rectsOf(children, at, sizes, level)));
  }
}

/** Boxes (sized by `sizes`) and wires of one level, for a `LevelLayout`. */
export function levelGraph(nodes: NodeDoc[], sizes: Map<string, Size>): { boxes: Box[]; wires: Wire[] } {
  const boxes: Box[] = [];
  const wires: Wire[] = [];
  for (const n of nodes) {
    const s = sizes.get(n.id) ?? boxOf(n);
    boxes.push({ id: n.id, width: s.w, height: s.h, inPorts: inPorts(n), outPorts: outPorts(n) });
    n.inputs.forEach((ref, port) => { if (ref) wires.push({ source: ref[0], sourcePort: ref[1], target: n.id, targetPort: port }); });
  }
  return { boxes, wires };
}

/**
 * New positions for the levels of `root`'s view that `redo(level, children)` picks, laid out from the
 * innermost expanded blocks up so each level sees its blocks' real sizes; other levels keep `pos`.
 */
export async function layoutLevels(doc: Doc, root: string | null, direction: Direction, engine: LevelLayout, pos: PositionOf,
  redo: (level: string | null, children: NodeDoc[]) => boolean, index = levels(doc)): Promise<Positions> {
  const found: Positions = {};
  const at: PositionOf = (id) => found[id] ?? pos(id);
  const sizes = new Map<string, Size>();
  for (const { level, children } of inward(shownLevels(doc, root, index), index, sizes, at)) {
    if (!children.length || !redo(level, children)) continue;
    const { boxes, wires } = levelGraph(children, sizes);
    const laid = await engine(boxes, wires, direction);
    const start = offsetOf(level);
    for (const [id, p] of Object.entries(laid)) found[id] = { x: Math.round(p.x + start.x), y: Math.round(p.y + start.y) };
  }
  return found;
}

function overlap(a: Rect, b: Rect, margin = 0): boolean {
  return a.x < b.x + b.w + margin && b.x < a.x + a.w + margin && a.y < b.y + b.h + margin && b.y < a.y + a.h + margin;
}

/** Pairs of ids whose boxes overlap (for checks and tests). */
export function overlapping(rects: Rect[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < rects.length; i++) {
    for (let j = i + 1; j < rects.length; j++) if (overlap(rects[i], rects[j])) out.push([rects[i].id, rects[j].id]);
  }
  return out;
}

/** Pushes boxes along the flow (right for LR, down for TB), in flow order, until no two overlap (in place). */
export function separate(rects: Rect[], direction: Direction): void {
  const lr = direction === "LR";
  const order = [...rects].sort((a, b) => (lr ? a.x - b.x || a.y - b.y : a.y - b.y || a.x - b.x));
  const placed: Rect[] = [];
  for (const r of order) {
    for (let moved = true; moved;) {
      moved = false;
      for (const q of placed) {
        if (!overlap(r, q)) continue;
        if (lr) r.x = q.x + q.w + GAP;
        else r.y = q.y + q.h + GAP;
        moved = true;
      }
    }
    placed.push(r);
  }
}

/**
 * Makes room in a level after box `id` changed from `before` to its current size (in place): siblings that
 * start past its old far edge along the flow move by the change in length; siblings past its old far side
 * across the flow, within its span, move by the change in breadth. Shrinking moves them back.
 */
export function shiftFor(rects: Rect[], id: string, before: Size, direction: Direction): void {
  const b = rects.find((r) => r.id === id);
  if (!b) return;
  const lr = direction === "LR";
  const [along, across] = lr ? ["x", "y"] as const : ["y", "x"] as const;
  const [len, wid] = lr ? ["w", "h"] as const : ["h", "w"] as const;
  const dLen = b[len] - before[len];
  const dWid = b[wid] - before[wid];
  const far = b[along] + before[len] - 1;
  const side = b[across] + before[wid] - 1;
  for (const r of rects) {
    if (r === b) continue;
    if (r[along] >= far) r[along] += dLen;
    else if (r[across] >= side && r[along] + r[len] > b[along] && r[along] < b[along] + Math.max(b[len], before[len])) r[across] += dWid;
  }
}

const sameSize = (a: Size | undefined, b: Size | undefined) => !!a && !!b && Math.round(a.w) === Math.round(b.w) && Math.round(a.h) === Math.round(b.h);

/**
 * Moves that keep `root`'s view free of overlaps after blocks changed size: `before` holds the sizes before
 * the change (a block just expanded: its collapsed box), `pos` the positions after it (new inner layouts
 * included). Levels are settled innermost first, so a block's growth reaches its enclosing levels.
 */
export function rearrange(doc: Doc, root: string | null, pos: PositionOf, before: Map<string, Size>, direction: Direction,
  index = levels(doc), fresh: ReadonlySet<string | null> = new Set()): Positions {
  const moved: Positions = {};
  const at: PositionOf = (id) => moved[id] ?? pos(id);
  const sizes = new Map<string, Size>();
  for (const { level, children } of inward(settledLevels(doc, root, index), index, sizes, at)) {
    const rects = rectsOf(children, at, sizes, level);
    // Levels just laid out (`fresh`) already fit their blocks' new sizes.
    const changed = fresh.has(level) ? [] : rects.filter((r) => before.has(r.id) && !sameSize(before.get(r.id), { w: r.w, h: r.h }));
    if (!changed.length) continue;
    const start = new Map(rects.map((r) => [r.id, { x: r.x, y: r.y }]));
    for (const r of changed) shiftFor(rects, r.id, before.get(r.id)!, direction);
    separate(rects, direction);
    for (const r of rects) {
      const s = start.get(r.id)!;
      if (r.x !== s.x || r.y !== s.y) moved[r.id] = { x: Math.round(r.x), y: Math.round(r.y) };
    }
  }
  return moved;
}

/** A node to place: its box and its wired neighbours on the same level. */
export type NewNode = { id: string; w: number; h: number; inputs: string[]; users: string[] };

/**
 * Positions for `news` in a level whose other nodes are `placed`: each goes one layer after its placed inputs
 * (or before its placed users) at their mean height across the flow, in the nearest slot that overlaps
 * nothing; nodes without placed neighbours go after everything. Nothing already placed moves. `start` bounds
 * the slots from above and left (a block's children start at its padding); null at the top level.
 */
export function placeNew(placed: Rect[], news: NewNode[], direction: Direction, start: XY | null = null): Positions {
  const rects = [...placed];
  const byId = new Map(rects.map((r) => [r.id, r]));
  const out: Positions = {};
  const pending = [...news];
  // Inputs before users: a node waits until every new input of it is placed (a cycle cannot happen).
  for (let guard = 0; pending.length && guard < news.length + 1; guard++) {
    for (let i = 0; i < pending.length;) {
      const n = pending[i];
      if (n.inputs.some((s) => pending.some((p) => p.id === s && p !== n))) { i++; continue; }
      const r = slotFor(n, rects, byId, direction, start);
      rects.push(r);
      byId.set(r.id, r);
      out[n.id] = { x: Math.round(r.x), y: Math.round(r.y) };
      pending.splice(i, 1);
    }
  }
  for (const n of pending) { // only if the guard ran out: place anyway
    const r = slotFor({ ...n, inputs: [] }, rects, byId, direction, start);
    rects.push(r);
    out[n.id] = { x: Math.round(r.x), y: Math.round(r.y) };
  }
  return out;
}

function slotFor(n: NewNode, rects: Rect[], byId: Map<string, Rect>, direction: Direction, start: XY | null): Rect {
  const lr = direction === "LR";
  const gap = LAYER_GAP[direction];
  const ins = n.inputs.map((s) => byId.get(s)).filter((r): r is Rect => !!r);
  const outs = n.users.map((s) => byId.get(s)).filter((r): r is Rect => !!r);
  const mid = (list: Rect[]) => list.reduce((s, r) => s + (lr ? r.y + r.h / 2 : r.x + r.w / 2), 0) / list.length;
  let along: number;
  let across: number;
  if (ins.length) {
    along = Math.max(...ins.map((r) => (lr ? r.x + r.w : r.y + r.h))) + gap;
    across = mid(ins) - (lr ? n.h : n.w) / 2;
  } else if (outs.length) {
    along = Math.min(...outs.map((r) => (lr ? r.x : r.y))) - gap - (lr ? n.w : n.h);
    across = mid(outs) - (lr ? n.h : n.w) / 2;
  } else if (rects.length) {
    along = Math.max(...rects.map((r) => (lr ? r.x + r.w : r.y + r.h))) + gap;
    across = Math.min(...rects.map((r) => (lr ? r.y : r.x)));
  } else {
    along = start ? (lr ? start.x : start.y) : 0;
    across = start ? (lr ? start.y : start.x) : 0;
  }
  const minAlong = start ? (lr ? start.x : start.y) : -Infinity;
  const minAcross = start ? (lr ? start.y : start.x) : -Infinity;
  const step = (lr ? n.h : n.w) + GAP;
  const make = (a: number, c: number): Rect => (lr ? { id: n.id, x: a, y: c, w: n.w, h: n.h } : { id: n.id, x: c, y: a, w: n.w, h: n.h });
  for (let push = 0; push < 50; push++) {
    const a = Math.max(minAlong, along + push * ((lr ? n.w : n.h) + gap));
    for (let k = 0; k < 40; k++) { // 0, +1, -1, +2, -2, ... slots across the flow
      const c = across + (k % 2 ? 1 : -1) * Math.ceil(k / 2) * step;
      if (c < minAcross) continue;
      const r = make(a, c);
      if (!rects.some((q) => overlap(r, q, MARGIN))) return r;
    }
  }
  return make(along, across);
}

/** Positions for shown nodes that have none, in levels where others have one (`placeNew`, level by level). */
export function placeMissing(doc: Doc, root: string | null, direction: Direction, pos: PositionOf, index = levels(doc)): Positions {
  const found: Positions = {};
  const at: PositionOf = (id) => found[id] ?? pos(id);
  const shown = shownLevels(doc, root, index);
  for (let i = shown.length - 1; i >= 0; i--) { // inner levels first: their blocks' sizes feed the outer ones
    const level = shown[i];
    const children = index.get(level) ?? [];
    const missing = children.filter((n) => !at(n.id));
    if (!missing.length || missing.length === children.length) continue;
    const sizes = sizesOf(doc, root, at, index);
    const ids = new Set(children.map((n) => n.id));
    const users = new Map<string, string[]>();
    for (const n of children) for (const ref of n.inputs) if (ref && ids.has(ref[0])) users.set(ref[0], [...(users.get(ref[0]) ?? []), n.id]);
    const news: NewNode[] = missing.map((n) => {
      const s = sizes.get(n.id) ?? boxOf(n);
      return { id: n.id, w: s.w, h: s.h, inputs: n.inputs.flatMap((r) => (r && ids.has(r[0]) ? [r[0]] : [])), users: users.get(n.id) ?? [] };
    });
    const placed = rectsOf(children.filter((n) => at(n.id)), at, sizes, level);
    Object.assign(found, placeNew(placed, news, direction, level === null ? null : offsetOf(level)));
  }
  return found;
}

/**
 * Positions that settle `root`'s view after a change from document `before` to `after` (blocks expanded or
 * collapsed, nodes added): levels with no positioned node are laid out whole (innermost first), nodes
 * missing from otherwise placed levels are placed near their neighbours, then siblings of blocks whose box
 * changed make room. A block expanded in `after` whose children had no position counts as collapsed before.
 */
export async function arrange(before: Doc, after: Doc, root: string | null, direction: Direction, engine: LevelLayout,
  pos: PositionOf): Promise<Positions> {
  const index = levels(after);
  const beforeIndex = levels(before);
  const sizesBefore = sizesOf(before, root, pos, beforeIndex);
  for (const level of settledLevels(before, root, beforeIndex)) {
    const block = level === null ? undefined : before.nodes[level];
    if (block && !(beforeIndex.get(level) ?? []).some((n) => pos(n.id))) sizesBefore.set(block.id, boxOf(block));
  }
  const fresh = new Set<string | null>();
  const laid = await layoutLevels(after, root, direction, engine, pos, (level, children) => {
    const unplaced = children.every((n) => !pos(n.id));
    if (unplaced) fresh.add(level);
    return unplaced;
  }, index);
  const placed = placeMissing(after, root, direction, (id) => laid[id] ?? pos(id), index);
  const at: PositionOf = (id) => placed[id] ?? laid[id] ?? pos(id);
  return { ...laid, ...placed, ...rearrange(after, root, at, sizesBefore, direction, index, fresh) };
}
