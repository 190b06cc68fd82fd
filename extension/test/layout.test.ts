import { describe, expect, it } from "vitest";
import { edgeBad, edgeLabel, toFlow, newCache, visibleNodes } from "../src/flow";
import { fromWire } from "../src/doc";
import ELK from "elkjs/lib/elk.bundled.js";
import { layout, quickLayout, type Box, type Wire } from "../src/layout";
import type { NodeDoc } from "../src/types";

const boxes: Box[] = ["x", "a", "b", "c"].map((id) => ({ id, width: 184, height: 58, inPorts: id === "x" ? 0 : 1, outPorts: 1 }));
const wires: Wire[] = [
  { source: "x", sourcePort: 0, target: "a", targetPort: 0 },
  { source: "a", sourcePort: 0, target: "b", targetPort: 0 },
  { source: "x", sourcePort: 0, target: "c", targetPort: 0 },
];

function overlaps(pos: Record<string, { x: number; y: number }>) {
  const ids = Object.keys(pos);
  for (const i of ids) for (const j of ids) {
    if (i >= j) continue;
    if (Math.abs(pos[i].x - pos[j].x) < 184 && Math.abs(pos[i].y - pos[j].y) < 58) return true;
  }
  return false;
}

describe("layout", () => {
  it("without ELK (no factory, or one that fails), layout falls back to the quick layered layout", async () => {
    expect(await layout(boxes, wires, "LR")).toEqual(quickLayout(boxes, wires, "LR"));
    expect(await layout(boxes, wires, "LR", async () => null)).toEqual(quickLayout(boxes, wires, "LR"));
  });

  it("ELK puts every node after its inputs along the direction, without overlaps", async () => {
    const elk = async () => new ELK(); // in the browser: a Worker running the script Python sends (workerElk)
    const lr = await layout(boxes, wires, "LR", elk);
    expect(lr.a.x).toBeGreaterThan(lr.x.x);
    expect(lr.b.x).toBeGreaterThan(lr.a.x);
    expect(overlaps(lr)).toBe(false);
    const tb = await layout(boxes, wires, "TB"); // the ELK made above is shared
    expect(tb.b.y).toBeGreaterThan(tb.a.y);
    expect(tb.a.y).toBeGreaterThan(tb.x.y);
  });

  it("quick layout layers by longest path", () => {
    const pos = quickLayout(boxes, wires, "LR");
    expect(pos.a.x).toBeGreaterThan(pos.x.x);
    expect(pos.b.x).toBeGreaterThan(pos.a.x);
    expect(pos.c.x).toBe(pos.a.x);
    expect(overlaps(pos)).toBe(false);
  });

  it("quick layout handles a 2000-node chain", () => {
    const n = 2000;
    const bx: Box[] = Array.from({ length: n }, (_, i) => ({ id: `n${i}`, width: 184, height: 58, inPorts: 1, outPorts: 1 }));
    const ws: Wire[] = Array.from({ length: n - 1 }, (_, i) => ({ source: `n${i}`, sourcePort: 0, target: `n${i + 1}`, targetPort: 0 }));
    const pos = quickLayout(bx, ws, "TB");
    expect(pos[`n${n - 1}`].y).toBeGreaterThan(pos.n0.y);
  });

});

describe("document -> React Flow", () => {
  function n(id: string, extra: Partial<NodeDoc> = {}): NodeDoc {
    return { id, name: id.split("/").pop()!, op: "relu", parent: null, params: {}, inputs: [], inputNames: ["input"], variadic: false,
      outputs: [{ shape: [2, 3], dtype: "float32" }], error: null, errorNodes: [], numParams: 0, flops: 0, meta: {}, isBlock: false, ...extra };
  }

  it("hides collapsed blocks' insides, shows expanded ones as parents, labels edges with shapes", () => {
    const doc = fromWire({ version: 1, graph: { name: "g", meta: {} }, totals: { params: 0, flops: 0, errors: 0, nodes: 2 }, nodes: [
      n("x", { op: "input", inputNames: [] }),
      n("b", { isBlock: true, op: "block", inputs: [["x", 0]] }),
      n("b/x", { parent: "b", op: "input" }),
      n("b/y", { parent: "b", inputs: [["b/x", 0]] }),
    ] });
    expect(visibleNodes(doc).map((v) => v.id)).toEqual(["x", "b"]);
    doc.nodes.b = { ...doc.nodes.b, meta: { expanded: true } };
    const input = { doc, auto: {}, dragging: {}, selected: new Set<string>(), highlights: {}, edgeStyles: [], vertical: false };
    const cache = newCache();
    const flow = toFlow(input, cache);
    expect(flow.nodes.map((v) => v.id)).toEqual(["x", "b", "b/x", "b/y"]);
    expect(flow.nodes.find((v) => v.id === "b/y")!.parentId).toBe("b");
    expect(flow.nodes.find((v) => v.id === "b")!.type).toBe("blockOpen");
    expect(flow.edges.map((e) => edgeLabel(doc.nodes[e.source], e.data!.port))).toEqual(["(2, 3)", "(2, 3)"]);
    expect(edgeLabel(doc.nodes.x, 0, { source: "x", target: "b", label: "0.9" })).toBe("(2, 3) 0.9");
    expect(edgeBad(doc.nodes.x, { ...doc.nodes.b, error: "bad" })).toBe(true);
    const again = toFlow(input, cache);
    expect(again.nodes).toBe(flow.nodes); // nothing structural changed: the same arrays, React Flow does no work
    expect(again.edges).toBe(flow.edges);
    // New shapes and errors change no React Flow object: components read them per node from the store.
    const reshaped = { ...input, doc: { ...doc, nodes: { ...doc.nodes, x: { ...doc.nodes.x, outputs: [{ shape: [9], dtype: "float32" }] } } } };
    const third = toFlow(reshaped, cache);
    expect(third.nodes).toBe(flow.nodes);
    expect(third.edges).toBe(flow.edges);
    const moved = toFlow({ ...input, auto: { x: { x: 5, y: 5 } } }, cache);
    expect(moved.nodes).not.toBe(flow.nodes);
    expect(moved.nodes[1]).toBe(flow.nodes[1]); // only the moved node is a new object
  });
});
