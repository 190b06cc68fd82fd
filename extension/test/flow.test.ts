import { describe, expect, it } from "vitest";
import { borderOf, handlesOf, newCache, nodeHeight, NODE_W, toFlow, type FlowInput } from "../src/flow";
import type { Doc, NodeDoc } from "../src/types";

function node(id: string, inputs: ([string, number] | null)[] = [], extra: Partial<NodeDoc> = {}): NodeDoc {
  return { id, name: id, op: "relu", parent: null, params: {}, inputs, inputNames: inputs.map((_, i) => `in${i}`), variadic: false,
    outputs: [{ shape: [1], dtype: "float32" }], error: null, errorNodes: [], numParams: 0, flops: 0,
    meta: { position: { x: 0, y: 0 } }, isBlock: false, ...extra };
}

function docOf(nodes: NodeDoc[]): Doc {
  return { version: 1, graph: { name: "g", meta: {} }, totals: { params: 0, flops: 0, errors: 0, nodes: nodes.length },
    nodes: Object.fromEntries(nodes.map((n) => [n.id, n])) };
}

function input(doc: Doc, extra: Partial<FlowInput> = {}): FlowInput {
  return { doc, auto: {}, dragging: {}, selected: new Set(), highlights: {}, edgeStyles: [], vertical: false, ...extra };
}

describe("declared port handles", () => {
  // Reference values: the handles' bounding boxes measured in Chromium (getBoundingClientRect relative to the
  // node, divided by the zoom) for the same sizes, borders and port counts.
  it("places inputs on the left and outputs on the right, centred on the inner border edge", () => {
    const hs = handlesOf(184, 58, 2, 1, false, 1);
    expect(hs.map((h) => [h.id, h.type, h.position])).toEqual([["in-0", "target", "left"], ["in-1", "target", "left"], ["out-0", "source", "right"]]);
    expect(hs[0].x).toBe(-3);
    expect(hs[0].y).toBeCloseTo(1 + 56 / 3 - 4, 6); // 15.67
    expect(hs[1].y).toBeCloseTo(1 + 112 / 3 - 4, 6);
    expect([hs[2].x, hs[2].y, hs[2].width, hs[2].height]).toEqual([179, 25, 8, 8]);
  });

  it("places inputs on top and outputs at the bottom when vertical", () => {
    const hs = handlesOf(184, 58, 4, 1, true, 1);
    expect(hs.slice(0, 4).map((h) => +h.x.toFixed(2))).toEqual([33.4, 69.8, 106.2, 142.6]);
    expect(hs.slice(0, 4).every((h) => h.y === -3 && h.position === "top")).toBe(true);
    expect([hs[4].x, hs[4].y, hs[4].position]).toEqual([88, 53, "bottom"]);
  });

  it("follows the border width of blocks and of highlights that set one", () => {
    expect(borderOf("op", null)).toBe(1);
    expect(borderOf("block", "added")).toBe(2);
    expect(borderOf("blockOpen", null)).toBe(2);
    expect(borderOf("op", { border_width: 4 })).toBe(4);
    expect(borderOf("op", { width: "3px" })).toBe(3);
    expect(borderOf("op", { border: "5px solid red" })).toBe(5);
    expect(borderOf("op", { color: "red" })).toBe(1);
    // A 4 px border moves a left input 3 px inwards: measured at x = 0, y = 16.67.
    const [h] = handlesOf(184, 58, 2, 1, false, 4);
    expect([h.x, +h.y.toFixed(2)]).toEqual([0, 16.67]);
  });
});

describe("toFlow", () => {
  it("gives every node its size and handles matching its edges' handle ids", () => {
    const doc = docOf([node("a"), node("b", [["a", 0], null]), node("c", [["b", 0], ["a", 0]])]);
    const { nodes, edges } = toFlow(input(doc), newCache());
    for (const n of nodes) {
      expect(n.measured).toEqual({ width: NODE_W, height: nodeHeight(doc.nodes[n.id]) });
      expect(n.width).toBe(NODE_W);
    }
    expect(edges).toHaveLength(3);
    for (const e of edges) {
      const s = nodes.find((n) => n.id === e.source)!;
      const t = nodes.find((n) => n.id === e.target)!;
      expect(s.handles!.some((h) => h.id === e.sourceHandle && h.type === "source")).toBe(true);
      expect(t.handles!.some((h) => h.id === e.targetHandle && h.type === "target")).toBe(true);
    }
  });

  it("keeps the very same objects when only what nodes show changes, and renews just the changed node", () => {
    const cache = newCache();
    const doc = docOf([node("a"), node("b", [["a", 0]]), node("c", [["b", 0]])]);
    const first = toFlow(input(doc), cache);
    // New shapes and params on b (an edit's reply): no structure change, so the same arrays come back.
    const shapes = docOf([doc.nodes.a, node("b", [["a", 0]], { params: { k: 3 }, outputs: [{ shape: [2], dtype: "float32" }] }), doc.nodes.c]);
    const second = toFlow(input(shapes), cache);
    expect(second.nodes).toBe(first.nodes);
    expect(second.edges).toBe(first.edges);
    // Highlighting b renews b only; a and c keep their identity, so React.memo skips them.
    const third = toFlow(input(shapes, { highlights: { b: "added" } }), cache);
    expect(third.nodes).not.toBe(first.nodes);
    expect(third.nodes[0]).toBe(first.nodes[0]);
    expect(third.nodes[1]).not.toBe(first.nodes[1]);
    expect(third.nodes[2]).toBe(first.nodes[2]);
    expect(third.edges).toBe(first.edges);
  });
});
