/**
 * Pure functions on the graph document: apply Python's changes, apply the browser's own pending edits
 * optimistically, re-point ids after renames, walk edges and ancestors. No React, no model: unit-tested
 * in test/doc.test.ts. Python stays the authority: optimistic results are replaced by its update.
 */
import type { Change, Doc, NodeDoc, OpSchema, PatchOp, WireDoc } from "./types";

export function fromWire(wire: WireDoc | Record<string, never> | undefined): Doc {
  const nodes: Record<string, NodeDoc> = {};
  const list = (wire && (wire as WireDoc).nodes) || [];
  for (const n of list) nodes[n.id] = n;
  return {
    version: (wire as WireDoc)?.version ?? 0,
    graph: (wire as WireDoc)?.graph ?? { name: "graph", meta: {} },
    totals: (wire as WireDoc)?.totals ?? { params: 0, flops: 0, errors: 0, nodes: 0 },
    nodes,
  };
}

export function toWire(doc: Doc): WireDoc {
  return { ...doc, nodes: Object.values(doc.nodes) };
}

/** Python's node-level changes applied to `doc` (a new object; untouched node entries are shared). */
export function applyChanges(doc: Doc, changes: Change[], version: number): Doc {
  const nodes = { ...doc.nodes };
  let out: Doc = { ...doc, version, nodes };
  for (const c of changes) {
    if (c.op === "upsert") nodes[c.node.id] = c.node;
    else if (c.op === "fields") { if (nodes[c.id]) nodes[c.id] = { ...nodes[c.id], ...c.fields }; }
    else if (c.op === "delete") delete nodes[c.id];
    else if (c.op === "totals") out = { ...out, totals: c.totals };
    else if (c.op === "graph") out = { ...out, graph: c.graph };
  }
  return out;
}

export function escapeName(name: string): string {
  return name.replace(/\\/g, "\\\\").replace(/\//g, "\\/");
}

export function joinId(parent: string | null | undefined, name: string): string {
  return parent ? `${parent}/${escapeName(name)}` : escapeName(name);
}

/** A name like `base`, `base_1`, ... not used by any sibling under `parent`. */
export function freeName(doc: Doc, base: string, parent: string | null = null): string {
  let name = base;
  let i = 1;
  while (doc.nodes[joinId(parent, name)]) name = `${base}_${i++}`;
  return name;
}

function replaceRefs(nodes: Record<string, NodeDoc>, fn: (ref: [string, number]) => [string, number] | null) {
  for (const [id, n] of Object.entries(nodes)) {
    let changed = false;
    const inputs = n.inputs.map((ref) => {
      if (!ref) return ref;
      const r = fn(ref);
      if (r !== ref) changed = true;
      return r;
    });
    if (changed) nodes[id] = { ...n, inputs };
  }
}

/**
 * The browser's own edits applied to `doc` before Python answers, so the canvas reacts at once.
 * group/ungroup/paste wait for Python. `schemas` gives port names of new nodes.
 */
export function applyOps(doc: Doc, ops: PatchOp[], schemas: Record<string, OpSchema>): Doc {
  const nodes = { ...doc.nodes };
  for (const op of ops) {
    switch (op.op) {
      case "add": {
        const schema = schemas[op.opName];
        const name = op.name ?? freeName({ ...doc, nodes }, op.opName, op.parent ?? null);
        const id = joinId(op.parent ?? null, name);
        if (nodes[id] || !schema) break;
        nodes[id] = {
          id, name, op: op.opName, parent: op.parent ?? null, params: { ...(op.params ?? {}) },
          inputs: schema.inputs.map(() => null), inputNames: [...schema.inputs], variadic: schema.variadic,
          outputs: [], error: null, errorNodes: [], numParams: 0, flops: null,
          meta: op.position ? { position: { x: op.position[0], y: op.position[1] } } : {}, isBlock: false,
          pending: true,
        };
        break;
      }
      case "remove": {
        const gone = new Set(op.nodes);
        for (const id of Object.keys(nodes)) {
          if (gone.has(id) || [...gone].some((g) => id.startsWith(g + "/"))) delete nodes[id];
        }
        replaceRefs(nodes, (ref) => (gone.has(ref[0]) ? null : ref));
        break;
      }
      case "connect": {
        const [tid, port] = op.target;
        const t = nodes[tid];
        if (!t || !nodes[op.source[0]]) break;
        const inputs = [...t.inputs];
        while (inputs.length <= port) inputs.push(null);
        inputs[port] = [op.source[0], op.source[1]];
        nodes[tid] = { ...t, inputs };
        break;
      }
      case "disconnect": {
        const [tid, port] = op.target;
        const t = nodes[tid];
        if (!t || port >= t.inputs.length) break;
        const inputs = [...t.inputs];
        if (t.variadic && port >= t.inputNames.length) inputs.splice(port, 1);
        else inputs[port] = null;
        nodes[tid] = { ...t, inputs };
        break;
      }
      case "params": {
        const n = nodes[op.node];
        if (n) nodes[op.node] = { ...n, params: { ...n.params, ...op.params } };
        break;
      }
      case "rename": {
        const n = nodes[op.node];
        const newId = n ? joinId(n.parent, op.name) : "";
        if (!n || !op.name || nodes[newId]) break;
        delete nodes[op.node];
        nodes[newId] = { ...n, id: newId, name: op.name };
        replaceRefs(nodes, (ref) => (ref[0] === op.node ? [newId, ref[1]] : ref));
        break;
      }
      case "move": {
        for (const [id, [x, y]] of Object.entries(op.positions)) {
          const n = nodes[id];
          if (n) nodes[id] = { ...n, meta: { ...n.meta, position: { x, y } } };
        }
        break;
      }
      case "meta": {
        const n = nodes[op.node];
        if (!n) break;
        const meta = { ...n.meta };
        for (const [k, v] of Object.entries(op.meta)) {
          if (v === null) delete meta[k];
          else meta[k] = v;
        }
        nodes[op.node] = { ...n, meta };
        break;
      }
      default:
        break; // group, ungroup, paste: Python's answer shows the result
    }
  }
  return { ...doc, nodes };
}

/** Patch ops with ids re-pointed after Python renamed nodes (`ids`: old id -> new id). */
export function remapOps(ops: PatchOp[], ids: Record<string, string>): PatchOp[] {
  if (!Object.keys(ids).length) return ops;
  const fix = (id: string) => {
    for (const [old, nu] of Object.entries(ids)) {
      if (id === old) return nu;
      if (id.startsWith(old + "/")) return nu + id.slice(old.length);
    }
    return id;
  };
  const port = (p: [string, number]): [string, number] => [fix(p[0]), p[1]];
  return ops.map((op): PatchOp => {
    switch (op.op) {
      case "add": case "paste": return { ...op, parent: typeof op.parent === "string" ? fix(op.parent) : op.parent };
      case "remove": case "group": return { ...op, nodes: op.nodes.map(fix) };
      case "connect": return { ...op, source: port(op.source), target: port(op.target) };
      case "disconnect": return { ...op, target: port(op.target) };
      case "params": case "rename": case "meta": case "ungroup": return { ...op, node: fix(op.node) };
      case "move": return { ...op, positions: Object.fromEntries(Object.entries(op.positions).map(([k, v]) => [fix(k), v])) };
    }
  });
}

/** Every node that `id` reads from, transitively (same graph level). */
export function ancestors(doc: Doc, id: string): Set<string> {
  const seen = new Set<string>();
  const stack = [id];
  while (stack.length) {
    const n = doc.nodes[stack.pop()!];
    if (!n) continue;
    for (const ref of n.inputs) {
      if (ref && !seen.has(ref[0])) {
        seen.add(ref[0]);
        stack.push(ref[0]);
      }
    }
  }
  return seen;
}

/** Why connecting output of `source` into `target` would make a cycle, or null if it would not. */
export function cycleReason(doc: Doc, source: string, target: string): string | null {
  if (source === target) return "a node cannot read its own output";
  if (ancestors(doc, source).has(target)) {
    const s = doc.nodes[source]?.name ?? source;
    const t = doc.nodes[target]?.name ?? target;
    return `connecting '${s}' into '${t}' would make a cycle: '${t}' already feeds '${s}'`;
  }
  return null;
}

/** "(8, 16, 32, 32)", with the dtype when it is not float32: the edge label. */
export function formatSpec(spec: { shape: number[]; dtype: string } | undefined): string {
  if (!spec) return "";
  const dims = spec.shape.join(", ");
  return spec.dtype === "float32" ? `(${dims})` : `(${dims}) ${spec.dtype}`;
}

/** Compact numbers for the header: 1234567 -> "1.23M". */
export function compact(n: number | null | undefined): string {
  if (n === null || n === undefined) return "?";
  const units: [number, string][] = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${(n / v).toFixed(n / v >= 100 ? 0 : 2)}${u}`;
  return String(n);
}
