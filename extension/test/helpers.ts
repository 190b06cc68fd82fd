/** Small documents for the front-end unit tests. */
import { fromWire } from "../src/doc";
import type { Doc, NodeDoc } from "../src/types";

/** A node entry: a relu reading `inputs` unless `extra` says otherwise; its name is the id's last part. */
export function n(id: string, inputs: ([string, number] | null)[] = [], extra: Partial<NodeDoc> = {}): NodeDoc {
  const parent = id.includes("/") ? id.slice(0, id.lastIndexOf("/")) : null;
  return {
    id, name: id.split("/").pop()!, op: "relu", parent, params: {}, inputs, inputNames: ["input"], variadic: false,
    outputs: [{ shape: [2, 3], dtype: "float32" }], error: null, errorNodes: [], numParams: 0, flops: 0, meta: {}, isBlock: false,
    ...extra,
  };
}

/** A block entry (expanded when `open`). */
export function block(id: string, inputs: ([string, number] | null)[], open: boolean, extra: Partial<NodeDoc> = {}): NodeDoc {
  return n(id, inputs, { op: "block", isBlock: true, meta: open ? { expanded: true } : {}, ...extra });
}

export function docOf(nodes: NodeDoc[]): Doc {
  return fromWire({ version: 1, graph: { name: "g", meta: {} }, totals: { params: 0, flops: 0, errors: 0, nodes: nodes.length }, nodes });
}

/** `length` blocks in a chain inside `stage`, each with `inner` relus: a ResNet-like stage. */
export function stage(name: string, length: number, inner: number, open = false): NodeDoc[] {
  const out: NodeDoc[] = [n(`${name}/x`, [], { op: "input", inputNames: [] })];
  let prev = `${name}/x`;
  for (let b = 0; b < length; b++) {
    const id = `${name}/${b}`;
    out.push(block(id, [[prev, 0]], false));
    out.push(n(`${id}/x`, [], { op: "input", inputNames: [] }));
    let p = `${id}/x`;
    for (let k = 0; k < inner; k++) {
      out.push(n(`${id}/r${k}`, [[p, 0]]));
      p = `${id}/r${k}`;
    }
    prev = id;
  }
  return [block(name, [], open), ...out];
}
