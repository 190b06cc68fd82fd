import ELK from "elkjs/lib/elk.bundled.js";
import { describe, expect, it } from "vitest";
import { applyOps } from "../src/doc";
import { BLOCK_HEAD, BLOCK_PAD, NODE_W, nodeHeight, positionOf } from "../src/geometry";
import {
  arrange, layoutLevels, levels, overlapping, placeNew, rearrange, separate, shownLevels, sizesOf, type LevelLayout, type Rect,
} from "../src/hierarchy";
import { layout, quickLayout, type Direction } from "../src/layout";
import type { Doc } from "../src/types";
import { block, docOf, n, stage } from "./helpers";

const quick: LevelLayout = async (boxes, wires, d) => quickLayout(boxes, wires, d);
const elk: LevelLayout = (boxes, wires, d) => layout(boxes, wires, d, async () => new ELK());

/** x -> stem -> s1 -> s2 -> s3 -> head: three stages of `length` blocks (a ResNet's top level). */
function resnetLike(length = 3): Doc {
  const nodes = [n("x", [], { op: "input", inputNames: [] }), n("stem", [["x", 0]])];
  let prev = "stem";
  for (const s of ["s1", "s2", "s3"]) {
    const parts = stage(s, length, 4);
    parts[0] = { ...parts[0], inputs: [[prev, 0]] };
    nodes.push(...parts);
    prev = s;
  }
  nodes.push(n("head", [[prev, 0]]));
  return docOf(nodes);
}

/** Absolute-free check: within each shown level, no two boxes overlap. */
function levelOverlaps(doc: Doc, pos: Record<string, { x: number; y: number }>, root: string | null = null): [string, string][] {
  const index = levels(doc);
  const at = (id: string) => pos[id] ?? positionOf(doc.nodes[id], {});
  const sizes = sizesOf(doc, root, at, index);
  const out: [string, string][] = [];
  for (const level of shownLevels(doc, root, index)) {
    const rects: Rect[] = (index.get(level) ?? []).map((c) => ({ id: c.id, ...at(c.id)!, w: sizes.get(c.id)!.w, h: sizes.get(c.id)!.h }));
    out.push(...overlapping(rects));
  }
  return out;
}

function withPositions(doc: Doc, pos: Record<string, { x: number; y: number }>): Doc {
  return applyOps(doc, [{ op: "move", positions: Object.fromEntries(Object.entries(pos).map(([k, p]) => [k, [p.x, p.y] as [number, number]])) }], {});
}

const expand = (doc: Doc, ids: string[], open = true) => applyOps(doc, ids.map((id) => ({ op: "meta" as const, node: id, meta: { expanded: open ? true : null } })), {});

describe("hierarchical layout", () => {
  for (const direction of ["LR", "TB"] as Direction[]) {
    for (const [name, engine] of [["quick", quick], ["ELK", elk]] as const) {
      it(`lays out expanded blocks at their real size at every level (${direction}, ${name})`, async () => {
        const doc = expand(resnetLike(), ["s1", "s2", "s2/1"]);
        const pos = await layoutLevels(doc, null, direction, engine, () => undefined, () => true);
        expect(Object.keys(pos).length).toBe(shownLevels(doc, null).flatMap((l) => levels(doc).get(l) ?? []).length);
        expect(levelOverlaps(doc, pos)).toEqual([]);
        // Children start inside their block, below its header.
        for (const id of ["s1/x", "s2/1/x"]) expect(pos[id].x).toBeGreaterThanOrEqual(BLOCK_PAD - 1);
        expect(pos["s1/x"].y).toBeGreaterThanOrEqual(BLOCK_HEAD - 1);
        // The level above sees s1's real size: the next stage starts after it, not 240 px later.
        const sizes = sizesOf(doc, null, (id) => pos[id]);
        const along = direction === "LR" ? "x" : "y";
        const len = direction === "LR" ? "w" : "h";
        expect(pos.s2[along]).toBeGreaterThanOrEqual(pos.s1[along] + sizes.get("s1")![len]);
        expect(sizes.get("s1")![len]).toBeGreaterThan(3 * (direction === "LR" ? NODE_W : nodeHeight(doc.nodes.s1)));
      });
    }
  }

  it("expanding each stage in turn, then collapsing, never overlaps and collapse gives the room back", async () => {
    for (const direction of ["LR", "TB"] as Direction[]) {
      let doc = resnetLike(16);
      doc = withPositions(doc, await layoutLevels(doc, null, direction, quick, () => undefined, () => true));
      const start = { ...doc.nodes.head.meta.position as object };
      for (const s of ["s1", "s2", "s3"]) {
        const after = expand(doc, [s]);
        const moves = await arrange(doc, after, null, direction, quick, (id) => positionOf(doc.nodes[id], {}));
        doc = withPositions(after, moves);
        expect(levelOverlaps(doc, {})).toEqual([]);
      }
      const along = direction === "LR" ? "x" : "y";
      expect((doc.nodes.head.meta.position as Record<string, number>)[along]).toBeGreaterThan((start as Record<string, number>)[along] + 3000);
      for (const s of ["s3", "s1", "s2"]) {
        const after = expand(doc, [s], false);
        doc = withPositions(after, rearrange(after, null, (id) => positionOf(doc.nodes[id], {}), sizesOf(doc, null, (id) => positionOf(doc.nodes[id], {})), direction));
        expect(levelOverlaps(doc, {})).toEqual([]);
      }
      expect(doc.nodes.head.meta.position).toEqual(start); // back where it was
    }
  });

  it("a block opened as its own view: its growth reaches the graph's view when it is drawn open there", async () => {
    let doc = expand(resnetLike(), ["s2"]);
    doc = withPositions(doc, await layoutLevels(doc, null, "TB", quick, () => undefined, () => true));
    // In s2's own view, expand its block 1: s2 grows in the graph's view, and s3 makes room.
    const after = expand(doc, ["s2/1"]);
    const moves = await arrange(doc, after, "s2", "TB", quick, (id) => positionOf(doc.nodes[id], {}));
    expect(moves.s3).toBeDefined();
    expect(levelOverlaps(withPositions(after, moves), {})).toEqual([]);
  });

  it("a first display with blocks saved open lays every level out once, without shifting the fresh layout", async () => {
    const doc = expand(resnetLike(), ["s1", "s2/1"]);
    const found = await arrange(doc, doc, null, "TB", quick, () => undefined);
    const direct = await layoutLevels(doc, null, "TB", quick, () => undefined, () => true);
    expect(found).toEqual(direct);
    expect(levelOverlaps(doc, found)).toEqual([]);
  });

  it("separate pushes overlapping boxes along the flow until none overlap", () => {
    const rects: Rect[] = [0, 1, 2, 3].map((i) => ({ id: `r${i}`, x: i * 10, y: 0, w: 100, h: 50 }));
    separate(rects, "LR");
    expect(overlapping(rects)).toEqual([]);
    expect(rects.map((r) => r.y)).toEqual([0, 0, 0, 0]); // only along the flow
  });
});

describe("incremental placement", () => {
  const placed = (xs: number[][]): Rect[] => xs.map(([x, y], i) => ({ id: `p${i}`, x, y, w: NODE_W, h: 58 }));

  it("puts a node inserted between neighbours next to them, in a free slot, moving nothing", () => {
    // p0 -> p1 right next to it: the inserted node cannot go between, so it goes beside p1's column.
    const rects = placed([[0, 0], [284, 0]]);
    const pos = placeNew(rects, [{ id: "new", w: NODE_W, h: 58, inputs: ["p0"], users: ["p1"] }], "LR");
    expect(pos.new.x).toBe(284);
    expect(overlapping([...rects, { id: "new", ...pos.new, w: NODE_W, h: 58 }])).toEqual([]);
    expect(Math.abs(pos.new.y)).toBeLessThan(200); // near, not far away
  });

  it("chains of new nodes follow their inputs; nodes with no neighbour go after everything", () => {
    const rects = placed([[0, 0]]);
    const pos = placeNew(rects, [
      { id: "b", w: NODE_W, h: 58, inputs: ["a"], users: [] },
      { id: "a", w: NODE_W, h: 58, inputs: ["p0"], users: ["b"] },
      { id: "lone", w: NODE_W, h: 58, inputs: [], users: [] },
    ], "TB");
    expect(pos.a.y).toBeGreaterThan(0);
    expect(pos.b.y).toBeGreaterThan(pos.a.y);
    const all = [...rects, ...["a", "b", "lone"].map((id) => ({ id, ...pos[id], w: NODE_W, h: 58 }))];
    expect(overlapping(all)).toEqual([]);
  });

  it("inside a block, slots stay inside the block's padding", () => {
    const pos = placeNew([], [{ id: "b/a", w: NODE_W, h: 58, inputs: [], users: [] }], "LR", { x: BLOCK_PAD, y: BLOCK_HEAD });
    expect(pos["b/a"]).toEqual({ x: BLOCK_PAD, y: BLOCK_HEAD });
  });

  it("arrange places nodes added to a laid-out graph without moving the others", async () => {
    let doc = docOf([n("x", [], { op: "input", inputNames: [] }), n("a", [["x", 0]]), n("b", [["a", 0]])]);
    doc = withPositions(doc, await layoutLevels(doc, null, "LR", quick, () => undefined, () => true));
    const grown = docOf([...Object.values(doc.nodes), n("new", [["a", 0]]), n("new2", [["new", 0]])]);
    const moves = await arrange(grown, grown, null, "LR", quick, (id) => positionOf(grown.nodes[id], {}));
    expect(Object.keys(moves).sort()).toEqual(["new", "new2"]);
    expect(levelOverlaps(withPositions(grown, moves), {})).toEqual([]);
  });
});

describe("block views", () => {
  it("shows the opened block's children and the insides of its expanded blocks", () => {
    const doc = docOf([...stage("s", 2, 1, true), block("other", [], false)]);
    const open = expand(doc, ["s/0"]);
    expect(shownLevels(open, "s")).toEqual(["s", "s/0"]);
    expect(shownLevels(open, null)).toEqual([null, "s", "s/0"]);
  });
});
