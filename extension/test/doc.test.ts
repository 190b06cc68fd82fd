import { describe, expect, it } from "vitest";
import { applyChanges, applyOps, compact, cycleReason, formatSpec, freeName, fromWire, joinId, remapOps } from "../src/doc";
import type { Doc, NodeDoc, OpSchema } from "../src/types";

function node(id: string, op: string, inputs: ([string, number] | null)[] = [], extra: Partial<NodeDoc> = {}): NodeDoc {
  return {
    id, name: id, op, parent: null, params: {}, inputs, inputNames: inputs.map((_, i) => `in${i}`), variadic: false,
    outputs: [{ shape: [1, 2], dtype: "float32" }], error: null, errorNodes: [], numParams: 0, flops: 0, meta: {}, isBlock: false, ...extra,
  };
}

function chain(): Doc {
  return fromWire({
    version: 3, graph: { name: "g", meta: {} }, totals: { params: 0, flops: 0, errors: 0, nodes: 3 },
    nodes: [node("x", "input"), node("a", "relu", [["x", 0]]), node("b", "relu", [["a", 0]])],
  });
}

const schemas: Record<string, OpSchema> = {
  relu: { name: "relu", category: "activation", doc: "", params: [], inputs: ["input"], variadic: false, inputHint: "", source: "builtin" },
  cat: { name: "cat", category: "tensor", doc: "", params: [], inputs: ["tensors"], variadic: true, inputHint: "", source: "builtin" },
};

describe("applyChanges (Python's updates)", () => {
  it("upserts, deletes and shares untouched entries", () => {
    const doc = chain();
    const next = applyChanges(doc, [
      { op: "upsert", node: node("c", "relu", [["b", 0]]) },
      { op: "delete", id: "x" },
      { op: "totals", totals: { params: 5, flops: 7, errors: 0, nodes: 3 } },
    ], 4);
    expect(next.version).toBe(4);
    expect(Object.keys(next.nodes).sort()).toEqual(["a", "b", "c"]);
    expect(next.nodes.a).toBe(doc.nodes.a);
    expect(next.totals.params).toBe(5);
    expect(doc.nodes.x).toBeDefined(); // the old document is untouched
  });

  it("merges changed fields into existing entries and ignores fields of unknown nodes", () => {
    const doc = chain();
    const next = applyChanges(doc, [
      { op: "fields", id: "a", fields: { outputs: [{ shape: [1, 4], dtype: "float32" }], flops: 8 } },
      { op: "fields", id: "gone", fields: { flops: 1 } },
    ], 4);
    expect(next.nodes.a).not.toBe(doc.nodes.a);
    expect(next.nodes.a).toEqual({ ...doc.nodes.a, outputs: [{ shape: [1, 4], dtype: "float32" }], flops: 8 });
    expect(next.nodes.b).toBe(doc.nodes.b);
    expect(next.nodes.gone).toBeUndefined();
    expect(doc.nodes.a.flops).toBe(0); // the old document is untouched
  });
});

describe("applyOps (optimistic edits)", () => {
  it("adds a node with unconnected ports and a free name", () => {
    const doc = applyOps(chain(), [{ op: "add", opName: "relu", position: [10, 20] }], schemas);
    const added = Object.values(doc.nodes).find((n) => n.pending)!;
    expect(added.name).toBe("relu");
    expect(added.inputs).toEqual([null]);
    expect(added.meta.position).toEqual({ x: 10, y: 20 });
  });

  it("connects, disconnects and grows variadic ports", () => {
    let doc = applyOps(chain(), [{ op: "add", opName: "cat", name: "cat" }], schemas);
    doc = applyOps(doc, [{ op: "connect", source: ["a", 0], target: ["cat", 0] }, { op: "connect", source: ["b", 0], target: ["cat", 1] }], schemas);
    expect(doc.nodes.cat.inputs).toEqual([["a", 0], ["b", 0]]);
    doc = applyOps(doc, [{ op: "disconnect", target: ["cat", 1] }], schemas);
    expect(doc.nodes.cat.inputs).toEqual([["a", 0]]);
  });

  it("removes nodes and clears references to them", () => {
    const doc = applyOps(chain(), [{ op: "remove", nodes: ["a"] }], schemas);
    expect(doc.nodes.a).toBeUndefined();
    expect(doc.nodes.b.inputs).toEqual([null]);
  });

  it("renames and re-points users; a taken name is ignored", () => {
    let doc = applyOps(chain(), [{ op: "rename", node: "a", name: "act" }], schemas);
    expect(doc.nodes.act.name).toBe("act");
    expect(doc.nodes.b.inputs).toEqual([["act", 0]]);
    doc = applyOps(doc, [{ op: "rename", node: "act", name: "b" }], schemas);
    expect(doc.nodes.act).toBeDefined();
  });

  it("moves, edits params and meta (null deletes)", () => {
    const doc = applyOps(chain(), [
      { op: "move", positions: { a: [1, 2] } },
      { op: "params", node: "a", params: { k: 3 } },
      { op: "meta", node: "a", meta: { expanded: true } },
      { op: "meta", node: "a", meta: { expanded: null } },
    ], schemas);
    expect(doc.nodes.a.meta).toEqual({ position: { x: 1, y: 2 } });
    expect(doc.nodes.a.params).toEqual({ k: 3 });
  });
});

describe("remapOps and ids", () => {
  it("re-points ops and block paths after a rename", () => {
    const ops = remapOps([
      { op: "params", node: "blk/conv", params: {} },
      { op: "connect", source: ["blk", 0], target: ["z", 0] },
      { op: "move", positions: { blk: [0, 0] } },
    ], { blk: "stem" });
    expect(ops[0]).toMatchObject({ node: "stem/conv" });
    expect(ops[1]).toMatchObject({ source: ["stem", 0], target: ["z", 0] });
    expect(ops[2]).toMatchObject({ positions: { stem: [0, 0] } });
  });

  it("escapes names in ids and finds free names", () => {
    expect(joinId("b", "a/x")).toBe("b/a\\/x");
    expect(joinId(null, "back\\slash")).toBe("back\\\\slash");
    expect(freeName(chain(), "a")).toBe("a_1");
    expect(freeName(chain(), "new")).toBe("new");
  });
});

describe("connection checks and labels", () => {
  it("refuses cycles with a reason", () => {
    const doc = chain();
    expect(cycleReason(doc, "b", "a")).toContain("cycle");
    expect(cycleReason(doc, "a", "a")).toContain("own output");
    expect(cycleReason(doc, "a", "b")).toBeNull();
  });

  it("formats shapes and numbers", () => {
    expect(formatSpec({ shape: [8, 16, 32, 32], dtype: "float32" })).toBe("(8, 16, 32, 32)");
    expect(formatSpec({ shape: [4], dtype: "int64" })).toBe("(4) int64");
    expect(compact(1234567)).toBe("1.23M");
    expect(compact(999)).toBe("999");
    expect(compact(null)).toBe("?");
  });
});
