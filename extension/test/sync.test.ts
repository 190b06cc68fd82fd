import { describe, expect, it } from "vitest";
import { Sync, type Model } from "../src/sync";
import type { NodeDoc, OpSchema } from "../src/types";

/** An in-memory stand-in for the anywidget model: records sent messages, delivers custom messages. */
class MemoryModel implements Model {
  sent: any[] = [];
  attrs: Record<string, any>;
  handlers: ((msg: any) => void)[] = [];
  constructor(doc: any) { this.attrs = { document: doc }; }
  get(key: string) { return this.attrs[key]; }
  set(key: string, value: any) { this.attrs[key] = value; }
  send(content: any) { this.sent.push(content); }
  on(_event: string, cb: (msg: any) => void) { this.handlers.push(cb); }
  off() { this.handlers = []; }
  deliver(msg: any) { for (const h of this.handlers) h(msg); }
}

function node(id: string, inputs: ([string, number] | null)[] = [], params: Record<string, unknown> = {}): NodeDoc {
  return { id, name: id, op: "relu", parent: null, params, inputs, inputNames: ["input"], variadic: false,
    outputs: [{ shape: [1], dtype: "float32" }], error: null, errorNodes: [], numParams: 0, flops: 0, meta: {}, isBlock: false };
}

const schemas: Record<string, OpSchema> = {};
const wire = { version: 1, graph: { name: "g", meta: {} }, totals: { params: 0, flops: 0, errors: 0, nodes: 2 }, nodes: [node("a"), node("b", [["a", 0]])] };

describe("Sync: versions, pending edits, replies", () => {
  it("keeps a local edit on top of a concurrent Python update, then takes Python's answer", () => {
    const model = new MemoryModel(wire);
    const sync = new Sync(model, () => schemas);
    sync.patch([{ op: "params", node: "b", params: { k: 1 } }]);
    const patch = model.sent[0];
    expect(patch).toMatchObject({ kind: "patch", baseVersion: 1 });
    expect(sync.view.nodes.b.params).toEqual({ k: 1 }); // optimistic
    // Python's own edit (made before it saw the patch) arrives first.
    model.deliver({ kind: "update", base: 1, version: 2, changes: [{ op: "upsert", node: node("c", [["b", 0]]) }], canUndo: true, canRedo: false });
    expect(sync.view.nodes.c).toBeDefined();
    expect(sync.view.nodes.b.params).toEqual({ k: 1 }); // the pending edit is re-applied
    model.deliver({ kind: "update", base: 2, version: 3, changes: [{ op: "upsert", node: node("b", [["a", 0]], { k: 1, seen: true }) }],
      reply: { id: patch.id, ok: true, errors: [], ids: {}, created: [] }, canUndo: true, canRedo: false });
    expect(sync.pending).toHaveLength(0);
    expect(sync.confirmed.version).toBe(3);
    expect(sync.view.nodes.b.params).toEqual({ k: 1, seen: true });
  });

  it("re-points later pending edits at renamed ids and reports errors", () => {
    const model = new MemoryModel(wire);
    const sync = new Sync(model, () => schemas);
    sync.patch([{ op: "rename", node: "a", name: "x" }]);
    sync.patch([{ op: "move", positions: { a: [1, 2] } }]);
    model.deliver({ kind: "update", base: 1, version: 2, changes: [], canUndo: true, canRedo: false,
      reply: { id: model.sent[0].id, ok: false, errors: [{ index: 0, message: "taken", nodes: ["a"] }], ids: { a: "x" }, created: [] } });
    expect(sync.pending[0].ops[0]).toMatchObject({ positions: { x: [1, 2] } });
    expect(sync.notice?.text).toBe("taken");
  });

  it("asks for a snapshot when an update does not follow its version", () => {
    const model = new MemoryModel(wire);
    const sync = new Sync(model, () => schemas);
    model.deliver({ kind: "update", base: 5, version: 6, changes: [], canUndo: false, canRedo: false });
    expect(model.sent[model.sent.length - 1]).toMatchObject({ kind: "sync" });
    model.deliver({ kind: "snapshot", document: { ...wire, version: 6 } });
    expect(sync.confirmed.version).toBe(6);
  });

  it("calls a node's listener only when that node's entry changes", () => {
    const model = new MemoryModel(wire);
    const sync = new Sync(model, () => schemas);
    const calls: string[] = [];
    const offA = sync.subscribeNode("a", () => calls.push("a"));
    sync.subscribeNode("b", () => calls.push("b"));
    model.deliver({ kind: "update", base: 1, version: 2, changes: [{ op: "upsert", node: node("b", [["a", 0]], { k: 2 }) }], canUndo: true, canRedo: false });
    expect(calls).toEqual(["b"]);
    sync.patch([{ op: "params", node: "a", params: { k: 3 } }]); // optimistic: a's entry is new
    expect(calls).toEqual(["b", "a"]);
    offA();
    model.deliver({ kind: "update", base: 2, version: 3, changes: [{ op: "upsert", node: node("a", [], { k: 3 }) }],
      reply: { id: model.sent[0].id, ok: true, errors: [], ids: {}, created: [] }, canUndo: true, canRedo: false });
    expect(calls).toEqual(["b", "a"]); // unsubscribed; b untouched
    const shown = sync.nodeView("b");
    model.deliver({ kind: "update", base: 3, version: 4, canUndo: true, canRedo: false,
      changes: [{ op: "upsert", node: { ...node("b", [["a", 0]], { k: 2 }), meta: { position: { x: 1, y: 2 } } } }] });
    expect(calls).toEqual(["b", "a"]); // moved only: React Flow draws positions, the node needs no re-render
    expect(sync.nodeView("b")).toBe(shown);
    model.deliver({ kind: "update", base: 4, version: 5, canUndo: true, canRedo: false,
      changes: [{ op: "upsert", node: { ...node("b", [["a", 0]], { k: 2 }), error: "bad" } }] });
    expect(calls).toEqual(["b", "a", "b"]);
    expect(sync.nodeView("b")!.error).toBe("bad");
  });
});

const last = (model: MemoryModel) => model.sent[model.sent.length - 1];

describe("Sync: notices and requests", () => {
  it("a refused-wire notice clears on undo, and a failed edit's notice on the next edit", () => {
    const model = new MemoryModel(wire);
    const sync = new Sync(model, () => schemas);
    sync.setNotice({ text: "not connected: a cycle", kind: "error", nodes: [] });
    sync.request("undo");
    expect(sync.notice).toBeNull();
    expect(last(model)).toMatchObject({ kind: "undo" });
    model.deliver({ kind: "update", base: 1, version: 1, changes: [], canUndo: false, canRedo: false,
      reply: { id: last(model).id, ok: false, errors: [{ index: 0, message: "bad value", nodes: [] }], ids: {}, created: [] } });
    expect(sync.notice?.text).toBe("bad value");
    sync.patch([{ op: "params", node: "b", params: { k: 2 } }]);
    expect(sync.notice).toBeNull();
  });

  it("resolves a request with the message that answers it, or Python's error for an unknown kind", async () => {
    const model = new MemoryModel(wire);
    const sync = new Sync(model, () => schemas);
    const fixes = sync.request("fixits", { node: "b" });
    const id = last(model).id;
    model.deliver({ kind: "fixits", replyTo: id, ok: true, root: "b", fixes: [{ title: "set padding=1 on 'b'", path: ["b"], params: { padding: 1 }, insert: null, port: 0 }] });
    const msg = await fixes;
    expect(msg.kind === "fixits" && msg.fixes[0].title).toBe("set padding=1 on 'b'");
    const copy = sync.request("copy", { nodes: ["a"] });
    model.deliver({ kind: "error", replyTo: last(model).id, message: "unknown message kind 'copy'" });
    expect((await copy).kind).toBe("error");
  });
});
